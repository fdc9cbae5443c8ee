/*
 * Maps with a BTF-declared struct bpf_spin_lock, made through bpf(2) with BTF
 * built by hand, for the syscall server's differential test
 * (tests/server_pins_test.ts): each JSON field is what one call returned ("ok"
 * or the errno's name) or a value read back. Run as root it asks the kernel,
 * under `bpftime load` the server; the answers must be the same.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/bpf.h>
#include <linux/btf.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bpf_answers.h"

/* Strings: offsets below index into it. */
static const char strs[] = "\0int\0bpf_spin_lock\0val\0val_t\0lock\0pad\0count\0long\0two\0a\0b\0mis";
enum { S_INT = 1, S_LOCKT = 5, S_VAL = 19, S_VALT = 23, S_LOCK = 29, S_PAD = 34, S_COUNT = 38,
       S_LONG = 44, S_TWO = 49, S_A = 53, S_B = 55, S_MIS = 57 };

/* Types: 1 int, 2 struct bpf_spin_lock, 3 struct val_t {lock; int pad; long count}, 4 long. */
static uint32_t types[] = {
	/* 1 */ S_INT, BTF_KIND_INT << 24, 4, (BTF_INT_SIGNED << 24) | 32,
	/* 2 */ S_LOCKT, (BTF_KIND_STRUCT << 24) | 1, 4, S_VAL, 1, 0,
	/* 3 */ S_VALT, (BTF_KIND_STRUCT << 24) | 3, 16, S_LOCK, 2, 0, S_PAD, 1, 32, S_COUNT, 4, 64,
	/* 4 */ S_LONG, BTF_KIND_INT << 24, 8, (BTF_INT_SIGNED << 24) | 64,
};
/* Refused by the kernel when the BTF is loaded: 3 struct two {lock a; lock b}; 3 struct mis {lock at bit 16}. */
static uint32_t two_locks[] = {
	S_INT, BTF_KIND_INT << 24, 4, (BTF_INT_SIGNED << 24) | 32,
	S_LOCKT, (BTF_KIND_STRUCT << 24) | 1, 4, S_VAL, 1, 0,
	S_TWO, (BTF_KIND_STRUCT << 24) | 2, 8, S_A, 2, 0, S_B, 2, 32,
};
static uint32_t misaligned[] = {
	S_INT, BTF_KIND_INT << 24, 4, (BTF_INT_SIGNED << 24) | 32,
	S_LOCKT, (BTF_KIND_STRUCT << 24) | 1, 4, S_VAL, 1, 0,
	S_MIS, (BTF_KIND_STRUCT << 24) | 1, 8, S_LOCK, 2, 16,
};

static int btf_load(const uint32_t *t, uint32_t type_len)
{
	static uint8_t blob[sizeof(struct btf_header) + sizeof(types) + sizeof(strs)];
	struct btf_header h = {.magic = BTF_MAGIC, .version = BTF_VERSION, .hdr_len = sizeof(h),
			       .type_off = 0, .type_len = type_len, .str_off = type_len,
			       .str_len = sizeof(strs)};
	memcpy(blob, &h, sizeof(h));
	memcpy(blob + sizeof(h), t, type_len);
	memcpy(blob + sizeof(h) + type_len, strs, sizeof(strs));
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.btf = (uint64_t)(uintptr_t)blob;
	a.btf_size = (uint32_t)(sizeof(h) + type_len + sizeof(strs));
	return (int)sys_bpf(BPF_BTF_LOAD, &a);
}

static int map(uint32_t type, uint32_t value_size, int btf, uint32_t key_id, uint32_t value_id)
{
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.map_type = type;
	a.key_size = 4;
	a.value_size = value_size;
	a.max_entries = 4;
	a.btf_fd = (uint32_t)btf;
	a.btf_key_type_id = key_id;
	a.btf_value_type_id = value_id;
	return (int)sys_bpf(BPF_MAP_CREATE, &a);
}

