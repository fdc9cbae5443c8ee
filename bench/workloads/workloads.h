/*
 * Benchmark workloads: each is compiled once to eBPF (clang -target bpf) and
 * once to native code, so both sides run the same algorithm. Signature of an
 * eBPF program: r1 = memory block, r2 = its length; returns r0.
 */
#ifndef WORKLOADS_H
#define WORKLOADS_H

typedef unsigned long long u64;
typedef unsigned char u8;

#ifdef __bpf__
#define WORKLOAD(name) __attribute__((section("workload/" #name), used)) u64 name(u8 *mem, u64 len)
#else
#define WORKLOAD(name) __attribute__((noinline, visibility("default"))) u64 name(u8 *mem, u64 len)
#endif

u64 prime(u8 *mem, u64 len);
u64 memcmp64k(u8 *mem, u64 len);
u64 fib(u8 *mem, u64 len);
u64 bitops(u8 *mem, u64 len);
u64 helper_calls(u8 *mem, u64 len);
u64 probe_read8(u8 *mem, u64 len);
u64 probe_str64(u8 *mem, u64 len);
u64 str_hash(u8 *mem, u64 len);
u64 struct_walk(u8 *mem, u64 len);

#endif
