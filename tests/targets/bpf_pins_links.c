/*
 * Pins by path, links by id, test runs and helpers 183-187, good and bad calls, for the syscall
 * server's differential test (tests/server_pins_test.ts): each JSON field is
 * what one call returned ("ok" or the errno's name) or a value it gave. Run as
 * root it asks the kernel, under `bpftime load` the server; the answers must be
 * the same.
 *
 *   bpf_pins_links DIR          DIR: an empty directory on bpffs (removed by the caller)
 *   bpf_pins_links DIR pin      pins a hash map (key 1 = 42) at DIR/shared, and a uprobe link of a
 *                               program using another map at DIR/link (only the link), and exits
 *   bpf_pins_links DIR get      finds DIR/shared, prints key 1's value, unlinks the pin; finds
 *                               DIR/link and its program, unlinks it (all of it goes)
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
#include <unistd.h>

#include "bpf_answers.h"

static void value(const char *what, unsigned long long v)
{
	printf(",\"%s\":%llu", what, v);
}

static long pin(int fd, const char *path, uint32_t flags)
{
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.bpf_fd = (uint32_t)fd;
	a.pathname = (uint64_t)(uintptr_t)path;
	a.file_flags = flags;
	return sys_bpf(BPF_OBJ_PIN, &a);
}

static long get(const char *path, uint32_t flags, uint32_t bpf_fd)
{
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.pathname = (uint64_t)(uintptr_t)path;
	a.file_flags = flags;
	a.bpf_fd = bpf_fd;
	return sys_bpf(BPF_OBJ_GET, &a);
}

static long info(int fd, void *out, uint32_t len)
{
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.info.bpf_fd = (uint32_t)fd;
	a.info.info_len = len;
	a.info.info = (uint64_t)(uintptr_t)out;
	return sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &a);
}

static uint32_t id_of(int fd)
{
	struct bpf_map_info m; /* id is the second field of every info struct */
	memset(&m, 0, sizeof(m));
	struct bpf_prog_info p;
	memset(&p, 0, sizeof(p));
	if (info(fd, &m, sizeof(m)) == 0)
		return m.id;
	if (info(fd, &p, sizeof(p)) == 0)
		return p.id;
	struct bpf_link_info l;
	memset(&l, 0, sizeof(l));
	return info(fd, &l, sizeof(l)) == 0 ? l.id : 0;
}

static int prog_load(uint32_t type, int32_t ret, int read_ctx)
{
	/* r0 = ret, or r0 = *(u64 *)(r1 + 0) when read_ctx */
	struct bpf_insn insns[] = {
		read_ctx ? (struct bpf_insn){.code = BPF_LDX | BPF_MEM | BPF_DW, .dst_reg = 0, .src_reg = 1}
			 : (struct bpf_insn){.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = ret},
		{.code = BPF_JMP | BPF_EXIT},
	};
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.prog_type = type;
	a.insns = (uint64_t)(uintptr_t)insns;
	a.insn_cnt = 2;
	a.license = (uint64_t)(uintptr_t) "GPL";
	return (int)sys_bpf(BPF_PROG_LOAD, &a);
}

static long test_run(int prog, void *ctx, uint32_t ctx_size, uint32_t repeat, void *data, uint32_t *retval)
{
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.test.prog_fd = (uint32_t)prog;
	a.test.ctx_in = (uint64_t)(uintptr_t)ctx;
	a.test.ctx_size_in = ctx_size;
	a.test.repeat = repeat;
	a.test.data_in = (uint64_t)(uintptr_t)data;
	a.test.data_size_in = data ? 8 : 0;
	long rc = sys_bpf(BPF_PROG_TEST_RUN, &a);
	if (retval)
		*retval = a.test.retval;
	return rc;
}

/* A function of ours, as a file offset in our executable (for a uprobe). */
__attribute__((noinline)) int probe_me(int x)
{
	__asm__ volatile("" ::: "memory");
	return x + 1;
}

static long file_offset_of(const void *fn, char *path, size_t size)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	long found = -1;
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long lo, hi, off;
		char p[256] = "";
		if (sscanf(line, "%lx-%lx %*s %lx %*s %*s %255s", &lo, &hi, &off, p) == 4 &&
		    (uintptr_t)fn >= lo && (uintptr_t)fn < hi) {
			found = (long)((uintptr_t)fn - lo + off);
			snprintf(path, size, "%s", p);
		}
	}
	if (f)
		fclose(f);
	return found;
}

