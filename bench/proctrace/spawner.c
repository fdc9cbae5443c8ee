/*
 * The process tracer's workload: N short processes (/bin/true) one after the other, process i
 * with argv of varied sizes (bench/proctrace_bench.ts computes the same argv to check them):
 * argc = 1 + i % 40, argument j of 1 + (i * 31 + j * 17) % 300 copies of 'a' + (i + j) % 26.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 10000;
	static char store[40][301];
	char *args[42];
	for (long i = 0; i < n; i++) {
		int extra = (int)(i % 40);
		args[0] = "/bin/true";
		for (int j = 0; j < extra; j++) {
			int len = 1 + (int)((i * 31 + j * 17) % 300);
			memset(store[j], 'a' + (int)((i + j) % 26), len);
			store[j][len] = 0;
			args[j + 1] = store[j];
		}
		args[extra + 1] = NULL;
		pid_t pid = fork();
		if (pid < 0) {
			perror("fork");
			return 1;
		}
		if (pid == 0) {
			execv(args[0], args);
			_exit(127);
		}
		int status;
		if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "process %ld failed\n", i);
			return 1;
		}
	}
	return 0;
}