static long elem(int cmd, int fd, uint32_t key, void *value, uint64_t flags)
{
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.map_fd = (uint32_t)fd;
	a.key = (uint64_t)(uintptr_t)&key;
	a.value = (uint64_t)(uintptr_t)value;
	a.flags = flags;
	return sys_bpf(cmd, &a);
}

struct val {
	uint32_t lock;
	int32_t pad;
	int64_t count;
};

int main(void)
{
	int btf = btf_load(types, sizeof(types));
	report("btf_load", btf);
	report("btf_two_locks", btf_load(two_locks, sizeof(two_locks)));
	report("btf_misaligned_lock", btf_load(misaligned, sizeof(misaligned)));
	int plain = map(BPF_MAP_TYPE_HASH, 16, -1, 0, 0);
	int hash = map(BPF_MAP_TYPE_HASH, 16, btf, 1, 3);
	report("hash_with_lock", hash);
	int array = map(BPF_MAP_TYPE_ARRAY, 16, btf, 1, 3);
	report("array_with_lock", array);
	report("percpu_hash_with_lock", map(BPF_MAP_TYPE_PERCPU_HASH, 16, btf, 1, 3));
	report("percpu_array_with_lock", map(BPF_MAP_TYPE_PERCPU_ARRAY, 16, btf, 1, 3));
	report("lru_hash_with_lock", map(BPF_MAP_TYPE_LRU_HASH, 16, btf, 1, 3));
	report("value_size_not_the_type", map(BPF_MAP_TYPE_HASH, 24, btf, 1, 3));
	report("key_type_wrong_size", map(BPF_MAP_TYPE_HASH, 16, btf, 4, 3));
	report("hash_without_key_type", map(BPF_MAP_TYPE_HASH, 16, btf, 0, 3));
	report("array_without_key_type", map(BPF_MAP_TYPE_ARRAY, 16, btf, 0, 3));
	report("btf_fd_closed", map(BPF_MAP_TYPE_HASH, 16, 999, 1, 3));
	report("btf_fd_a_map", map(BPF_MAP_TYPE_HASH, 16, plain, 1, 3));
	report("missing_type_id", map(BPF_MAP_TYPE_HASH, 16, btf, 1, 99));

	struct val v = {.lock = 0xdeadbeef, .pad = 5, .count = 7}, out;
	report("update_lock_without_lock", elem(BPF_MAP_UPDATE_ELEM, plain, 1, &v, BPF_F_LOCK));
	report("lookup_lock_without_lock", elem(BPF_MAP_LOOKUP_ELEM, plain, 1, &out, BPF_F_LOCK));
	report("update_locked", elem(BPF_MAP_UPDATE_ELEM, hash, 1, &v, BPF_F_LOCK));
	memset(&out, 0xff, sizeof(out));
	report("lookup_locked", elem(BPF_MAP_LOOKUP_ELEM, hash, 1, &out, BPF_F_LOCK));
	printf(",\"locked_read\":\"lock %u pad %d count %lld\"", out.lock, out.pad, (long long)out.count);
	v.count = 9;
	report("update_unlocked", elem(BPF_MAP_UPDATE_ELEM, hash, 1, &v, BPF_ANY));
	memset(&out, 0xff, sizeof(out));
	report("lookup_unlocked", elem(BPF_MAP_LOOKUP_ELEM, hash, 1, &out, 0));
	printf(",\"unlocked_read\":\"lock %u pad %d count %lld\"", out.lock, out.pad, (long long)out.count);
	report("update_lock_noexist", elem(BPF_MAP_UPDATE_ELEM, hash, 1, &v, BPF_F_LOCK | BPF_NOEXIST));
	report("array_update_locked", elem(BPF_MAP_UPDATE_ELEM, array, 2, &v, BPF_F_LOCK));
	memset(&out, 0xff, sizeof(out));
	report("array_lookup_locked", elem(BPF_MAP_LOOKUP_ELEM, array, 2, &out, BPF_F_LOCK));
	printf(",\"array_read\":\"lock %u pad %d count %lld\"", out.lock, out.pad, (long long)out.count);
	printf("}\n");
	return 0;
}
