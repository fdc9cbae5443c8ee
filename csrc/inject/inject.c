/*
 * bpftime-inject PID AGENT SEGMENT: loads the agent into a running process.
 *
 * One thread of the target (the main thread, else the first in /proc/PID/task)
 * is seized and interrupted, preferably inside a system call (retried for up to
 * ~100 ms: a thread in its own code may hold a lock dlopen takes); its
 * registers (general and extended state) are saved; it is made to call libc's
 * own dlopen(AGENT), then dlsym(handle, "bpftime_agent_attach") and that
 * function with SEGMENT (dlclose if it fails), each call returning to address
 * 0 (the SIGSEGV stops it again, and is never delivered); then its
 * registers are put back exactly and it is let go. Other threads keep running.
 *
 * A thread interrupted inside a blocking call stops with rax = -ERESTART* and
 * orig_rax = the call's number: the kernel's restart logic runs when the thread
 * resumes, on the registers it then has. The injected calls run with orig_rax =
 * -1 (no restart applied to them); the saved registers, put back before the
 * last resume, restart the call as the kernel would have done.
 *
 * Signals that stop the thread during the injection are held back and
 * delivered when it is let go (the first with its siginfo, by PTRACE_DETACH;
 * others are sent again to the thread).
 *
 * A thread is not injected while the dynamic loader's lock is held by any
 * thread (one inside dlopen or dlclose, e.g. running a slow constructor): its
 * dlopen would wait, maybe forever (the holder itself stopped by us). The
 * injector lets the thread go and looks again later, for up to the timeout.
 * Each injected call is also bounded: one that does not return in time (a
 * lock the loader or malloc needs, held by a thread that does not let it go)
 * is interrupted, the registers are put back, the thread let go, and the
 * refusal says what may be left behind.
 *
 * BPFTIME_INJECT_TIMEOUT_MS: that bound (default 5000).
 * BPFTIME_INJECT_PAUSE_MS (tests): waits that long with the thread stopped.
 * BPFTIME_INJECT_NO_LOADER_CHECK=1 (tests): injects without looking at the
 * loader's lock, so the bound on the calls can be tested.
 *
 * Exit status: 0 loaded, 3 the agent was already there, 1 an error (said on stderr).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <pthread.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef NT_X86_XSTATE
#define NT_X86_XSTATE 0x202
#endif

static pid_t pid;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("bpftime attach: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

/* The first number after `key` in /proc/PID/status (-1: none). */
static long status_field(const char *key, int index)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	long v = -1;
	size_t n = strlen(key);
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, n) || line[n] != ':')
			continue;
		char *p = line + n + 1;
		for (int i = 0; i <= index; i++) {
			char *end;
			v = strtol(p, &end, 10);
			if (end == p) {
				v = -1;
				break;
			}
			p = end;
		}
		break;
	}
	fclose(f);
	return v;
}

/* Why PTRACE_SEIZE was refused, and the fix. */
static void explain_eperm(void)
{
	uid_t me = geteuid();
	long uids[4], gids[4];
	bool other_user = false;
	for (int i = 0; i < 3; i++) {
		uids[i] = status_field("Uid", i);
		gids[i] = status_field("Gid", i);
		if (uids[i] != (long)getuid() || gids[i] != (long)getgid())
			other_user = true;
	}
	if (me != 0 && other_user)
		fail("not permitted to trace process %d: it runs as uid %ld (gid %ld), you are uid %u; "
		     "run as that user, or as root (CAP_SYS_PTRACE)",
		     pid, uids[1], gids[1], (unsigned)me);
	char buf[16] = "";
	FILE *y = fopen("/proc/sys/kernel/yama/ptrace_scope", "r");
	if (y) {
		if (!fgets(buf, sizeof(buf), y))
			buf[0] = 0;
		fclose(y);
		int scope = atoi(buf);
		if (scope == 1 && me != 0)
			fail("not permitted to trace process %d: kernel.yama.ptrace_scope is 1 (only "
			     "descendants may be traced); run as root (CAP_SYS_PTRACE), or "
			     "`sysctl kernel.yama.ptrace_scope=0`",
			     pid);
		if (scope == 2)
			fail("not permitted to trace process %d: kernel.yama.ptrace_scope is 2 (only with "
			     "CAP_SYS_PTRACE); run as root",
			     pid);
		if (scope == 3)
			fail("not permitted to trace process %d: kernel.yama.ptrace_scope is 3 (ptrace "
			     "disabled until reboot)",
			     pid);
	}
	fail("not permitted to trace process %d: it is not dumpable (set-user-ID, or "
	     "prctl(PR_SET_DUMPABLE, 0)) or this process lacks CAP_SYS_PTRACE (a container?); "
	     "run as root with CAP_SYS_PTRACE",
	     pid);
}

