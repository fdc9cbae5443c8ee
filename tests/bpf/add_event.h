/* The record ring_events.bpf.c and perf_events.bpf.c send per call of probe_target's add(a, b). */
#ifndef ADD_EVENT_H
#define ADD_EVENT_H

struct event {
	__u32 pid;
	__u32 tid;
	__s64 a;
	__s64 b;
};

#endif
