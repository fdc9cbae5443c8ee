/*
 * Hammers one map of a segment with updates until killed (tests/map_kill_test.ts kills it with
 * SIGKILL at random points, then checks the map). map_hammer SEGMENT MAP_ID MODE SEED
 * MODE: hash (update and delete keys 0..255), lpm (/8../24 prefixes), queue (push and pop).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../csrc/include/bpftime.h"

int main(int argc, char **argv)
{
	if (argc < 5)
		return 2;
	struct bpftime_shm *shm = bpftime_shm_open(argv[1], 0, 0);
	if (!shm) {
		fprintf(stderr, "map_hammer: %s\n", bpftime_last_error());
		return 1;
	}
	uint32_t id = (uint32_t)atoi(argv[2]);
	const char *mode = argv[3];
	uint64_t x = (uint64_t)strtoull(argv[4], NULL, 10) * 0x9e3779b97f4a7c15ull + 1;
	puts("ready");
	fflush(stdout);
	for (uint64_t i = 0;; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		uint64_t value[4] = {i, i, i, i};
		if (!strcmp(mode, "hash")) {
			uint32_t key = (uint32_t)(x & 255);
			if ((x >> 8) % 4 == 0)
				bpftime_map_delete(shm, id, &key);
			else
				bpftime_map_update(shm, id, &key, value, 0);
		} else if (!strcmp(mode, "lpm")) {
			uint8_t key[8] = {0};
			uint32_t plen = 8 + (uint32_t)((x >> 8) % 17);
			memcpy(key, &plen, 4);
			key[4] = 10;
			key[5] = (uint8_t)(x >> 16);
			key[6] = (uint8_t)(x >> 24) & 7;
			if ((x >> 32) % 3 == 0)
				bpftime_map_delete(shm, id, key);
			else
				bpftime_map_update(shm, id, key, value, 0);
		} else {
			if ((x >> 8) % 3 == 0)
				bpftime_map_lookup_and_delete(shm, id, NULL, value);
			else
				bpftime_map_update(shm, id, NULL, value, 2 /* BPF_EXIST: drop the oldest */);
		}
	}
}
