/*
 * A library whose constructor dlopens another ($LIVE_NESTED_LIB) while the
 * loader runs it, i.e. with the loader's lock held. It prints "ctor" and
 * waits 1.5 s first, for tests/attach_live_test.ts to add a link meanwhile.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void say(const char *s)
{
	if (write(1, s, strlen(s)) < 0)
		_exit(3);
}

__attribute__((constructor)) static void load_nested(void)
{
	const char *nested = getenv("LIVE_NESTED_LIB");
	if (!nested)
		return;
	say("ctor\n");
	struct timespec ts = {1, 500000000};
	while (nanosleep(&ts, &ts) != 0)
		;
	if (!dlopen(nested, RTLD_NOW))
		say("WRONG nested dlopen\n");
}
