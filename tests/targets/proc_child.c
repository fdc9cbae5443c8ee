/*
 * A child of tests/targets/proc_tree.sh with a known end (tests/sched_tracepoint_test.ts):
 *   proc_child N               returns N from main (exit through glibc's exit)
 *   proc_child thread-exit N   a second thread calls exit(N) while main waits (exit_group from
 *                              a thread other than the leader)
 *   proc_child threads N       four threads end with pthread_exit, then main returns N
 *   proc_child underscore N    _exit(N) at once, skipping exit handlers
 *   proc_child raw-exit N      syscall(SYS_exit_group, N): only the syscall hooks see it
 *   proc_child forks K N       forks K children that each _exit(i % 7), waits for them, returns N
 *   proc_child exec-thread     a second thread execs "proc_child 6" (the leader is replaced)
 *   proc_child signal-exit N   a SIGTERM handler calls _exit(N); the process sends itself SIGTERM while
 *                              its main thread loops in malloc/free
 *   proc_child orphan N        forks a child that outlives it (reparented), which exits N 300 ms later
 *   proc_child sleep [FILE]    sleeps until killed (creates FILE first, when named)
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t code;
static const char *self;

static void on_term(int sig)
{
	(void)sig;
	_exit(code);
}

static void *exiter(void *arg)
{
	(void)arg;
	exit(code);
}

static void *ender(void *arg)
{
	pthread_exit(arg);
}

static void *execer(void *arg)
{
	(void)arg;
	execl(self, self, "6", (char *)NULL);
	_exit(99);
}

int main(int argc, char **argv)
{
	self = argv[0];
	if (argc >= 2 && strcmp(argv[1], "sleep") == 0) {
		if (argc == 3) { /* running (and its exec reported): say so with a file */
			FILE *f = fopen(argv[2], "w");
			if (f)
				fclose(f);
		}
		for (;;)
			pause();
	}
	if (argc == 2 && strcmp(argv[1], "exec-thread") == 0) {
		pthread_t t;
		pthread_create(&t, NULL, execer, NULL);
		pthread_join(t, NULL);
		return 98;
	}
	if (argc == 2)
		return atoi(argv[1]);
	if (argc == 3 && strcmp(argv[1], "thread-exit") == 0) {
		code = atoi(argv[2]);
		pthread_t t;
		pthread_create(&t, NULL, exiter, NULL);
		pthread_join(t, NULL);
		return 97;
	}
	if (argc == 3 && strcmp(argv[1], "threads") == 0) {
		pthread_t t[4];
		for (int i = 0; i < 4; i++)
			pthread_create(&t[i], NULL, ender, NULL);
		for (int i = 0; i < 4; i++)
			pthread_join(t[i], NULL);
		return atoi(argv[2]);
	}
	if (argc == 3 && strcmp(argv[1], "signal-exit") == 0) {
		code = atoi(argv[2]);
		signal(SIGTERM, on_term);
		kill(getpid(), SIGTERM);
		for (;;)
			free(malloc(64));
	}
	if (argc == 3 && strcmp(argv[1], "orphan") == 0) {
		if (fork() == 0) {
			usleep(300000);
			return atoi(argv[2]);
		}
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "raw-exit") == 0)
		syscall(SYS_exit_group, atoi(argv[2]));
	if (argc == 3 && strcmp(argv[1], "underscore") == 0)
		_exit(atoi(argv[2]));
	if (argc == 4 && strcmp(argv[1], "forks") == 0) {
		int k = atoi(argv[2]);
		for (int i = 0; i < k; i++) {
			pid_t p = fork();
			if (p == 0)
				_exit(i % 7);
		}
		while (wait(NULL) > 0)
			;
		return atoi(argv[3]);
	}
	fprintf(stderr, "usage: see the comment of tests/targets/proc_child.c\n");
	return 2;
}
