/*
 * The hash of map keys (hash maps, bloom filters), in its own header so that code outside the
 * maps (the plain C table of bench/maps_harness.c) can hash keys the same way. The JIT's inline
 * hash map lookups (csrc/vm/jit_map_lookup.c) emit this function for 4- and 8-byte keys.
 */
#ifndef BPFTIME_MAP_HASH_H
#define BPFTIME_MAP_HASH_H

#include <stdint.h>

/* FNV-1a over the bytes, then a mixing step; `seed` picks one of a family (bloom filters). */
static inline uint32_t map_hash_bytes(const void *data, uint32_t len, uint64_t seed)
{
	const uint8_t *p = data;
	uint64_t h = 0x9e3779b97f4a7c15ull ^ len ^ (seed * 0xcbf29ce484222325ull);
	for (uint32_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return (uint32_t)h;
}

#endif
