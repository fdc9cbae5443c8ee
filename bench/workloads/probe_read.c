#include "workloads.h"

/*
 * Reads of user memory as a tracer makes them: eBPF calls bpf_probe_read_user (112) and
 * bpf_probe_read_user_str (114); native code calls plain copies through pointers
 * (native_probe_read*, native_harness.c: memcpy and a bounded strcpy, no fault handling), the
 * cost of a read in-process without any protection.
 */
#ifdef __bpf__
static long (*const probe_read_user)(void *dst, unsigned size, const void *src) = (void *)112;
static long (*const probe_read_user_str)(void *dst, unsigned size, const void *src) = (void *)114;
#else
extern long (*volatile native_probe_read_ptr)(void *, unsigned, const void *);
extern long (*volatile native_probe_read_str_ptr)(void *, unsigned, const void *);
#define probe_read_user native_probe_read_ptr
#define probe_read_user_str native_probe_read_str_ptr
#endif

/* 1,000 8-byte reads; mem holds at least 512 bytes. */
WORKLOAD(probe_read8)
{
	u64 acc = 0;
	for (u64 i = 0; i < 1000; i++) {
		u64 v = 0;
		probe_read_user(&v, 8, mem + ((i + len) & 63) * 8);
		acc += v;
	}
	return acc;
}

/* 100 reads of a 64-byte string (63 characters and the NUL) at mem. */
WORKLOAD(probe_str64)
{
	u64 acc = 0;
	for (u64 i = 0; i < 100; i++) {
		char buf[128];
		acc += (u64)probe_read_user_str(buf, sizeof(buf), mem + (len & 1));
		acc += (u8)buf[i & 31];
	}
	return acc;
}

/* 100 times: read the string at mem (a path), FNV-1a hash it, compare its start with "/usr/lib". */
WORKLOAD(str_hash)
{
	u64 acc = 0;
	for (u64 i = 0; i < 100; i++) {
		char buf[64];
		long n = probe_read_user_str(buf, sizeof(buf), mem + (len & 1));
		if (n <= 0)
			continue;
		u64 h = 0xcbf29ce484222325ull;
		for (int j = 0; j < 64; j++) {
			if (!buf[j])
				break;
			h = (h ^ (u8)buf[j]) * 0x100000001b3ull;
		}
		const char want[8] = {'/', 'u', 's', 'r', '/', 'l', 'i', 'b'};
		int same = 1;
		for (int j = 0; j < 8; j++)
			same &= buf[j] == want[j];
		acc += h + (u64)same;
	}
	return acc;
}

/* A linked list in mem (struct node at 64-byte steps, next as an offset): 200 nodes walked. */
struct node {
	u64 next, value, pad[2];
};
WORKLOAD(struct_walk)
{
	u64 acc = 0, at = len & 0;
	for (u64 i = 0; i < 200; i++) {
		struct node n;
		if (probe_read_user(&n, sizeof(n), mem + at) < 0)
			break;
		acc += n.value;
		at = n.next & 1023;
	}
	return acc;
}
