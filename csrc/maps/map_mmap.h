/*
 * How user space maps a map's memory the kernel's way (mmap of a map fd):
 * BPF_F_MMAPABLE arrays show their values; ring buffers show the consumer
 * page, the producer page and the data twice. Each piece of such a mapping
 * is a range of the segment file.
 */
#ifndef BPFTIME_MAP_MMAP_H
#define BPFTIME_MAP_MMAP_H

#include "map.h"

struct map_mmap_piece {
	uint64_t at;          /* offset in the mapping */
	uint64_t file_offset; /* offset in the segment file */
	uint64_t len;
	bool writable; /* the kernel lets user space write it */
};
#define MAP_MMAP_MAX_PIECES 4

/* The pieces of map `m`'s mapping in order; 0 when the map cannot be mapped. */
HIDDEN int map_mmap_layout(const struct shm_map *m, struct map_mmap_piece out[MAP_MMAP_MAX_PIECES]);
/* Bytes of the whole mapping. */
HIDDEN uint64_t map_mmap_size(const struct shm_map *m);
/*
 * Maps bytes [offset, offset + len) of the mapping at `va` (fixed) from the
 * segment file `fd`. -EPERM when `prot` asks to write a read-only piece,
 * -EINVAL when the range is outside the mapping, -errno when mmap fails.
 */
HIDDEN int map_mmap_range(const struct shm_map *m, int fd, uint8_t *va, uint64_t offset, uint64_t len,
			  int prot);

#endif
