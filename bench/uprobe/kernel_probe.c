/*
 * Kernel side of the uprobe benchmark: loads the same object with libbpf,
 * attaches the named programs as kernel uprobes/uretprobes to FUNC in
 * TARGET, runs TARGET ARGS... and passes its output through.
 *
 *   kernel_probe OBJ TARGET FUNC ENTRY_PROG|- RETURN_PROG|- -- ARGS...
 */
#include <bpf/libbpf.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static struct bpf_link *attach(struct bpf_object *obj, const char *prog, const char *target,
			       const char *func, int retprobe)
{
	if (!strcmp(prog, "-"))
		return NULL;
	struct bpf_program *p = bpf_object__find_program_by_name(obj, prog);
	if (!p) {
		fprintf(stderr, "kernel_probe: no program %s\n", prog);
		return NULL;
	}
	LIBBPF_OPTS(bpf_uprobe_opts, opts, .func_name = func, .retprobe = retprobe);
	struct bpf_link *l = bpf_program__attach_uprobe_opts(p, -1, target, 0, &opts);
	if (!l)
		fprintf(stderr, "kernel_probe: attaching %s to %s:%s failed\n", prog, target, func);
	return l;
}

int main(int argc, char **argv)
{
	if (argc < 7 || strcmp(argv[6], "--")) {
		fprintf(stderr, "usage: kernel_probe OBJ TARGET FUNC ENTRY|- RETURN|- -- ARGS...\n");
		return 2;
	}
	struct bpf_object *obj = bpf_object__open_file(argv[1], NULL);
	if (!obj || bpf_object__load(obj)) {
		fprintf(stderr, "kernel_probe: cannot load %s\n", argv[1]);
		return 1;
	}
	struct bpf_link *entry = attach(obj, argv[4], argv[2], argv[3], 0);
	struct bpf_link *ret = attach(obj, argv[5], argv[2], argv[3], 1);
	if ((strcmp(argv[4], "-") && !entry) || (strcmp(argv[5], "-") && !ret))
		return 1;
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		argv[6] = argv[2];
		execv(argv[2], &argv[6]);
		_exit(127);
	}
	int status;
	waitpid(pid, &status, 0);
	bpf_link__destroy(entry);
	bpf_link__destroy(ret);
	bpf_object__close(obj);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
