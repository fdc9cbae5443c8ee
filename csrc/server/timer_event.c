/*
 * Timer perf events (PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_CLOCK or
 * TASK_CLOCK, on a CPU for every process: bpftrace's `interval:s:N`,
 * `interval:ms:N`, `interval:hz:N`): a BPF_PROG_TYPE_PERF_EVENT program bound
 * to one runs in this process, on a thread of ours, once per period (the
 * kernel's cpu-clock event is an hrtimer: wall time, idle or not), with a
 * struct bpf_perf_event_data whose registers are zero (no task was
 * interrupted) and whose sample_period is the period.
 */
#include "server.h"

#include "../runtime/runtime.h"

#include <errno.h>
#include <linux/perf_event.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct timer_event {
	uint64_t period_ns;
	pthread_t thread;
	bool running;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	uint32_t prog_id;
};

/* struct bpf_perf_event_data: the registers (struct pt_regs, 21 u64s), sample_period, addr. */
struct perf_event_ctx {
	uint64_t regs[21];
	uint64_t sample_period;
	uint64_t addr;
};

static void *timer_main(void *arg)
{
	struct timer_event *t = arg;
	struct bpftime_vm *vm = runtime_program_vm(server_shm, t->prog_id, NULL);
	if (!vm)
		server_log("timer event: program %u cannot run: %s", t->prog_id, bpftime_last_error());
	struct timespec next;
	clock_gettime(CLOCK_MONOTONIC, &next);
	bool faulted = false;
	pthread_mutex_lock(&t->lock);
	while (!t->stop) {
		uint64_t ns = (uint64_t)next.tv_nsec + t->period_ns;
		next.tv_sec += (time_t)(ns / 1000000000u);
		next.tv_nsec = (long)(ns % 1000000000u);
		while (!t->stop && pthread_cond_timedwait(&t->cond, &t->lock, &next) != ETIMEDOUT)
			;
		if (t->stop || !vm)
			continue;
		pthread_mutex_unlock(&t->lock);
		struct perf_event_ctx ctx = {.sample_period = t->period_ns};
		uint64_t r0;
		if (bpftime_vm_exec(vm, &ctx, sizeof(ctx), &r0) < 0 && !faulted) {
			faulted = true;
			server_log("timer event: program %u faulted: %s", t->prog_id, bpftime_last_error());
		}
		pthread_mutex_lock(&t->lock);
	}
	pthread_mutex_unlock(&t->lock);
	if (vm)
		bpftime_vm_destroy(vm);
	return NULL;
}

int timer_event_open(const struct perf_event_attr *attr, int pid, int cpu, unsigned long flags)
{
	if (pid != -1 || cpu < 0 || (flags & ~(unsigned long)PERF_FLAG_FD_CLOEXEC))
		return -EINVAL;
	uint64_t period = attr->freq ? (attr->sample_freq ? 1000000000ull / attr->sample_freq : 0)
				     : attr->sample_period;
	if (!period) {
		server_log("perf_event_open: a timer event needs a sample period or frequency");
		return -EINVAL;
	}
	if (period < 10000)
		period = 10000; /* the kernel's cpu-clock floor: 10 us */
	struct perf_probe *p = calloc(1, sizeof(*p));
	struct timer_event *t = calloc(1, sizeof(*t));
	if (!p || !t) {
		free(p);
		free(t);
		return -ENOMEM;
	}
	t->period_ns = period;
	pthread_mutex_init(&t->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&t->cond, &ca);
	pthread_condattr_destroy(&ca);
	p->timer = t;
	p->enabled = !attr->disabled;
	p->creator = getpid();
	server_lock();
	int fd = sfd_new(SFD_PERF_EVENT, 0, p);
	server_unlock();
	if (fd < 0) {
		free(t);
		free(p);
	}
	return fd;
}

static void stop(struct timer_event *t)
{
	if (!t->running)
		return;
	pthread_mutex_lock(&t->lock);
	t->stop = true;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
	pthread_join(t->thread, NULL);
	t->running = false;
}

long timer_event_sync(struct perf_probe *p)
{
	struct timer_event *t = p->timer;
	bool want = p->spec.prog_id && p->enabled;
	if (want && !t->running) {
		t->stop = false;
		t->prog_id = p->spec.prog_id;
		/* Signals are for the application's threads, not ours. */
		sigset_t all, old;
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		int rc = pthread_create(&t->thread, NULL, timer_main, t);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (rc) {
			server_log("timer event: cannot start its thread: %s", strerror(rc));
			return -rc;
		}
		t->running = true;
	} else if (!want) {
		stop(t);
	}
	return 0;
}

void timer_event_free(struct timer_event *t)
{
	stop(t);
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->lock);
	free(t);
}
