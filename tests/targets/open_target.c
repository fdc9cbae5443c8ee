/*
 * The scripted target of the syscall examples' test (opensnoop, syscount):
 * prints "ready PID", waits for SIGUSR1, then opens a fixed set of paths with
 * openat (some fail: ENOENT, EACCES, ENOTDIR), closing each fd it gets, makes
 * a known number of getppid, getpriority and uname calls, prints one JSON line
 * with what it did, and exits.
 *
 *   open_target [GETPPID_CALLS]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

static volatile sig_atomic_t go;

static void on_go(int sig)
{
	(void)sig;
	go = 1;
}

static const struct {
	const char *path;
	int flags;
} opens[] = {
	{"/etc/passwd", O_RDONLY | O_CLOEXEC},
	{"/nonexistent/open_target", O_RDONLY},		   /* ENOENT */
	{"/dev/null", O_WRONLY | O_APPEND},
	{"/sys/kernel/uevent_seqnum", O_WRONLY},	   /* EACCES, for root too (read-only sysfs file) */
	{"/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC},
	{"/dev/null/open_target", O_RDONLY},		   /* ENOTDIR */
	{"/etc/open_target_missing", O_RDONLY | O_NOFOLLOW}, /* ENOENT, the last open */
};

#define NOPENS ((int)(sizeof(opens) / sizeof(opens[0])))
#define GETPRIORITY_CALLS 200
#define UNAME_CALLS 50

int main(int argc, char **argv)
{
	long getppid_calls = argc > 1 ? atol(argv[1]) : 1000;
	signal(SIGUSR1, on_go);
	printf("ready %d\n", (int)getpid());
	fflush(stdout);
	/* Polled: the signal may be delivered to another thread of ours (an agent's). */
	while (!go)
		usleep(2000);

	int fds[NOPENS], errs[NOPENS];
	for (int i = 0; i < NOPENS; i++) {
		fds[i] = openat(AT_FDCWD, opens[i].path, opens[i].flags);
		errs[i] = fds[i] < 0 ? errno : 0;
		if (fds[i] >= 0)
			close(fds[i]);
	}
	long sink = 0;
	for (long i = 0; i < getppid_calls; i++)
		sink += getppid();
	for (int i = 0; i < GETPRIORITY_CALLS; i++) {
		errno = 0;
		sink += getpriority(PRIO_PROCESS, 0);
	}
	struct utsname u;
	for (int i = 0; i < UNAME_CALLS; i++)
		sink += uname(&u);

	printf("{\"pid\":%d,\"opens\":[", (int)getpid());
	for (int i = 0; i < NOPENS; i++)
		printf("%s{\"path\":\"%s\",\"flags\":%d,\"fd\":%d,\"errno\":%d}", i ? "," : "", opens[i].path,
		       opens[i].flags, fds[i], errs[i]);
	printf("],\"calls\":{\"openat\":%d,\"getppid\":%ld,\"getpriority\":%d,\"uname\":%d},\"sink\":%d}\n",
	       NOPENS, getppid_calls, GETPRIORITY_CALLS, UNAME_CALLS, sink != 0);
	return 0;
}
