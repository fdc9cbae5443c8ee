// SPDX-License-Identifier: MIT
/*
 * Attaches a one-line program the way a libbpf application would, through
 * perf_event_open of bpftime's own perf types (run it under `bpftime load`):
 *
 *   override_perf override PATH OFFSET VALUE   type 1008: a uprobe whose program
 *       calls bpf_override_return(ctx, VALUE)
 *   override_perf replace PATH OFFSET VALUE    type 1009: a replace program returning VALUE
 *   override_perf uprobe PATH OFFSET VALUE     the uprobe PMU, bpf_override_return(ctx, VALUE)
 *
 * Prints "attached" (or "perf_event_open: errno N" and exits 1), then waits for SIGTERM.
 */
#include <errno.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static int prog_load(const struct bpf_insn *insns, unsigned n)
{
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.prog_type = BPF_PROG_TYPE_KPROBE;
	a.insns = (unsigned long)insns;
	a.insn_cnt = n;
	a.license = (unsigned long)"GPL";
	return (int)syscall(SYS_bpf, BPF_PROG_LOAD, &a, sizeof(a));
}

static int uprobe_type(void)
{
	FILE *f = fopen("/sys/bus/event_source/devices/uprobe/type", "re");
	int t = -1;
	if (f) {
		if (fscanf(f, "%d", &t) != 1)
			t = -1;
		fclose(f);
	}
	return t;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: override_perf override|replace|uprobe PATH OFFSET VALUE\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	int value = atoi(argv[4]);
	bool replace = strcmp(argv[1], "replace") == 0;
	/* replace: r0 = VALUE. Otherwise: r2 = VALUE; call bpf_override_return (r1 is ctx); r0 = 0. */
	struct bpf_insn rep[] = {
		{.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = value},
		{.code = BPF_JMP | BPF_EXIT},
	};
	struct bpf_insn ovr[] = {
		{.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 2, .imm = value},
		{.code = BPF_JMP | BPF_CALL, .imm = 58},
		{.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = 0},
		{.code = BPF_JMP | BPF_EXIT},
	};
	int prog = replace ? prog_load(rep, 2) : prog_load(ovr, 4);
	if (prog < 0) {
		printf("BPF_PROG_LOAD: errno %d\n", errno);
		return 1;
	}
	struct perf_event_attr attr;
	memset(&attr, 0, sizeof(attr));
	attr.size = sizeof(attr);
	attr.type = strcmp(argv[1], "uprobe") == 0 ? (unsigned)uprobe_type() : replace ? 1009 : 1008;
	attr.config1 = (unsigned long)argv[2];
	attr.config2 = strtoull(argv[3], NULL, 0);
	int fd = (int)syscall(SYS_perf_event_open, &attr, -1, 0, -1, PERF_FLAG_FD_CLOEXEC);
	if (fd < 0) {
		printf("perf_event_open: errno %d\n", errno);
		return 1;
	}
	if (ioctl(fd, PERF_EVENT_IOC_SET_BPF, prog) < 0 || ioctl(fd, PERF_EVENT_IOC_ENABLE, 0) < 0) {
		printf("ioctl: errno %d\n", errno);
		return 1;
	}
	printf("attached\n");
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	int sig;
	sigwait(&set, &sig);
	close(fd);
	close(prog);
	return 0;
}
