/*
 * segv_chain own|default|later: runs a program whose probe_read faults (which installs the
 * runtime's SIGSEGV handler), then faults itself. "own": its own handler, installed first, must
 * get the fault (and siglongjmps out); "default": the process must die of SIGSEGV; "later": it
 * installs its handler after the runtime's, reads it back, gets its fault, and the program's
 * bad reads after that are still -EFAULT.
 */
#include "../../csrc/include/bpftime.h"

#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static sigjmp_buf back;
static volatile uintptr_t fault_addr;
static volatile uintptr_t bad = 0x18; /* volatile: the compiler cannot see it is bad */

static void own(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)uc;
	fault_addr = (uintptr_t)si->si_addr;
	siglongjmp(back, 1);
}

struct insn {
	uint8_t code, regs;
	int16_t off;
	int32_t imm;
};

static void install_own(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = own;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGSEGV, &sa, NULL);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "default";
	if (strcmp(mode, "own") == 0)
		install_own();
	/* r1 = r10 - 8; r2 = 8; r3 = 0x10; call bpf_probe_read_user; exit */
	const struct insn prog[] = {
		{0xbf, 0xa1, 0, 0}, {0x07, 0x01, 0, -8}, {0xb7, 0x02, 0, 8}, {0x18, 0x03, 0, 0x10},
		{0, 0, 0, 0},       {0x85, 0, 0, 112},   {0x95, 0, 0, 0},
	};
	struct bpftime_vm *vm = bpftime_vm_create();
	if (!vm || bpftime_vm_register_runtime(vm, NULL) < 0 ||
	    bpftime_vm_load(vm, prog, sizeof(prog)) < 0) {
		fprintf(stderr, "vm: %s\n", bpftime_last_error());
		return 2;
	}
	uint64_t ret = 0;
	if (bpftime_vm_exec(vm, NULL, 0, &ret) < 0) {
		fprintf(stderr, "exec: %s\n", bpftime_last_error());
		return 2;
	}
	printf("probe_read: %lld\n", (long long)ret);
	fflush(stdout);
	if (strcmp(mode, "later") == 0) {
		install_own();
		struct sigaction now;
		sigaction(SIGSEGV, NULL, &now);
		printf("reads back its handler: %d\n", (now.sa_flags & SA_SIGINFO) && now.sa_sigaction == own);
		ret = 0;
		if (bpftime_vm_exec(vm, NULL, 0, &ret) < 0)
			return 2;
		printf("probe_read after: %lld\n", (long long)ret);
		fflush(stdout);
	}
	if (sigsetjmp(back, 1) == 0)
		*(volatile int *)bad = 1;
	printf("own handler: fault at %#lx\n", (unsigned long)fault_addr);
	bpftime_vm_destroy(vm);
	return 0;
}
