/*
 * inline_read_stress: bpf_probe_read_user compiled inline by the JIT (csrc/vm/jit_probe_read.c)
 * on bad memory, everywhere a probe may run. Threads read unmapped, PROT_NONE, NULL-page and
 * kernel addresses (and good memory) while another thread keeps loading and freeing programs
 * with inline reads (their exception-table slots come and go) and SIGUSR1 handlers run a read
 * of bad memory in signal context; then a forked child reads; then more programs than there
 * are exception-table slots read; then the process's own SIGSEGV handler must still get its own
 * fault. Every bad read must be -EFAULT with the destination
 * zeroed, every good one the bytes. Prints "ok ..." and exits 0, or names what went wrong.
 */
#include "../../csrc/include/bpftime.h"

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

struct insn {
	uint8_t code, regs;
	int16_t off;
	int32_t imm;
};

#define READ_SIZE 24
#define EFAULT_RET ((uint64_t)-14)

/*
 * r3 = *(u64 *)ctx; fill r10-32..r10-8 with ones; probe_read_user(r10 - 32, 24, r3);
 * return r0 ^ (xor of the three destination words) ^ 1 (1: the bytes were all read as ones).
 */
static const struct insn prog[] = {
	{0x79, 0x13, 0, 0},	     /* r3 = *(u64 *)(r1 + 0) */
	{0x7a, 0x0a, -32, -1},	     /* *(u64 *)(r10 - 32) = -1 */
	{0x7a, 0x0a, -24, -1},	     /* *(u64 *)(r10 - 24) = -1 */
	{0x7a, 0x0a, -16, -1},	     /* *(u64 *)(r10 - 16) = -1 */
	{0xbf, 0xa1, 0, 0},	     /* r1 = r10 */
	{0x07, 0x01, 0, -32},	     /* r1 += -32 */
	{0xb7, 0x02, 0, READ_SIZE},  /* r2 = 24 */
	{0x85, 0, 0, 112},	     /* call bpf_probe_read_user */
	{0x79, 0xa1, -32, 0},	     /* r1 = *(u64 *)(r10 - 32) */
	{0xaf, 0x10, 0, 0},	     /* r0 ^= r1 */
	{0x79, 0xa1, -24, 0},	     /* r1 = *(u64 *)(r10 - 24) */
	{0xaf, 0x10, 0, 0},	     /* r0 ^= r1 */
	{0x79, 0xa1, -16, 0},	     /* r1 = *(u64 *)(r10 - 16) */
	{0xaf, 0x10, 0, 0},	     /* r0 ^= r1 */
	{0x95, 0, 0, 0},	     /* exit */
};

static uint64_t bad[6];
static uint64_t good; /* 24 bytes of 0x5a: r0 = 0x5a5a..5a (xor of three equal words) */
static const uint64_t GOOD_RET = 0x5a5a5a5a5a5a5a5aull;
static atomic_int failures, stop;
static atomic_long reads, signal_reads;

static struct bpftime_vm *new_vm(void)
{
	struct bpftime_vm *vm = bpftime_vm_create();
	if (!vm || bpftime_vm_set_engine(vm, "jit") < 0 || bpftime_vm_register_runtime(vm, NULL) < 0 ||
	    bpftime_vm_load(vm, prog, sizeof(prog)) < 0) {
		fprintf(stderr, "vm: %s\n", bpftime_last_error());
		exit(2);
	}
	return vm;
}

static void check(struct bpftime_vm *vm, uint64_t addr, uint64_t want, const char *where)
{
	uint64_t ctx = addr, ret = 0;
	if (bpftime_vm_exec(vm, &ctx, sizeof(ctx), &ret) < 0 || ret != want) {
		if (atomic_fetch_add(&failures, 1) < 5)
			fprintf(stderr, "%s: read of %#lx gave %#lx, want %#lx (%s)\n", where, (unsigned long)addr,
				(unsigned long)ret, (unsigned long)want, bpftime_last_error());
	}
	atomic_fetch_add(&reads, 1);
}

