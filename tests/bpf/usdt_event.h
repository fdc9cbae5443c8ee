/* One record per USDT probe hit (tests/bpf/usdt_args.bpf.c): which probe, and its arguments. */
#ifndef USDT_EVENT_H
#define USDT_EVENT_H

#define USDT_EVENT_ARGS 6

struct usdt_event {
	unsigned long long cookie; /* the probe's index, given at attach */
	unsigned int pid;
	int arg_cnt;
	long long args[USDT_EVENT_ARGS];
	int arg_rc[USDT_EVENT_ARGS]; /* what bpf_usdt_arg returned */
	char str[16];                /* the string the last argument points to, for "plain" */
};

#endif