/* The dynamic loader of the target: its path and load base (empty: not found). */
static char ldso_path[PATH_MAX];
static uintptr_t ldso_base;

/* The target's libc: its path and load base (the mapping at file offset 0); its loader too. */
static bool find_libc(char *path, size_t size, uintptr_t *base, bool *has_agent, const char *agent)
{
	char mpath[64], line[PATH_MAX + 256];
	snprintf(mpath, sizeof(mpath), "/proc/%d/maps", pid);
	FILE *f = fopen(mpath, "r");
	if (!f) {
		if (errno == ENOENT)
			fail("no process %d", pid);
		if (errno == EACCES || errno == EPERM)
			explain_eperm();
		fail("cannot read %s: %s", mpath, strerror(errno));
	}
	const char *agent_base = strrchr(agent, '/') ? strrchr(agent, '/') + 1 : agent;
	bool found = false;
	*has_agent = false;
	while (fgets(line, sizeof(line), f)) {
		unsigned long start, off;
		int name_at = 0;
		if (sscanf(line, "%lx-%*x %*s %lx %*s %*s %n", &start, &off, &name_at) < 2 || !name_at)
			continue;
		char *name = line + name_at;
		name[strcspn(name, "\n")] = 0;
		const char *file = strrchr(name, '/') ? strrchr(name, '/') + 1 : name;
		if (!strcmp(file, agent_base))
			*has_agent = true;
		if (!ldso_path[0] && off == 0 && !strncmp(file, "ld-linux", 8) && strstr(file, ".so")) {
			snprintf(ldso_path, sizeof(ldso_path), "%s", name);
			ldso_base = start;
		}
		if (!found && off == 0 &&
		    (!strcmp(file, "libc.so.6") || (!strncmp(file, "libc-2.", 7) && strstr(file, ".so")))) {
			snprintf(path, size, "%s", name);
			*base = start;
			found = true;
		}
	}
	fclose(f);
	return found;
}

/*
 * The offsets of `names` in the ELF file's dynamic symbols (0: not found), functions or data
 * objects (`objects`); `sizes` (may be NULL) gets their st_size.
 */
