/*
 * The scripted target of the syscall examples' test (opensnoop, syscount):
 * prints "ready PID", waits for SIGUSR1, then opens a fixed set of paths with
 * openat (some fail: ENOENT, EACCES, ENOTDIR), closing each fd it gets, makes
 * a known number of getppid, getpriority and uname calls, prints one JSON line
 * with what it did, and exits.
 *
 * Until SIGUSR1, each SIGUSR2 makes it open SYNC_PATH (ENOENT) once: a test
 * sends SIGUSR2 until its tools print that path, and knows they are attached.
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

#define SYNC_PATH "/nonexistent/open_target_sync"

static volatile sig_atomic_t go, sync_requests;

static void on_go(int sig)
{
	(void)sig;
	go = 1;
}

static void on_sync(int sig)
{
	(void)sig;
	sync_requests++;
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
	signal(SIGUSR2, on_sync);
	printf("ready %d\n", (int)getpid());
	fflush(stdout);
	/* Polled: the signals may be delivered to another thread of ours (an agent's). */
	int sync_opens = 0;
	while (!go) {
		for (; sync_opens < sync_requests; sync_opens++)
			openat(AT_FDCWD, SYNC_PATH, O_RDONLY);
		usleep(2000);
	}

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
	printf("],\"calls\":{\"openat\":%d,\"getppid\":%ld,\"getpriority\":%d,\"uname\":%d},"
	       "\"sync_opens\":%d,\"sink\":%d}\n",
	       NOPENS, getppid_calls, GETPRIORITY_CALLS, UNAME_CALLS, sync_opens, sink != 0);
	return 0;
}