static int uprobe_link(int prog)
{
	char path[256];
	long off = file_offset_of((void *)probe_me, path, sizeof(path));
	struct perf_event_attr pa;
	memset(&pa, 0, sizeof(pa));
	FILE *f = fopen("/sys/bus/event_source/devices/uprobe/type", "r");
	if (!f || fscanf(f, "%u", &pa.type) != 1 || off < 0)
		return -1;
	fclose(f);
	pa.size = sizeof(pa);
	pa.config1 = (uint64_t)(uintptr_t)path;
	pa.config2 = (uint64_t)off;
	int pfd = (int)syscall(__NR_perf_event_open, &pa, getpid(), -1, -1, PERF_FLAG_FD_CLOEXEC);
	if (pfd < 0)
		return -1;
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.link_create.prog_fd = (uint32_t)prog;
	a.link_create.target_fd = (uint32_t)pfd;
	a.link_create.attach_type = BPF_PERF_EVENT;
	return (int)sys_bpf(BPF_LINK_CREATE, &a);
}

static int uprobe_link(int prog);

/* One process pins, another finds the pin and removes it. */
static int across(const char *dir, int pinning)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/shared", dir);
	union bpf_attr a;
	uint32_t k = 1;
	uint64_t v = 42;
	memset(&a, 0, sizeof(a));
	if (pinning) {
		a.map_type = BPF_MAP_TYPE_HASH, a.key_size = 4, a.value_size = 8, a.max_entries = 4;
		int map = (int)sys_bpf(BPF_MAP_CREATE, &a);
		memset(&a, 0, sizeof(a));
		a.map_fd = (uint32_t)map, a.key = (uint64_t)(uintptr_t)&k, a.value = (uint64_t)(uintptr_t)&v;
		report("update", sys_bpf(BPF_MAP_UPDATE_ELEM, &a));
		report("pin", pin(map, path, 0));
		/* A program that names a map of its own, attached; only the link is pinned. */
		memset(&a, 0, sizeof(a));
		a.map_type = BPF_MAP_TYPE_ARRAY, a.key_size = 4, a.value_size = 8, a.max_entries = 1;
		int counts = (int)sys_bpf(BPF_MAP_CREATE, &a);
		struct bpf_insn insns[] = {
			{.code = BPF_LD | BPF_IMM | BPF_DW, .dst_reg = 1, .src_reg = BPF_PSEUDO_MAP_FD, .imm = counts},
			{0},
			{.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = 0},
			{.code = BPF_JMP | BPF_EXIT},
		};
		memset(&a, 0, sizeof(a));
		a.prog_type = BPF_PROG_TYPE_KPROBE;
		a.insns = (uint64_t)(uintptr_t)insns;
		a.insn_cnt = 4;
		a.license = (uint64_t)(uintptr_t) "GPL";
		int prog = (int)sys_bpf(BPF_PROG_LOAD, &a);
		report("prog", prog);
		int link = uprobe_link(prog);
		report("link", link);
		snprintf(path, sizeof(path), "%s/link", dir);
		report("pin_link", pin(link, path, 0));
	} else {
		int map = (int)get(path, 0, 0);
		report("get", map);
		v = 0;
		a.map_fd = (uint32_t)map, a.key = (uint64_t)(uintptr_t)&k, a.value = (uint64_t)(uintptr_t)&v;
		report("lookup", sys_bpf(BPF_MAP_LOOKUP_ELEM, &a));
		value("value", v);
		close(map);
		report("unlink", unlink(path));
		snprintf(path, sizeof(path), "%s/link", dir);
		int link = (int)get(path, 0, 0);
		report("get_link", link);
		struct bpf_link_info li;
		memset(&li, 0, sizeof(li));
		memset(&a, 0, sizeof(a));
		a.info.bpf_fd = (uint32_t)link;
		a.info.info_len = sizeof(li);
		a.info.info = (uint64_t)(uintptr_t)&li;
		report("link_info", sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &a));
		memset(&a, 0, sizeof(a));
		a.prog_id = li.prog_id;
		int prog = (int)sys_bpf(BPF_PROG_GET_FD_BY_ID, &a);
		report("prog_of_link", prog);
		close(prog);
		close(link);
		report("unlink_link", unlink(path));
	}
	printf("}\n");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3)
		return across(argv[1], !strcmp(argv[2], "pin"));
	if (argc != 2)
		return 2;
	char p_map[512], p_prog[512], p_link[512], p_none[512], p_nodir[512], p_notbpf[512];
	snprintf(p_map, sizeof(p_map), "%s/map", argv[1]);
	snprintf(p_prog, sizeof(p_prog), "%s/prog", argv[1]);
	snprintf(p_link, sizeof(p_link), "%s/link", argv[1]);
	snprintf(p_none, sizeof(p_none), "%s/none", argv[1]);
	snprintf(p_nodir, sizeof(p_nodir), "%s/nodir/map", argv[1]);
	snprintf(p_notbpf, sizeof(p_notbpf), "/tmp/bpftime_pins_links_%d", getpid());

	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.map_type = BPF_MAP_TYPE_HASH, a.key_size = 4, a.value_size = 8, a.max_entries = 4;
	int map = (int)sys_bpf(BPF_MAP_CREATE, &a);
	uint32_t k = 1;
	uint64_t v = 42, out = 0;
	memset(&a, 0, sizeof(a));
	a.map_fd = (uint32_t)map, a.key = (uint64_t)(uintptr_t)&k, a.value = (uint64_t)(uintptr_t)&v;
	report("map_update", sys_bpf(BPF_MAP_UPDATE_ELEM, &a));
	int own = open("/proc/self/exe", O_RDONLY);

	/* BPF_OBJ_PIN */
	report("pin_bad_flags", pin(map, p_map, 1));
	report("pin_closed_fd", pin(999, p_map, 0));
	report("pin_own_file", pin(own, p_map, 0));
	report("pin_bad_path_pointer", pin(map, (const char *)8, 0));
	report("pin_empty_path", pin(map, "", 0));
	report("pin_no_directory", pin(map, p_nodir, 0));
	report("pin_not_on_bpffs", pin(map, p_notbpf, 0));
	report("pin_on_existing_file", pin(map, "/proc/self/exe", 0));
	report("pin_map", pin(map, p_map, 0));
	report("pin_same_path_again", pin(map, p_map, 0));

	/* BPF_OBJ_GET */
	report("get_missing", get(p_none, 0, 0));
	report("get_bad_flags", get(p_map, 1u << 5, 0));
	report("get_rdonly_and_wronly", get(p_map, BPF_F_RDONLY | BPF_F_WRONLY, 0));
	report("get_with_bpf_fd", get(p_map, 0, 1));
	report("get_not_a_bpf_file", get("/proc/self/exe", 0, 0));
	report("get_bad_path_pointer", get((const char *)8, 0, 0));
	int got = (int)get(p_map, 0, 0);
	report("get_map", got);
	memset(&a, 0, sizeof(a));
	a.map_fd = (uint32_t)got, a.key = (uint64_t)(uintptr_t)&k, a.value = (uint64_t)(uintptr_t)&out;
	report("lookup_through_pin", sys_bpf(BPF_MAP_LOOKUP_ELEM, &a));
	value("value_through_pin", out);
	value("same_map_id", id_of(got) == id_of(map) && id_of(map) != 0);
	/* Relative paths name the same pin. */
	char cwd[512];
	if (getcwd(cwd, sizeof(cwd)) && chdir(argv[1]) == 0) {
		int rel = (int)get("map", 0, 0);
		report("get_relative_path", rel);
		value("relative_same_id", id_of(rel) == id_of(map));
		close(rel);
		if (chdir(cwd) != 0)
			return 3;
	}
	close(got);

	/* Programs: pinned, found, same id; test runs. */
	int prog = prog_load(BPF_PROG_TYPE_KPROBE, 7, 0);
	report("pin_prog", pin(prog, p_prog, 0));
	int gp = (int)get(p_prog, 0, 0);
	report("get_prog", gp);
	value("same_prog_id", id_of(gp) == id_of(prog) && id_of(prog) != 0);
	uint32_t retval = 99;
	report("test_run_kprobe", test_run(prog, NULL, 0, 0, NULL, NULL));
	int raw = prog_load(BPF_PROG_TYPE_RAW_TRACEPOINT, 0, 1);
	uint64_t args[2] = {12345, 0};
	report("test_run_raw_tp", test_run(raw, args, 16, 0, NULL, &retval));
	value("raw_tp_retval", retval);
	report("test_run_raw_tp_repeat", test_run(raw, args, 16, 5, NULL, NULL));
	report("test_run_raw_tp_data", test_run(raw, args, 16, 0, args, NULL));
	report("test_run_raw_tp_ctx_too_big", test_run(raw, args, 13 * 8, 0, NULL, NULL));
	report("test_run_not_a_prog", test_run(map, NULL, 0, 0, NULL, NULL));
	/* A syscall program: r0 = ctx[0]; ctx[1] = ctx[0] + 1; its context is written back. */
	struct bpf_insn sys_insns[] = {
		{.code = BPF_LDX | BPF_MEM | BPF_DW, .dst_reg = 0, .src_reg = 1},
		{.code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = 2, .src_reg = 0},
		{.code = BPF_ALU64 | BPF_ADD | BPF_K, .dst_reg = 2, .imm = 1},
		{.code = BPF_STX | BPF_MEM | BPF_DW, .dst_reg = 1, .src_reg = 2, .off = 8},
		{.code = BPF_JMP | BPF_EXIT},
	};
	for (int sleepable = 0; sleepable < 2; sleepable++) {
		memset(&a, 0, sizeof(a));
		a.prog_type = BPF_PROG_TYPE_SYSCALL;
		a.prog_flags = sleepable ? BPF_F_SLEEPABLE : 0;
		a.insns = (uint64_t)(uintptr_t)sys_insns;
		a.insn_cnt = 5;
		a.license = (uint64_t)(uintptr_t) "GPL";
		int sys = (int)sys_bpf(BPF_PROG_LOAD, &a);
		report(sleepable ? "load_syscall_sleepable" : "load_syscall", sys);
		if (sys < 0)
			continue;
		uint64_t ctx[3] = {41, 0, 7};
		report("test_run_syscall", test_run(sys, ctx, 24, 0, NULL, &retval));
		value("syscall_retval", retval);
		value("syscall_ctx_written_back", ctx[1]);
		value("syscall_ctx_rest", ctx[2]);
		report("test_run_syscall_repeat", test_run(sys, ctx, 24, 3, NULL, NULL));
		report("test_run_syscall_data", test_run(sys, ctx, 24, 0, args, NULL));
		report("test_run_syscall_ctx_too_small", test_run(sys, ctx, 8, 0, NULL, NULL));
		report("test_run_syscall_no_ctx", test_run(sys, NULL, 0, 0, NULL, NULL));
		report("test_run_syscall_bad_ctx_pointer", test_run(sys, (void *)8, 24, 0, NULL, NULL));
		close(sys);
	}

	/* Helpers only trampoline (fentry/fexit) or cgroup programs may call: refused at load. */
	static const char *const helper_names[] = {"get_func_arg", "get_func_ret", "get_func_arg_cnt",
						   "get_retval", "set_retval"};
	for (int h = 0; h < 5; h++) {
		struct bpf_insn call[] = {{.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 2, .imm = 0},
					  {.code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = 3, .src_reg = 10},
					  {.code = BPF_ALU64 | BPF_ADD | BPF_K, .dst_reg = 3, .imm = -8},
					  {.code = BPF_JMP | BPF_CALL, .imm = 183 + h},
					  {.code = BPF_JMP | BPF_EXIT}};
		for (int t = 0; t < 2; t++) {
			union bpf_attr l;
			memset(&l, 0, sizeof(l));
			l.prog_type = t ? BPF_PROG_TYPE_RAW_TRACEPOINT : BPF_PROG_TYPE_KPROBE;
			l.insns = (uint64_t)(uintptr_t)call;
			l.insn_cnt = 5;
			l.license = (uint64_t)(uintptr_t) "GPL";
			char what[64];
			snprintf(what, sizeof(what), "load_%s_%s", helper_names[h], t ? "raw_tp" : "kprobe");
			long fd = sys_bpf(BPF_PROG_LOAD, &l);
			report(what, fd);
			if (fd >= 0)
				close((int)fd);
		}
	}

	/* Links: by id, pinned, found. */
	int link = uprobe_link(prog);
	report("link_create", link);
	uint32_t link_id = id_of(link);
	memset(&a, 0, sizeof(a));
	a.link_id = 0x7ffffff0;
	report("link_by_missing_id", sys_bpf(BPF_LINK_GET_FD_BY_ID, &a));
	a.link_id = link_id;
	a.open_flags = 1;
	report("link_by_id_bad_flags", sys_bpf(BPF_LINK_GET_FD_BY_ID, &a));
	a.open_flags = 0;
	int by_id = (int)sys_bpf(BPF_LINK_GET_FD_BY_ID, &a);
	report("link_by_id", by_id);
	struct bpf_link_info li;
	memset(&li, 0, sizeof(li));
	report("link_info_by_id", info(by_id, &li, sizeof(li)));
	value("link_by_id_same", li.id == link_id && link_id != 0 && li.prog_id == id_of(prog));
	report("pin_link", pin(link, p_link, 0));
	int gl = (int)get(p_link, 0, 0);
	report("get_link", gl);
	value("pinned_link_same", id_of(gl) == link_id);
	close(by_id);
	close(gl);

	/* unlink() unpins. */
	report("unlink_map_pin", unlink(p_map));
	report("get_after_unlink", get(p_map, 0, 0));
	report("unlink_again", unlink(p_map));
	report("unlink_prog_pin", unlink(p_prog));
	report("unlink_link_pin", unlink(p_link));
	/* The map still works through its fd. */
	memset(&a, 0, sizeof(a));
	out = 0;
	a.map_fd = (uint32_t)map, a.key = (uint64_t)(uintptr_t)&k, a.value = (uint64_t)(uintptr_t)&out;
	report("lookup_after_unpin", sys_bpf(BPF_MAP_LOOKUP_ELEM, &a));
	value("value_after_unpin", out);
	printf("}\n");
	return 0;
}
