/* The agent's internal interface. */
#ifndef BPFTIME_AGENT_H
#define BPFTIME_AGENT_H

#include "../base/log.h"
#include "../runtime/runtime.h"
#include "../shm/segment.h"
#include "probes.h"

#include <sys/types.h>

HIDDEN void agent_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Where file offset `offset` of the file (dev, ino) is mapped executable here; 0 when it is not. */
HIDDEN uint64_t mapped_address(dev_t dev, ino_t ino, uint64_t offset);

/* On this thread, probes do not run while suspended (nests). */
HIDDEN void probes_suspend(bool on);

#endif
