/* What bpf/errinject.bpf.c counts, read by examples/errinject/errinject.c. */
#ifndef ERRINJECT_H
#define ERRINJECT_H

struct errinject_stats {
	unsigned long long calls;  /* the target's malloc calls seen */
	unsigned long long failed; /* those made to fail */
};

#endif
