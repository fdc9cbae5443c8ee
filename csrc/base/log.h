/*
 * Log lines: "<prefix>: <message>\n", formatted into the caller's buffer and
 * written by the caller in the way its process allows (the agent with libc,
 * the syscall server with a raw write that its own interposition never sees).
 */
#ifndef BPFTIME_LOG_H
#define BPFTIME_LOG_H

#include "base.h"

#include <stdarg.h>
#include <stddef.h>

/* Formats one line (message cut to fit, newline kept) into line[size]; returns its length. */
HIDDEN size_t log_format(char *line, size_t size, const char *prefix, const char *fmt, va_list ap);

#endif
