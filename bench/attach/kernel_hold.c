/*
 * Kernel side of the attach benchmark: loads OBJ with libbpf and attaches
 * PROG as a kernel uprobe on FUNC in BINARY for process PID only, prints
 * "ready", holds it until its stdin closes, then prints the number of hits
 * counted in the object's `hits` map under PID, and removes it.
 *
 *   kernel_hold OBJ PROG BINARY FUNC PID
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: kernel_hold OBJ PROG BINARY FUNC PID\n");
		return 2;
	}
	int pid = atoi(argv[5]);
	struct bpf_object *obj = bpf_object__open_file(argv[1], NULL);
	if (!obj || bpf_object__load(obj)) {
		fprintf(stderr, "kernel_hold: cannot load %s\n", argv[1]);
		return 1;
	}
	struct bpf_program *p = bpf_object__find_program_by_name(obj, argv[2]);
	if (!p) {
		fprintf(stderr, "kernel_hold: no program %s\n", argv[2]);
		return 1;
	}
	LIBBPF_OPTS(bpf_uprobe_opts, opts, .func_name = argv[4]);
	struct bpf_link *l = bpf_program__attach_uprobe_opts(p, pid, argv[3], 0, &opts);
	if (!l) {
		fprintf(stderr, "kernel_hold: attaching %s to %s:%s failed\n", argv[2], argv[3], argv[4]);
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	char buf[64];
	while (read(0, buf, sizeof(buf)) > 0)
		;
	__u32 key = (__u32)pid;
	__u64 hits = 0;
	struct bpf_map *m = bpf_object__find_map_by_name(obj, "hits");
	if (m)
		bpf_map_lookup_elem(bpf_map__fd(m), &key, &hits);
	printf("%llu\n", (unsigned long long)hits);
	bpf_link__destroy(l);
	bpf_object__close(obj);
	return 0;
}
