/*
 * The scripted activity for bpftrace's tools (tests/bpftrace_tools_test.ts): one mode per
 * tool family, each making a known set of calls, then printing "done PID" (and, for modes that
 * start other threads or processes, their ids as "tid N" / "child N" before it).
 *
 *   open      opensnoop: a marker open (missing), /etc/hostname, a missing path
 *   stat      statsnoop: statfs, statx, stat and lstat (as raw syscalls: glibc uses newfstatat)
 *   sync      syncsnoop: sync, syncfs, fsync, fdatasync, sync_file_range, msync
 *   kill      killsnoop: kill(self, 0), kill(no such pid, SIGTERM)
 *   setuid    setuids: setuid(0), setfsuid(0), setresuid(-1, -1, -1) (we are root)
 *   nap       naptime: nanosleep(0.123 s) as the nanosleep syscall (glibc uses clock_nanosleep)
 *   exec      execsnoop: fork, the child execs /bin/true with arguments
 *   thread    threadsnoop: pthread_create of bt_tools_worker, joined
 *   host      gethostlatency: getaddrinfo and gethostbyname of "localhost"
 *   count     syscount: 200000 getitimer calls, a syscall nothing else on the machine makes often
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/fsuid.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

__attribute__((noinline)) void *bt_tools_worker(void *arg)
{
	printf("tid %ld\n", (long)syscall(SYS_gettid));
	return arg;
}

static void opens(void)
{
	int fd = open("/tmp/bt-tools-begin-missing", O_RDONLY);
	fd = open("/etc/hostname", O_RDONLY);
	if (fd >= 0)
		close(fd);
	fd = open("/tmp/bt-tools-missing", O_RDONLY);
	(void)fd;
}

static void stats(void)
{
	struct statfs sf;
	struct statx sx;
	struct stat st;
	statfs("/tmp", &sf);
	statx(AT_FDCWD, "/etc/hostname", 0, STATX_BASIC_STATS, &sx);
	syscall(SYS_stat, "/tmp/bt-tools-missing", &st);
	syscall(SYS_lstat, "/etc/hostname", &st);
}

static void syncs(void)
{
	char path[] = "/tmp/bt-tools-syncXXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		return;
	unlink(path);
	if (write(fd, "x", 1) != 1 || ftruncate(fd, 4096) < 0)
		return;
	sync();
	syncfs(fd);
	fsync(fd);
	fdatasync(fd);
	sync_file_range(fd, 0, 1, SYNC_FILE_RANGE_WRITE);
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p != MAP_FAILED) {
		msync(p, 4096, MS_SYNC);
		munmap(p, 4096);
	}
	close(fd);
}

static void execs(void)
{
	pid_t child = fork();
	if (child == 0) {
		/*
		 * The arguments written in the child, as a shell builds them: the kernel's probe cannot
		 * read pages the child has not touched yet (after fork, .rodata is not mapped in the
		 * child's page tables until it faults), and would print no arguments.
		 */
		char path[] = "/bin/true", a0[] = "true", a1[] = "bt-tools-arg", a2[] = "second";
		char *argv[] = {a0, a1, a2, NULL};
		execv(path, argv);
		_exit(127);
	}
	printf("child %d\n", child);
	waitpid(child, NULL, 0);
}

static void hosts(void)
{
	struct addrinfo *ai = NULL;
	if (getaddrinfo("localhost", NULL, NULL, &ai) == 0)
		freeaddrinfo(ai);
	gethostbyname("localhost");
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(mode, "open")) {
		opens();
	} else if (!strcmp(mode, "stat")) {
		stats();
	} else if (!strcmp(mode, "sync")) {
		syncs();
	} else if (!strcmp(mode, "kill")) {
		kill(getpid(), 0);
		kill(0x3ffffff0, SIGTERM); /* above pid_max's limit: ESRCH */
	} else if (!strcmp(mode, "setuid")) {
		setuid(0);
		setfsuid(0);
		setresuid(-1, -1, -1);
	} else if (!strcmp(mode, "nap")) {
		struct timespec t = {0, 123000000};
		syscall(SYS_nanosleep, &t, NULL);
	} else if (!strcmp(mode, "exec")) {
		execs();
	} else if (!strcmp(mode, "thread")) {
		pthread_t t;
		if (pthread_create(&t, NULL, bt_tools_worker, NULL) == 0)
			pthread_join(t, NULL);
		usleep(1500 * 1000); /* bpftrace resolves usym() in our maps, while we live */
	} else if (!strcmp(mode, "host")) {
		hosts();
	} else if (!strcmp(mode, "count")) {
		struct itimerval v;
		for (int i = 0; i < 200000; i++)
			syscall(SYS_getitimer, ITIMER_REAL, &v);
	} else {
		fprintf(stderr, "usage: %s open|stat|sync|kill|setuid|nap|exec|thread|host|count\n", argv[0]);
		return 2;
	}
	printf("done %d\n", getpid());
	return 0;
}
