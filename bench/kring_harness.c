/*
 * bench-daemon's per-output figures for fronted kernel ring buffers (csrc/maps/kernel_ring.c):
 * ns per 24-byte record output by test-running the output program in the calling thread (what
 * the agent does), against handing the record to another thread over a unix socket that runs the
 * same test run and answers (the least a "daemon outputs on the agent's behalf" design would cost,
 * without the process switch or the fd passing). A kernel ring buffer of 1 MiB, its consumer
 * position moved up every 1000 records so it never fills. Root. Prints one JSON object.
 *
 *   kring_harness [OUTPUTS] [RUNS]
 */
#define _GNU_SOURCE
#include "../csrc/include/bpftime.h"

#include <linux/bpf.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static int prog_fd;
static volatile uint64_t *cons, *prod;

static long sys_bpf(int cmd, union bpf_attr *a)
{
	return syscall(SYS_bpf, cmd, a, sizeof(*a));
}

static int output(const void *rec, uint64_t size)
{
	uint64_t ctx[3] = {(uintptr_t)rec, size, 0};
	union bpf_attr a = {.test = {.prog_fd = (uint32_t)prog_fd, .ctx_in = (uintptr_t)ctx,
				     .ctx_size_in = sizeof(ctx)}};
	return sys_bpf(BPF_PROG_TEST_RUN, &a) < 0 ? -1 : (int)a.test.retval;
}

static double now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

static void *server(void *arg)
{
	int s = (int)(intptr_t)arg;
	uint8_t rec[24];
	while (recv(s, rec, sizeof(rec), 0) == (ssize_t)sizeof(rec)) {
		int rc = output(rec, sizeof(rec));
		if (send(s, &rc, sizeof(rc), 0) != sizeof(rc))
			break;
	}
	return NULL;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 100000;
	int runs = argc > 2 ? atoi(argv[2]) : 5;
	union bpf_attr a = {.map_type = BPF_MAP_TYPE_RINGBUF, .max_entries = 1 << 20};
	int map = (int)sys_bpf(BPF_MAP_CREATE, &a);
	struct bpf_map_info info;
	memset(&info, 0, sizeof(info));
	union bpf_attr q = {.info = {.bpf_fd = (uint32_t)map, .info_len = sizeof(info), .info = (uintptr_t)&info}};
	if (map < 0 || sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &q) < 0) {
		perror("kring_harness: ring buffer");
		return 1;
	}
	prog_fd = bpftime_kernel_output_prog(info.id);
	cons = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, map, 0);
	prod = mmap(NULL, 4096, PROT_READ, MAP_SHARED, map, 4096);
	if (prog_fd < 0 || cons == MAP_FAILED || prod == MAP_FAILED) {
		fprintf(stderr, "kring_harness: output program or ring mapping: %s\n", strerror(-prog_fd));
		return 1;
	}
	int sv[2];
	socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv);
	pthread_t t;
	pthread_create(&t, NULL, server, (void *)(intptr_t)sv[1]);
	uint8_t rec[24] = {1, 2, 3};
	double direct[64], via[64];
	long failed = 0;
	for (int r = 0; r < runs && r < 64; r++) {
		double t0 = now_ns();
		for (long i = 0; i < n; i++) {
			failed += output(rec, sizeof(rec)) != 0;
			if (i % 1000 == 999)
				*cons = *prod;
		}
		direct[r] = (now_ns() - t0) / n;
		*cons = *prod;
		t0 = now_ns();
		for (long i = 0; i < n; i++) {
			int rc = -1;
			send(sv[0], rec, sizeof(rec), 0);
			recv(sv[0], &rc, sizeof(rc), 0);
			failed += rc != 0;
			if (i % 1000 == 999)
				*cons = *prod;
		}
		via[r] = (now_ns() - t0) / n;
		*cons = *prod;
	}
	close(sv[0]);
	pthread_join(t, NULL);
	qsort(direct, (size_t)runs, sizeof(double), cmp);
	qsort(via, (size_t)runs, sizeof(double), cmp);
	printf("{\"outputs_per_run\":%ld,\"runs\":%d,\"test_run_ns\":%.1f,\"via_socket_ns\":%.1f,\"failed\":%ld}\n",
	       n, runs, direct[runs / 2], via[runs / 2], failed);
	return 0;
}
