/*
 * The library's one error channel: a per-thread message, set by whichever
 * layer refuses something and read through bpftime_last_error().
 */
#ifndef BPFTIME_ERROR_H
#define BPFTIME_ERROR_H

#include "base.h"

HIDDEN void set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