static void dynsym_lookup(const char *file, const char *const *names, uintptr_t *out, size_t *sizes,
			  int n, bool objects)
{
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fail("cannot open the target's libc %s: %s", file, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) < 0 || st.st_size < (off_t)sizeof(Elf64_Ehdr))
		fail("cannot read the target's libc %s", file);
	const uint8_t *img = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (img == MAP_FAILED)
		fail("cannot map the target's libc %s: %s", file, strerror(errno));
	size_t size = (size_t)st.st_size;
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)img;
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh->e_shoff == 0 || eh->e_shoff + (size_t)eh->e_shnum * sizeof(Elf64_Shdr) > size)
		fail("the target's libc %s is not a 64-bit ELF file with sections", file);
	const Elf64_Shdr *sh = (const Elf64_Shdr *)(img + eh->e_shoff);
	for (int i = 0; i < n; i++) {
		out[i] = 0;
		if (sizes)
			sizes[i] = 0;
	}
	for (unsigned i = 0; i < eh->e_shnum; i++) {
		if (sh[i].sh_type != SHT_DYNSYM || sh[i].sh_link >= eh->e_shnum)
			continue;
		const Elf64_Shdr *strs = &sh[sh[i].sh_link];
		if (sh[i].sh_offset + sh[i].sh_size > size || strs->sh_offset + strs->sh_size > size)
			break;
		const Elf64_Sym *syms = (const Elf64_Sym *)(img + sh[i].sh_offset);
		size_t count = sh[i].sh_size / sizeof(Elf64_Sym);
		for (size_t s = 0; s < count; s++) {
			if (syms[s].st_shndx == SHN_UNDEF || !syms[s].st_value ||
			    ELF64_ST_TYPE(syms[s].st_info) != (objects ? STT_OBJECT : STT_FUNC) ||
			    syms[s].st_name >= strs->sh_size)
				continue;
			const char *name = (const char *)img + strs->sh_offset + syms[s].st_name;
			if (!memchr(name, 0, strs->sh_size - syms[s].st_name))
				continue;
			for (int k = 0; k < n; k++)
				if (!out[k] && !strcmp(name, names[k])) {
					out[k] = syms[s].st_value;
					if (sizes)
						sizes[k] = syms[s].st_size;
				}
		}
	}
	munmap((void *)img, size);
}

/* The agent must be readable by the target's (effective, filesystem) user. */
static void check_agent(const char *agent)
{
	struct stat st;
	if (agent[0] != '/')
		fail("the agent path must be absolute: %s", agent);
	if (stat(agent, &st) < 0)
		fail("the agent %s: %s", agent, strerror(errno));
	if (!S_ISREG(st.st_mode))
		fail("the agent %s is not a regular file", agent);
	long fsuid = status_field("Uid", 3), fsgid = status_field("Gid", 3);
	if (fsuid < 0)
		fail("no process %d", pid);
	if (fsuid == 0)
		return;
	mode_t bit = (long)st.st_uid == fsuid ? S_IRUSR : (long)st.st_gid == fsgid ? S_IRGRP : S_IROTH;
	if (!(st.st_mode & bit))
		fail("the agent %s is not readable by the target's user (uid %ld); make it readable "
		     "(chmod a+r) or copy it where that user can read it",
		     agent, fsuid);
}

static long long now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* The bound on each injected call and on waiting for the loader's lock (ms). */
static long timeout_ms = 5000;

/* Waits for the thread's next stop; until `deadline` (now_ms(); 0: none). 1: timed out. */
static int wait_thread(pid_t tid, int *status, long long deadline)
{
	long nap_us = 20;
	for (;;) {
		pid_t r = waitpid(tid, status, __WALL | (deadline ? WNOHANG : 0));
		if (r == tid)
			return 0;
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (now_ms() >= deadline)
			return 1;
		usleep((useconds_t)nap_us); /* polled: short calls return in microseconds */
		if (nap_us < 1000)
			nap_us *= 2;
	}
}

/* An injected call is running (its end is a SIGSEGV at address 0). */
static bool in_call;

#define MAX_HELD 64
static int held[MAX_HELD], n_held;
static siginfo_t first_info;

static void gone(void) __attribute__((noreturn));
static void gone(void)
{
	fail("process %d exited during injection (the agent may not have been loaded)", pid);
}

/*
 * Runs the thread until it stops at address 0 (the end of an injected call)
 * or in an interrupt stop (want_interrupt). Signals met on the way are held.
 * false: `deadline` (0: none) passed first.
 */
