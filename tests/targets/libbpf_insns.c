/*
 * Prints a program's instructions as libbpf finalizes them (relocations and
 * CO-RE applied) after loading the object into the kernel: the reference
 * for the loader's differential test. One hex instruction per line.
 *
 *   libbpf_insns OBJ PROGRAM
 */
#include <bpf/libbpf.h>
#include <stdio.h>

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: libbpf_insns OBJ PROGRAM\n");
		return 2;
	}
	struct bpf_object *obj = bpf_object__open_file(argv[1], NULL);
	if (!obj || bpf_object__load(obj)) {
		fprintf(stderr, "libbpf_insns: cannot load %s\n", argv[1]);
		return 1;
	}
	struct bpf_program *p = bpf_object__find_program_by_name(obj, argv[2]);
	if (!p) {
		fprintf(stderr, "libbpf_insns: no program %s\n", argv[2]);
		return 1;
	}
	const struct bpf_insn *insns = bpf_program__insns(p);
	for (size_t i = 0; i < bpf_program__insn_cnt(p); i++) {
		const unsigned char *b = (const unsigned char *)&insns[i];
		for (int j = 0; j < 8; j++)
			printf("%02x", b[j]);
		printf("\n");
	}
	bpf_object__close(obj);
	return 0;
}
