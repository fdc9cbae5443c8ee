// SPDX-License-Identifier: MIT
/* The libbpf application tests/targets/tp_opens.c: openat calls on /tmp/bpftime_tp_srv* per process. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct enter_openat {
	__u64 header;
	__s32 __syscall_nr;
	__s64 dfd;
	__u64 filename;
	__s64 flags;
	__s64 mode;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} opens SEC(".maps");

SEC("tp/syscalls/sys_enter_openat")
int on_openat(struct enter_openat *ctx)
{
	char s[20] = {};
	if (bpf_probe_read_user_str(s, sizeof(s), (const void *)ctx->filename) < 0)
		return 0;
	const char prefix[] = "/tmp/bpftime_tp_srv";
	for (int i = 0; i < (int)sizeof(prefix) - 1; i++)
		if (s[i] != prefix[i])
			return 0;
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	__u64 one = 1, *c = bpf_map_lookup_elem(&opens, &pid);
	if (c)
		__sync_fetch_and_add(c, 1);
	else
		bpf_map_update_elem(&opens, &pid, &one, BPF_NOEXIST);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