static void read_all(struct bpftime_vm *vm, const char *where)
{
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		check(vm, bad[i], EFAULT_RET, where);
	check(vm, good, GOOD_RET, where);
}

static void *reader(void *arg)
{
	(void)arg;
	struct bpftime_vm *vm = new_vm();
	while (!atomic_load(&stop))
		read_all(vm, "thread");
	bpftime_vm_destroy(vm);
	return NULL;
}

/* Programs with inline reads loaded and freed all the time: slots published and withdrawn. */
static void *churn(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		struct bpftime_vm *vm = new_vm();
		check(vm, bad[0], EFAULT_RET, "churn");
		bpftime_vm_destroy(vm);
	}
	return NULL;
}

static struct bpftime_vm *signal_vm;
static void on_usr1(int sig)
{
	(void)sig;
	read_all(signal_vm, "signal handler");
	atomic_fetch_add(&signal_reads, 1);
}

static sigjmp_buf back;
static volatile uintptr_t own_fault;
static void own_segv(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)uc;
	own_fault = (uintptr_t)si->si_addr;
	siglongjmp(back, 1);
}

int main(void)
{
	long page = sysconf(_SC_PAGESIZE);
	char *m = mmap(NULL, 2 * (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return 2;
	memset(m, 0x5a, (size_t)page);
	mprotect(m + page, (size_t)page, PROT_NONE);
	unsigned char in_core;
	if (mincore((void *)0x200000, (size_t)page, &in_core) == 0) {
		fprintf(stderr, "0x200000 is mapped\n");
		return 2;
	}
	good = (uintptr_t)m;
	bad[0] = 0x10;					/* the NULL page */
	bad[1] = (uintptr_t)m + (uint64_t)page;		/* PROT_NONE */
	bad[2] = (uintptr_t)m + (uint64_t)page - 8;	/* 8 good bytes, then the guard page */
	bad[3] = 0x200000;				/* unmapped (checked: nothing maps that low) */
	bad[4] = 0xffffffff81000000ull;			/* a kernel address */
	bad[5] = 1ull << 63;				/* not canonical */

	signal_vm = new_vm();
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);

	pthread_t t[4];
	for (int i = 0; i < 3; i++)
		pthread_create(&t[i], NULL, reader, NULL);
	pthread_create(&t[3], NULL, churn, NULL);
	struct bpftime_vm *vm = new_vm();
	for (int round = 0; round < 2000; round++) {
		read_all(vm, "main");
		for (int i = 0; i < 3; i++)
			pthread_kill(t[i], SIGUSR1); /* a signal handler's read in the middle of a thread's */
		raise(SIGUSR1);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);

	pid_t child = fork();
	if (child == 0) {
		read_all(vm, "forked child");
		_exit(atomic_load(&failures) ? 1 : 0);
	}
	int status = 0;
	waitpid(child, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "forked child: status %#x\n", status);
		atomic_fetch_add(&failures, 1);
	}

	/* More programs than exception-table slots (1,024): the ones without a slot call the copy. */
	enum { MANY = 1100 };
	static struct bpftime_vm *many[MANY];
	for (int i = 0; i < MANY; i++)
		many[i] = new_vm();
	for (int i = 0; i < MANY; i++)
		read_all(many[i], "one of many programs");
	for (int i = 0; i < MANY; i++)
		bpftime_vm_destroy(many[i]);

	/* The process's own handler, set after ours, still gets its own faults. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = own_segv;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGSEGV, &sa, NULL);
	read_all(vm, "after own handler");
	if (sigsetjmp(back, 1) == 0)
		*(volatile int *)(uintptr_t)bad[3] = 1;
	if (own_fault != bad[3]) {
		fprintf(stderr, "own handler: fault at %#lx, want %#lx\n", (unsigned long)own_fault,
			(unsigned long)bad[3]);
		atomic_fetch_add(&failures, 1);
	}
	bpftime_vm_destroy(vm);
	bpftime_vm_destroy(signal_vm);
	if (atomic_load(&failures))
		return 1;
	printf("ok: %ld reads, %ld in signal handlers\n", atomic_load(&reads), atomic_load(&signal_reads));
	return 0;
}
