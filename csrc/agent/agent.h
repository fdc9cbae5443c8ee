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
/* The same in a writable mapping (a USDT semaphore in the file's data). */
HIDDEN uint64_t mapped_writable_address(dev_t dev, ino_t ino, uint64_t offset);

/*
 * `len` bytes of the file (dev, ino) at `path` from `offset`, zeros past its
 * end: the code as the file has it (page cache), without the int3s another
 * tool (a kernel uprobe, a debugger) may have put into this process's copy.
 * 0, or -1 when it cannot be read or `path` is another file by now.
 */
HIDDEN int file_code(const char *path, dev_t dev, ino_t ino, uint64_t offset, uint8_t *buf, size_t len);

/* On this thread, probes do not run while suspended (nests). */
HIDDEN void probes_suspend(bool on);

HIDDEN struct bpftime_shm *agent_shm(void);

/*
 * Syscall tracepoints (syscall_probes.c), agent_lock held. Attaching the
 * first installs the syscall hooks (and, with BPFTIME_SYSCALL_SUD=1, Syscall
 * User Dispatch when `single_threaded`: only the calling thread and those
 * created later get it). 0, or -1 with `err` filled (nothing attached).
 */
HIDDEN int syscall_link_attach(uint32_t link_id, const struct bpftime_link_spec *spec, struct bpftime_vm *vm,
			       uint32_t *faults, bool single_threaded, char *err, size_t errlen);
HIDDEN void syscall_link_detach(uint32_t link_id);
/* Rewrites the syscalls of objects loaded since (dlopen), once the hooks are installed. */
HIDDEN void syscall_probes_scan_new(void);
/* This thread's syscalls are the agent's own (never traced) while on (nests). */
HIDDEN void syscall_probes_guard(bool on);
/* Lets compiled programs call helpers without having every run save vectors (helper_gate.c). */
HIDDEN void helper_gate_install(void);

/*
 * sched/sched_process_{exec,exit,fork} (sched_probes.c). Attach/detach with
 * agent_lock held: 0, or -1 with `err` filled. sched_probes_start once the
 * agent runs in a new image (registers the exit handler), sched_raise_exec
 * after the first sync; sched_forked_child in a fork child.
 */
HIDDEN int sched_link_attach(uint32_t link_id, const struct bpftime_link_spec *spec, struct bpftime_vm *vm,
			     uint32_t *faults, char *err, size_t errlen);
HIDDEN void sched_link_detach(uint32_t link_id);
HIDDEN void sched_probes_start(void);
HIDDEN void sched_raise_exec(void);
HIDDEN void sched_raise_exit(int status, bool group);
HIDDEN void sched_raise_fork(pid_t child);
HIDDEN void sched_forked_child(void);
/* From now on, exec passes the agent on even in an environment without it (exec_env.c). */
HIDDEN void exec_env_keep_agent(void);
/* exit (nr 60) and exit_group (231) seen by the syscall hooks: the thread's or the process's end. */
HIDDEN NO_VECTORS void sched_exit_syscall(uint64_t nr, uint64_t status);

#endif
