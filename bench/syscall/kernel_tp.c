/*
 * Kernel side of the syscall benchmark: loads the object with libbpf,
 * attaches the one named program to the tracepoint its section names, runs
 * TARGET ARGS... (its output passed through), then prints the `hits` array's
 * count to stderr ("hits N") and detaches.
 *
 *   kernel_tp OBJ PROG -- TARGET ARGS...
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 5 || strcmp(argv[3], "--")) {
		fprintf(stderr, "usage: kernel_tp OBJ PROG -- TARGET ARGS...\n");
		return 2;
	}
	struct bpf_object *obj = bpf_object__open_file(argv[1], NULL);
	if (!obj || bpf_object__load(obj)) {
		fprintf(stderr, "kernel_tp: cannot load %s\n", argv[1]);
		return 1;
	}
	struct bpf_program *prog = bpf_object__find_program_by_name(obj, argv[2]);
	if (!prog) {
		fprintf(stderr, "kernel_tp: no program %s\n", argv[2]);
		return 1;
	}
	struct bpf_link *link = bpf_program__attach(prog);
	if (!link) {
		fprintf(stderr, "kernel_tp: attaching %s (%s) failed\n", argv[2], bpf_program__section_name(prog));
		return 1;
	}
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		execv(argv[4], &argv[4]);
		_exit(127);
	}
	int status;
	waitpid(pid, &status, 0);
	struct bpf_map *hits = bpf_object__find_map_by_name(obj, "hits");
	__u32 key = 0;
	__u64 count = 0;
	if (hits)
		bpf_map_lookup_elem(bpf_map__fd(hits), &key, &count);
	fprintf(stderr, "hits %llu\n", (unsigned long long)count);
	bpf_link__destroy(link);
	bpf_object__close(obj);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
