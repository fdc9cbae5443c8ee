/*
 * Bad eBPF calls from an ordinary application, for the syscall server's
 * differential test: each line of the JSON output is what one call returned
 * ("ok" or the errno's name). Run as root it asks the kernel, under
 * `bpftime load` the server; the answers must be the same. Then it checks
 * that its own file and fd were not touched.
 *
 *   bpf_bad_calls FILE
 *   bpf_bad_calls FILE unsupported   commands the server does not run (its log names them)
 *   bpf_bad_calls FILE lifetimes     a pinned map (key 1 = 42) outlives us, an unpinned one does
 *                                    not; a forked child closing its copy of an fd changes nothing
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bpf_answers.h"

static int map_create(uint32_t type, uint32_t key, uint32_t value, uint32_t max, uint32_t flags)
{
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.map_type = type;
	a.key_size = key;
	a.value_size = value;
	a.max_entries = max;
	a.map_flags = flags;
	return (int)sys_bpf_size(BPF_MAP_CREATE, &a, sizeof(a));
}

static long elem(int cmd, int fd, const void *key, void *value, uint64_t flags)
{
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.map_fd = (uint32_t)fd;
	a.key = (uint64_t)(uintptr_t)key;
	a.value = (uint64_t)(uintptr_t)value;
	a.flags = flags;
	return sys_bpf_size(cmd, &a, sizeof(a));
}

static long prog_load(const struct bpf_insn *insns, uint32_t n, char *log, uint32_t log_size)
{
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.prog_type = BPF_PROG_TYPE_KPROBE;
	a.insns = (uint64_t)(uintptr_t)insns;
	a.insn_cnt = n;
	a.license = (uint64_t)(uintptr_t) "GPL";
	a.log_buf = (uint64_t)(uintptr_t)log;
	a.log_size = log_size;
	a.log_level = log ? 1 : 0;
	return sys_bpf_size(BPF_PROG_LOAD, &a, sizeof(a));
}

/* Pinning and fork: what outlives whom. */
static int lifetimes(void)
{
	int pinned = map_create(BPF_MAP_TYPE_HASH, 4, 8, 4, 0);
	int unpinned = map_create(BPF_MAP_TYPE_HASH, 4, 8, 4, 0);
	uint32_t k = 1;
	uint64_t v = 42, out = 0;
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.bpf_fd = (uint32_t)pinned;
	a.pathname = (uint64_t)(uintptr_t) "/sys/fs/bpf/bpftime_test_pinned";
	report("pin", sys_bpf_size(BPF_OBJ_PIN, &a, sizeof(a)));
	report("update", elem(BPF_MAP_UPDATE_ELEM, pinned, &k, &v, BPF_ANY));
	pid_t child = fork();
	if (child == 0) {
		close(unpinned);
		close(pinned);
		_exit(0);
	}
	int status;
	waitpid(child, &status, 0);
	report("lookup_after_child_closed", elem(BPF_MAP_LOOKUP_ELEM, unpinned, &k, &out, 0) == -1 &&
							 errno == ENOENT
						 ? 0
						 : -1);
	printf("}\n");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	if (argc > 2 && !strcmp(argv[2], "lifetimes"))
		return lifetimes();
	if (argc > 2 && !strcmp(argv[2], "unsupported")) {
		union bpf_attr q;
		memset(&q, 0, sizeof(q));
		report("prog_query", sys_bpf_size(BPF_PROG_QUERY, &q, sizeof(q)));
		report("iter_create", sys_bpf_size(BPF_ITER_CREATE, &q, sizeof(q)));
		printf("}\n");
		return 0;
	}
	int own = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (own < 0 || write(own, "mine\n", 5) != 5)
		return 2;

	report("map_create_bad_type", map_create(9999, 4, 8, 16, 0));
	report("map_create_zero_key", map_create(BPF_MAP_TYPE_HASH, 0, 8, 16, 0));
	report("map_create_bad_flags", map_create(BPF_MAP_TYPE_HASH, 4, 8, 16, 1u << 30));
	report("ringbuf_not_power_of_2", map_create(BPF_MAP_TYPE_RINGBUF, 0, 0, 5000, 0));
	/* A non-zero byte after the command's last field (the kernel checks up to its own size). */
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.map_type = BPF_MAP_TYPE_ARRAY, a.key_size = 4, a.value_size = 8, a.max_entries = 4;
	((char *)&a)[140] = 1;
	report("map_create_byte_past_its_fields", sys_bpf_size(BPF_MAP_CREATE, &a, sizeof(a)));
	/* An attribute block larger than any kernel's, with something in the tail. */
	static char big[1024];
	memcpy(big, &a, sizeof(a));
	big[140] = 0;
	big[1000] = 1;
	report("attr_larger_with_garbage", sys_bpf_size(BPF_MAP_CREATE, (union bpf_attr *)big, sizeof(big)));
	memset(&a, 0, sizeof(a));
	report("unknown_command", sys_bpf_size(999, &a, sizeof(a)));

	int hash = map_create(BPF_MAP_TYPE_HASH, 4, 8, 4, 0);
	int array = map_create(BPF_MAP_TYPE_ARRAY, 4, 8, 4, 0);
	int ring = map_create(BPF_MAP_TYPE_RINGBUF, 0, 0, 4096, 0);
	report("map_create_ok", hash < 0 || array < 0 || ring < 0 ? -1 : 0);
	uint32_t k = 1, missing = 77;
	uint64_t v = 5, out;
	report("update_ok", elem(BPF_MAP_UPDATE_ELEM, hash, &k, &v, BPF_ANY));
	report("update_noexist_existing", elem(BPF_MAP_UPDATE_ELEM, hash, &k, &v, BPF_NOEXIST));
	report("update_bad_flags", elem(BPF_MAP_UPDATE_ELEM, hash, &k, &v, 99));
	report("lookup_missing", elem(BPF_MAP_LOOKUP_ELEM, hash, &missing, &out, 0));
	report("lookup_bad_key_pointer", elem(BPF_MAP_LOOKUP_ELEM, hash, (void *)8, &out, 0));
	report("lookup_on_own_file_fd", elem(BPF_MAP_LOOKUP_ELEM, own, &k, &out, 0));
	report("lookup_on_closed_fd", elem(BPF_MAP_LOOKUP_ELEM, 999, &k, &out, 0));
	report("delete_from_array", elem(BPF_MAP_DELETE_ELEM, array, &k, NULL, 0));
	report("array_index_out_of_range", elem(BPF_MAP_UPDATE_ELEM, array, &missing, &v, 0));
	report("lookup_on_ringbuf", elem(BPF_MAP_LOOKUP_ELEM, ring, &k, &out, 0));
	for (uint32_t i = 2; i <= 4; i++)
		elem(BPF_MAP_UPDATE_ELEM, hash, &i, &v, BPF_ANY);
	/* An fd number of ours closed by close_range and reused for a file is a file again. */
	int gone = map_create(BPF_MAP_TYPE_ARRAY, 4, 8, 1, 0);
	close_range((unsigned int)gone, (unsigned int)gone, 0);
	int reused = open("/dev/null", O_RDONLY);
	report("lookup_on_fd_reused_after_close_range",
	       reused == gone ? elem(BPF_MAP_LOOKUP_ELEM, reused, &k, &out, 0) : -1);
	close(reused);
	uint32_t five = 5;
	report("update_full_hash", elem(BPF_MAP_UPDATE_ELEM, hash, &five, &v, BPF_ANY));
	memset(&a, 0, sizeof(a));
	a.map_fd = (uint32_t)array;
	report("freeze", sys_bpf_size(BPF_MAP_FREEZE, &a, sizeof(a)));
	report("freeze_again", sys_bpf_size(BPF_MAP_FREEZE, &a, sizeof(a)));
	report("update_frozen", elem(BPF_MAP_UPDATE_ELEM, array, &k, &v, 0));

	struct bpf_insn ret0[] = {{.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = 0},
				  {.code = BPF_JMP | BPF_EXIT}};
	struct bpf_insn bad_op[] = {{.code = 0xff}, {.code = BPF_JMP | BPF_EXIT}};
	char log[4096] = "";
	report("prog_load_ok", prog_load(ret0, 2, NULL, 0));
	report("prog_load_no_insns", prog_load(ret0, 0, NULL, 0));
	report("prog_load_bad_opcode", prog_load(bad_op, 2, log, sizeof(log)));
	printf(",\"bad_opcode_logged\":%s", log[0] ? "true" : "false");
	report("prog_load_log_too_small", prog_load(ret0, 2, log, 10));
	struct bpf_insn bad_map[] = {{.code = BPF_LD | BPF_DW | BPF_IMM, .dst_reg = 1, .src_reg = 1, .imm = own},
				     {0},
				     {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = 0},
				     {.code = BPF_JMP | BPF_EXIT}};
	report("prog_load_own_file_as_map", prog_load(bad_map, 4, NULL, 0));
	char garbage[64] = "not btf at all";
	memset(&a, 0, sizeof(a));
	a.btf = (uint64_t)(uintptr_t)garbage;
	a.btf_size = sizeof(garbage);
	report("btf_load_garbage", sys_bpf_size(BPF_BTF_LOAD, &a, sizeof(a)));

	struct perf_event_attr pa;
	memset(&pa, 0, sizeof(pa));
	FILE *f = fopen("/sys/bus/event_source/devices/uprobe/type", "r");
	if (!f || fscanf(f, "%u", &pa.type) != 1)
		return 2;
	fclose(f);
	pa.size = sizeof(pa);
	pa.config1 = (uint64_t)(uintptr_t) "/nonexistent/binary";
	report("uprobe_missing_file", syscall(__NR_perf_event_open, &pa, -1, 0, -1, PERF_FLAG_FD_CLOEXEC));

	/* Batches, fds by id and dup'ed fds: counts and values, which the kernel's tokens do not change. */
	int batch = map_create(BPF_MAP_TYPE_HASH, 4, 8, 8, 0);
	uint32_t bkeys[8] = {1, 2, 3}, token = 0;
	uint64_t bvalues[8] = {10, 20, 30};
	memset(&a, 0, sizeof(a));
	a.batch.map_fd = (uint32_t)batch;
	a.batch.keys = (uint64_t)(uintptr_t)bkeys;
	a.batch.values = (uint64_t)(uintptr_t)bvalues;
	a.batch.count = 3;
	report("update_batch", sys_bpf_size(BPF_MAP_UPDATE_BATCH, &a, sizeof(a)));
	printf(",\"update_batch_count\":%u", a.batch.count);
	memset(bkeys, 0, sizeof(bkeys));
	memset(bvalues, 0, sizeof(bvalues));
	a.batch.out_batch = (uint64_t)(uintptr_t)&token;
	a.batch.count = 8;
	report("lookup_batch_to_the_end", sys_bpf_size(BPF_MAP_LOOKUP_BATCH, &a, sizeof(a)));
	printf(",\"lookup_batch_count\":%u,\"lookup_batch_sum\":%llu", a.batch.count,
	       (unsigned long long)(bvalues[0] + bvalues[1] + bvalues[2] + bkeys[0] + bkeys[1] + bkeys[2]));
	bkeys[0] = 1, bkeys[1] = 2;
	a.batch.out_batch = 0;
	a.batch.count = 2;
	report("delete_batch", sys_bpf_size(BPF_MAP_DELETE_BATCH, &a, sizeof(a)));
	a.batch.out_batch = (uint64_t)(uintptr_t)&token;
	a.batch.count = 8;
	report("lookup_and_delete_batch", sys_bpf_size(BPF_MAP_LOOKUP_AND_DELETE_BATCH, &a, sizeof(a)));
	printf(",\"lookup_and_delete_batch_count\":%u,\"last_key\":%u", a.batch.count, bkeys[0]);
	struct bpf_map_info info;
	memset(&info, 0, sizeof(info));
	memset(&a, 0, sizeof(a));
	a.info.bpf_fd = (uint32_t)hash;
	a.info.info_len = sizeof(info);
	a.info.info = (uint64_t)(uintptr_t)&info;
	report("map_info", sys_bpf_size(BPF_OBJ_GET_INFO_BY_FD, &a, sizeof(a)));
	printf(",\"map_info_fields\":\"type %u key %u value %u max %u\"", info.type, info.key_size, info.value_size,
	       info.max_entries);
	memset(&a, 0, sizeof(a));
	a.map_id = info.id;
	int by_id = (int)sys_bpf_size(BPF_MAP_GET_FD_BY_ID, &a, sizeof(a));
	report("lookup_through_fd_by_id", by_id < 0 ? -1 : elem(BPF_MAP_LOOKUP_ELEM, by_id, &k, &out, 0));
	int copy = dup(hash);
	close(hash);
	report("lookup_through_dup_of_closed_fd", elem(BPF_MAP_LOOKUP_ELEM, copy, &k, &out, 0));

	/* The application's own file: same fd, same content. */
	char back[16] = "";
	long n = pread(own, back, sizeof(back) - 1, 0);
	printf(",\"own_file_intact\":%s}\n", n == 5 && !strcmp(back, "mine\n") ? "true" : "false");
	return 0;
}
