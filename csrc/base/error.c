/* The per-thread last error (see error.h). */
#include "error.h"
#include "../include/bpftime.h"

#include <stdarg.h>
#include <stdio.h>

static __thread char last_error[512];

void set_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
}

const char *bpftime_last_error(void)
{
	return last_error;
}
