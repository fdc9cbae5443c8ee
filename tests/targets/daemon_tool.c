/*
 * A plain libbpf tool for tests/daemon_test.ts: attaches probe_counts.bpf.o's on_entry to
 * function FUNC of BINARY (every process, cookie 0), says "attached PROG_ID", then for each line
 * on stdin prints "calls=N run_cnt=R" (by_cookie[0].calls, and the kernel program's run_cnt,
 * which counts only with kernel.bpf_stats_enabled=1), and " bss=B" (the first u64 of the
 * object's .bss) when it has one; exits after a line "q" or at EOF.
 *
 *   daemon_tool OBJ BINARY FUNC [PROGRAM]    (PROGRAM: default on_entry)
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc != 4 && argc != 5) {
		fprintf(stderr, "usage: %s OBJ BINARY FUNC [PROGRAM]\n", argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	struct bpf_object *obj = bpf_object__open_file(argv[1], NULL);
	if (!obj || bpf_object__load(obj)) {
		fprintf(stderr, "daemon_tool: cannot load %s\n", argv[1]);
		return 1;
	}
	struct bpf_program *prog = bpf_object__find_program_by_name(obj, argc == 5 ? argv[4] : "on_entry");
	LIBBPF_OPTS(bpf_uprobe_opts, opts, .func_name = argv[3]);
	struct bpf_link *link = prog ? bpf_program__attach_uprobe_opts(prog, -1, argv[2], 0, &opts) : NULL;
	if (!link) {
		fprintf(stderr, "daemon_tool: cannot attach to %s:%s\n", argv[2], argv[3]);
		return 1;
	}
	struct bpf_prog_info info;
	__u32 len = sizeof(info);
	memset(&info, 0, sizeof(info));
	bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len);
	printf("attached %u\n", info.id);
	char line[64];
	while (fgets(line, sizeof(line), stdin)) {
		struct {
			__u64 calls, arg_sum, ret_calls, ret_sum;
		} stats = {0, 0, 0, 0};
		__u32 key = 0;
		int map = bpf_object__find_map_fd_by_name(obj, "by_cookie");
		bpf_map_lookup_elem(map, &key, &stats);
		memset(&info, 0, sizeof(info));
		len = sizeof(info);
		bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len);
		printf("calls=%llu run_cnt=%llu", (unsigned long long)stats.calls,
		       (unsigned long long)info.run_cnt);
		struct bpf_map *m;
		bpf_object__for_each_map(m, obj) {
			const char *name = bpf_map__name(m);
			size_t len = strlen(name);
			__u64 value[64];
			if (len >= 4 && !strcmp(name + len - 4, ".bss") && bpf_map__value_size(m) <= sizeof(value) &&
			    bpf_map_lookup_elem(bpf_map__fd(m), &key, value) == 0)
				printf(" bss=%llu", (unsigned long long)value[0]);
		}
		printf("\n");
		if (line[0] == 'q')
			break;
	}
	bpf_link__destroy(link);
	bpf_object__close(obj);
	return 0;
}
