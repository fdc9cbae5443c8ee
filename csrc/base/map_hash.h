/*
 * The hash of map keys (hash maps, bloom filters), in base/ so that the maps, the JIT's inline
 * hash map lookups (csrc/vm/jit_map_lookup.c emits it for 4- and 8-byte keys) and the plain C
 * table of bench/maps_harness.c hash keys the same way.
 */
#ifndef BPFTIME_MAP_HASH_H
#define BPFTIME_MAP_HASH_H

#include <stdint.h>

#define MAP_HASH_BASE 0x9e3779b97f4a7c15ull
#define MAP_HASH_MIX1 0xff51afd7ed558ccdull
#define MAP_HASH_MIX2 0xc4ceb9fe1a85ec53ull

/*
 * 4- and 8-byte keys (pids, tids, cookies, addresses: most keys): the key as a little-endian
 * word, xor the base, through a 64-bit finaliser (two multiplies; a bijection, so distinct keys
 * never share a full hash). Other lengths: FNV-1a over the bytes, then the same finaliser.
 * `seed` picks one of a family (bloom filters).
 */
static inline uint32_t map_hash_bytes(const void *data, uint32_t len, uint64_t seed)
{
	const uint8_t *p = data;
	uint64_t h = MAP_HASH_BASE ^ len ^ (seed * 0xcbf29ce484222325ull);
	if (len == 4 || len == 8) {
		uint64_t k = 0;
		__builtin_memcpy(&k, p, len);
		h ^= k;
	} else {
		for (uint32_t i = 0; i < len; i++)
			h = (h ^ p[i]) * 0x100000001b3ull;
	}
	h ^= h >> 33;
	h *= MAP_HASH_MIX1;
	h ^= h >> 33;
	h *= MAP_HASH_MIX2;
	h ^= h >> 33;
	return (uint32_t)h;
}

#endif
