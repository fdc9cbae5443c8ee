/* The price table of examples/hotpatch/server.c, as the patch (bpf/hotpatch.bpf.c) reads it. */
#ifndef HOTPATCH_H
#define HOTPATCH_H

#define PRICES 8

struct price_table {
	long len;
	long values[PRICES];
	long secret; /* right after the table: what an out-of-bounds read leaks */
};

#endif
