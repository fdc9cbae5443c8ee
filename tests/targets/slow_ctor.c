/*
 * A library whose constructor takes long (SLOW_CTOR_MS ms, default 1000; with
 * SLOW_CTOR_UNTIL=FILE, until FILE exists, for up to 30 s): the loader's lock is
 * held meanwhile by the thread that dlopens it. It writes "ctor\n" on stdout when
 * it starts, and "ctor done\n" when it ends. For tests/attach_test.ts: `bpftime
 * attach` meeting a dlopen in progress.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void say(const char *s)
{
	if (write(1, s, strlen(s)) < 0)
		_exit(3);
}

__attribute__((constructor)) static void slow_ctor(void)
{
	const char *ms_env = getenv("SLOW_CTOR_MS");
	long ms = ms_env ? atol(ms_env) : 1000;
	const char *until = getenv("SLOW_CTOR_UNTIL");
	say("ctor\n");
	if (until) {
		struct timespec tick = {0, 10000000L};
		for (int i = 0; i < 3000 && access(until, F_OK) != 0; i++)
			nanosleep(&tick, NULL);
	} else {
		struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
		while (nanosleep(&ts, &ts) != 0)
			;
	}
	say("ctor done\n");
}