static bool run_until(pid_t tid, bool want_interrupt, long long deadline)
{
	int status;
	for (;;) {
		int w = wait_thread(tid, &status, deadline);
		if (w < 0)
			gone();
		if (w > 0)
			return false;
		if (WIFEXITED(status) || WIFSIGNALED(status))
			gone();
		if (!WIFSTOPPED(status))
			continue;
		int sig = WSTOPSIG(status);
		int event = status >> 16;
		if (event == PTRACE_EVENT_STOP) {
			/* An interrupt stop, or a group-stop (the thread stays stopped: it continues). */
			if (want_interrupt && (sig == SIGTRAP || sig == SIGSTOP || sig == SIGTSTP ||
					       sig == SIGTTIN || sig == SIGTTOU)) {
				if (sig == SIGTRAP)
					return true;
			}
			if (ptrace(PTRACE_CONT, tid, 0, 0) < 0)
				gone();
			continue;
		}
		if (event) {
			if (ptrace(PTRACE_CONT, tid, 0, 0) < 0)
				gone();
			continue;
		}
		/* A signal-delivery-stop. */
		if (in_call && sig == SIGSEGV) {
			struct user_regs_struct r;
			if (ptrace(PTRACE_GETREGS, tid, 0, &r) < 0)
				gone();
			if (r.rip == 0)
				return true;
			fail("the injected call faulted in process %d at 0x%llx; it may be left damaged",
			     pid, (unsigned long long)r.rip);
		}
		if (n_held < MAX_HELD) {
			if (n_held == 0)
				ptrace(PTRACE_GETSIGINFO, tid, 0, &first_info);
			held[n_held++] = sig;
		}
		if (ptrace(PTRACE_CONT, tid, 0, 0) < 0)
			gone();
	}
}

static struct user_regs_struct saved;
static uint8_t xstate[65536] __attribute__((aligned(64)));
static struct iovec xs = {xstate, sizeof(xstate)};
static bool have_xstate, have_fp;
static struct user_fpregs_struct fp;

/* Puts the thread back as it was stopped (the kernel restarts an interrupted call from these),
 * with the signals held meanwhile, and lets it go. */
static void restore_and_detach(pid_t tid)
{
	if (have_xstate)
		ptrace(PTRACE_SETREGSET, tid, (void *)NT_X86_XSTATE, &xs);
	else if (have_fp)
		ptrace(PTRACE_SETFPREGS, tid, 0, &fp);
	if (ptrace(PTRACE_SETREGS, tid, 0, &saved) < 0)
		gone();
	for (int i = 1; i < n_held; i++)
		syscall(SYS_tgkill, pid, tid, held[i]);
	if (n_held)
		ptrace(PTRACE_SETSIGINFO, tid, 0, &first_info);
	if (ptrace(PTRACE_DETACH, tid, 0, (void *)(long)(n_held ? held[0] : 0)) < 0)
		gone();
}

/*
 * An injected call did not return in time: the thread waits for a lock that the thread holding
 * it does not release. It is stopped where it is and put back as it was, and let go. What the
 * call had done is left: said.
 */
static void abandon(pid_t tid, const char *what)
{
	if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) < 0)
		gone();
	if (!run_until(tid, true, now_ms() + 2000))
		fail("the injected %s in process %d did not return within %ld ms and its thread %d "
		     "cannot be stopped; it is left running the call",
		     what, pid, timeout_ms, tid);
	restore_and_detach(tid);
	fail("the injected %s in process %d did not return within %ld ms (its thread %d waits for a "
	     "lock held by another thread, or by itself: stopped inside malloc or the loader); it "
	     "was interrupted and the thread put back where it was, registers restored; the agent "
	     "is not loaded. The loader may keep a stale error handler for that thread; try again "
	     "later",
	     what, pid, timeout_ms, tid);
}

