#include "workloads.h"

/* Compares the two 64 KiB halves of a 128 KiB block byte by byte; returns the
 * index of the first difference, or 65536 when they are equal. */
WORKLOAD(memcmp64k)
{
	u64 half = len / 2;
	if (half > 65536)
		half = 65536;
	const u8 *a = mem, *b = mem + half;
	for (u64 i = 0; i < half; i++)
		if (a[i] != b[i])
			return i;
	return half;
}
