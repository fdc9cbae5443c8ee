/* bpf_tail_call (tail_call.c), registered by runtime.c. Private to csrc/runtime/. */
#ifndef BPFTIME_TAIL_CALL_H
#define BPFTIME_TAIL_CALL_H

#include "../helpers/helpers.h"

HIDDEN extern const struct helper_def tail_call_helpers[];

#endif