/* Calls fn(a, b) in the thread; returns rax. Arguments already in its memory. */
static uint64_t remote_call(pid_t tid, uintptr_t sp, uintptr_t fn, uint64_t a, uint64_t b,
			    const char *what)
{
	struct user_regs_struct r = saved;
	uint64_t zero = 0;
	sp &= ~(uintptr_t)15;
	sp -= 8; /* the return address: as after a call, rsp % 16 == 8 at entry */
	struct iovec local = {&zero, 8}, remote = {(void *)sp, 8};
	if (process_vm_writev(pid, &local, 1, &remote, 1, 0) != 8)
		fail("cannot write the stack of process %d: %s", pid, strerror(errno));
	r.rip = fn;
	r.rsp = sp;
	r.rdi = a;
	r.rsi = b;
	r.rax = 0;
	r.orig_rax = (unsigned long long)-1; /* no syscall restart for this call */
	r.eflags &= ~(1ULL << 10);	     /* DF clear, as the ABI wants at a call */
	if (ptrace(PTRACE_SETREGS, tid, 0, &r) < 0 || ptrace(PTRACE_CONT, tid, 0, 0) < 0)
		gone();
	in_call = true;
	if (!run_until(tid, false, now_ms() + timeout_ms))
		abandon(tid, what);
	in_call = false;
	if (ptrace(PTRACE_GETREGS, tid, 0, &r) < 0)
		gone();
	return r.rax;
}

/* Writes a string below `*sp`, moving it down; returns its address. */
static uintptr_t push_string(uintptr_t *sp, const char *s)
{
	size_t n = strlen(s) + 1;
	*sp = (*sp - n) & ~(uintptr_t)15;
	struct iovec local = {(void *)s, n}, remote = {(void *)*sp, n};
	if (process_vm_writev(pid, &local, 1, &remote, 1, 0) != (ssize_t)n)
		fail("cannot write the stack of process %d: %s", pid, strerror(errno));
	return *sp;
}

static void read_string(uintptr_t addr, char *buf, size_t size)
{
	buf[0] = 0;
	for (size_t got = 0; got + 1 < size;) {
		size_t chunk = 64 < size - 1 - got ? 64 : size - 1 - got;
		struct iovec local = {buf + got, chunk}, remote = {(void *)(addr + got), chunk};
		ssize_t r = process_vm_readv(pid, &local, 1, &remote, 1, 0);
		if (r <= 0)
			break;
		got += (size_t)r;
		buf[got] = 0;
		if (memchr(buf + got - r, 0, (size_t)r))
			break;
	}
	buf[size - 1] = 0;
}

static pid_t pick_thread(void)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid, pid);
	FILE *f = fopen(path, "r");
	if (f) {
		char buf[512];
		bool zombie = false;
		if (fgets(buf, sizeof(buf), f)) {
			char *p = strrchr(buf, ')');
			zombie = p && (p[2] == 'Z' || p[2] == 'X');
		}
		fclose(f);
		if (!zombie)
			return pid;
	}
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	DIR *d = opendir(path);
	if (!d)
		fail("no process %d", pid);
	pid_t tid = 0;
	for (struct dirent *e; !tid && (e = readdir(d));)
		if (atoi(e->d_name) > 0 && atoi(e->d_name) != pid)
			tid = atoi(e->d_name);
	closedir(d);
	if (!tid)
		fail("no live thread in process %d", pid);
	return tid;
}

/* The target's loader state (_rtld_global in ld.so): address and size (0: not found). */
static uintptr_t rtld_global_at;
static size_t rtld_global_size;

static void find_rtld_global(void)
{
	if (!ldso_path[0])
		return;
	char file[PATH_MAX + 32];
	snprintf(file, sizeof(file), "/proc/%d/root%s", pid, ldso_path);
	if (access(file, R_OK) < 0)
		snprintf(file, sizeof(file), "%s", ldso_path);
	if (access(file, R_OK) < 0)
		return;
	static const char *const names[] = {"_rtld_global"};
	uintptr_t off;
	size_t size;
	dynsym_lookup(file, names, &off, &size, 1, true);
	if (off && size >= 40 && size <= 65536) {
		rtld_global_at = ldso_base + off;
		rtld_global_size = size;
	}
}

