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

/*
 * `len` bytes of the file (dev, ino) at `path` from `offset`, zeros past its
 * end: the code as the file has it (page cache), without the int3s another
 * tool (a kernel uprobe, a debugger) may have put into this process's copy.
 * 0, or -1 when it cannot be read or `path` is another file by now.
 */
HIDDEN int file_code(const char *path, dev_t dev, ino_t ino, uint64_t offset, uint8_t *buf, size_t len);

/* On this thread, probes do not run while suspended (nests). */
HIDDEN void probes_suspend(bool on);

#endif
