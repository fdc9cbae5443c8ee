#include "workloads.h"

/* Bit twiddling: popcount and integer log2 of a stream of hashed values. */
WORKLOAD(bitops)
{
	(void)mem;
	u64 acc = len;
	for (u64 i = 1; i <= 20000; i++) {
		u64 x = i * 0x9e3779b97f4a7c15ull;
		u64 c = x - ((x >> 1) & 0x5555555555555555ull);
		c = (c & 0x3333333333333333ull) + ((c >> 2) & 0x3333333333333333ull);
		c = (((c + (c >> 4)) & 0x0f0f0f0f0f0f0f0full) * 0x0101010101010101ull) >> 56;
		u64 log2 = 0, y = x;
		if (y >> 32) { y >>= 32; log2 += 32; }
		if (y >> 16) { y >>= 16; log2 += 16; }
		if (y >> 8) { y >>= 8; log2 += 8; }
		if (y >> 4) { y >>= 4; log2 += 4; }
		if (y >> 2) { y >>= 2; log2 += 2; }
		if (y >> 1) log2 += 1;
		acc += c ^ (log2 << 8) ^ (x >> 61);
	}
	return acc;
}
