/*
 * The shared_count example's kernel side: loads build/bpf/shared_count.bpf.o with libbpf, attaches
 * only count_exec (sched/sched_process_exec) in the kernel, prints "counts map id N" and keeps it
 * attached until stdin closes (or a line "q"). Root.
 *
 *   shared_count_kernel [OBJECT]
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "build/bpf/shared_count.bpf.o";
	setvbuf(stdout, NULL, _IOLBF, 0);
	struct bpf_object *obj = bpf_object__open_file(path, NULL);
	struct bpf_program *call = obj ? bpf_object__find_program_by_name(obj, "count_call") : NULL;
	if (!call) {
		fprintf(stderr, "shared_count_kernel: cannot open %s\n", path);
		return 1;
	}
	bpf_program__set_autoload(call, false); /* the userspace side's program */
	struct bpf_program *exec = bpf_object__find_program_by_name(obj, "count_exec");
	if (bpf_object__load(obj) || !exec || !bpf_program__attach(exec)) {
		fprintf(stderr, "shared_count_kernel: cannot load and attach count_exec (root?)\n");
		return 1;
	}
	struct bpf_map_info info;
	__u32 len = sizeof(info);
	memset(&info, 0, sizeof(info));
	bpf_obj_get_info_by_fd(bpf_object__find_map_fd_by_name(obj, "counts"), &info, &len);
	printf("counts map id %u\n", info.id);
	char line[16];
	while (fgets(line, sizeof(line), stdin) && line[0] != 'q')
		;
	bpf_object__close(obj);
	return 0;
}