static bool is_thread_of_target(long tid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task/%ld", pid, tid);
	return tid > 0 && access(path, F_OK) == 0;
}

/*
 * A thread holding one of the loader's locks (_rtld_global's recursive mutexes: dl_load_lock,
 * dl_load_write_lock, dl_load_tls_lock), or 0. Read from the target's memory: a recursive
 * pthread mutex that is locked reads {lock != 0, count >= 1, owner = a thread of the target,
 * nusers >= 1, kind = PTHREAD_MUTEX_RECURSIVE_NP}; the layout of the structure around them
 * is glibc's private business, so every aligned position is looked at.
 */
static pid_t loader_lock_holder(void)
{
	if (!rtld_global_at)
		return 0;
	static int32_t words[65536 / 4];
	struct iovec local = {words, rtld_global_size}, remote = {(void *)rtld_global_at, rtld_global_size};
	if (process_vm_readv(pid, &local, 1, &remote, 1, 0) != (ssize_t)rtld_global_size)
		return 0;
	size_t n = rtld_global_size / 4;
	for (size_t i = 0; i + 5 <= n; i++) {
		int32_t lock = words[i], count = words[i + 1], owner = words[i + 2], users = words[i + 3],
			kind = words[i + 4];
		if (lock != 0 && count >= 1 && owner > 0 && users >= 1 && kind == PTHREAD_MUTEX_RECURSIVE_NP &&
		    is_thread_of_target(owner))
			return owner;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: bpftime-inject PID AGENT SEGMENT\n");
		return 2;
	}
	char *end;
	long p = strtol(argv[1], &end, 10);
	if (*end || p <= 0 || p > INT_MAX)
		fail("not a process id: %s", argv[1]);
	pid = (pid_t)p;
	const char *agent = argv[2], *segment = argv[3];
	if (pid == getpid())
		fail("cannot attach to itself");

	char libc[PATH_MAX];
	uintptr_t libc_base = 0;
	bool has_agent;
	bool dynamic = find_libc(libc, sizeof(libc), &libc_base, &has_agent, agent);
	if (has_agent) {
		printf("process %d already runs the bpftime agent\n", pid);
		return 3;
	}
	if (!dynamic)
		fail("process %d has no libc.so.6 mapped (statically linked?): there is no dlopen to "
		     "load the agent with",
		     pid);
	check_agent(agent);
	/* The file the target mapped, seen through its root (it may be in another mount namespace). */
	char libc_file[PATH_MAX + 32];
	snprintf(libc_file, sizeof(libc_file), "/proc/%d/root%s", pid, libc);
	if (access(libc_file, R_OK) < 0)
		snprintf(libc_file, sizeof(libc_file), "%s", libc);
	static const char *const names[] = {"dlopen", "dlsym", "dlerror", "dlclose"};
	uintptr_t off[4];
	dynsym_lookup(libc_file, names, off, NULL, 4, false);
	if (!off[0] || !off[1] || !off[2] || !off[3])
		fail("the target's libc %s exports no dlopen/dlsym (glibc older than 2.34?)", libc);

	/* Not stopped halfway (the thread would be let go with the injected registers). */
	sigset_t stop_signals;
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGINT);
	sigaddset(&stop_signals, SIGTERM);
	sigaddset(&stop_signals, SIGHUP);
	sigaddset(&stop_signals, SIGQUIT);
	sigprocmask(SIG_BLOCK, &stop_signals, NULL);

	pid_t tid = pick_thread();
	if (ptrace(PTRACE_SEIZE, tid, 0, 0) < 0) {
		if (errno == ESRCH)
			fail("no process %d", pid);
		if (errno == EPERM)
			explain_eperm();
		fail("cannot trace process %d: %s", pid, strerror(errno));
	}
	const char *limit = getenv("BPFTIME_INJECT_TIMEOUT_MS");
	if (limit && atol(limit) > 0)
		timeout_ms = atol(limit);
	const char *no_check = getenv("BPFTIME_INJECT_NO_LOADER_CHECK");
	if (!no_check || strcmp(no_check, "1"))
		find_rtld_global();
	if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) < 0)
		gone();
	run_until(tid, true, 0);
	/*
	 * A moment when no thread holds the loader's lock (dlopen would wait for it), and
	 * preferably with the thread in a system call: a thread stopped in its own code may hold
	 * a lock dlopen needs (malloc's). One that never enters the kernel is taken as it is.
	 */
	long long deadline = now_ms() + timeout_ms;
	for (int tries = 0;; tries++) {
		if (ptrace(PTRACE_GETREGS, tid, 0, &saved) < 0)
			gone();
		pid_t holder = loader_lock_holder();
		if (!holder && ((long long)saved.orig_rax >= 0 || tries >= 100))
			break;
		if (holder && now_ms() >= deadline) {
			restore_and_detach(tid); /* nothing changed: it goes on as it was */
			fail("the dynamic loader's lock in process %d is held by its thread %d (inside "
			     "dlopen or dlclose: a library constructor or destructor that takes long?) "
			     "for over %ld ms; nothing was loaded; try again when it is free",
			     pid, holder, timeout_ms);
		}
		if (ptrace(PTRACE_CONT, tid, 0, 0) < 0)
			gone();
		usleep(holder ? 10000 : 1000);
		if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) < 0)
			gone();
		run_until(tid, true, 0);
	}
	/* For tests: a window in which signals and exits meet the injection. */
	const char *pause = getenv("BPFTIME_INJECT_PAUSE_MS");
	if (pause && atoi(pause) > 0)
		usleep((useconds_t)atoi(pause) * 1000);

	/* Saved: general registers and the whole extended state (x87, SSE, AVX...). */
	if (ptrace(PTRACE_GETREGS, tid, 0, &saved) < 0)
		gone();
	have_xstate = ptrace(PTRACE_GETREGSET, tid, (void *)NT_X86_XSTATE, &xs) == 0;
	have_fp = !have_xstate && ptrace(PTRACE_GETFPREGS, tid, 0, &fp) == 0;

	uintptr_t sp = saved.rsp - 128 - 256; /* below the red zone, with room */
	uintptr_t path_at = push_string(&sp, agent);
	uintptr_t sym_at = push_string(&sp, "bpftime_agent_attach");
	uintptr_t seg_at = push_string(&sp, segment);
	sp -= 64;

	char err[1024] = "";
	uint64_t handle = remote_call(tid, sp, libc_base + off[0], path_at, RTLD_NOW, "dlopen");
	if (!handle) {
		uint64_t msg = remote_call(tid, sp, libc_base + off[2], 0, 0, "dlerror");
		if (msg)
			read_string(msg, err, sizeof(err));
		snprintf(err + strlen(err), sizeof(err) - strlen(err), "%s",
			 msg ? "" : "dlopen failed");
	} else {
		uint64_t fn = remote_call(tid, sp, libc_base + off[1], handle, sym_at, "dlsym");
		if (!fn)
			snprintf(err, sizeof(err), "the agent %s has no bpftime_agent_attach", agent);
		else if ((int)remote_call(tid, sp, fn, seg_at, 0, "bpftime_agent_attach") != 0)
			snprintf(err, sizeof(err),
				 "the agent could not open segment %s as the process's user (its reason is "
				 "on the process's stderr); unloaded",
				 segment);
		if (*err) /* nothing left: it started no thread and hooked nothing */
			remote_call(tid, sp, libc_base + off[3], handle, 0, "dlclose");
	}

	/* Put back exactly; the kernel restarts an interrupted call from these. */
	restore_and_detach(tid);
	if (*err)
		fail("%s", err);
	printf("loaded the bpftime agent into process %d (segment %s)\n", pid, segment);
	return 0;
}
