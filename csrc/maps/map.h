/*
 * eBPF maps in the shared segment: one table of map types (map_types.c),
 * one ops table per map type (like the kernel's struct bpf_map_ops), one
 * file per type whose struct starts with the common header. A map and all
 * its storage live in one heap block, preallocated to max_entries.
 */
#ifndef BPFTIME_MAP_H
#define BPFTIME_MAP_H

#include "../shm/segment.h"
#include "../base/map_hash.h"

#define MAP_MAGIC 0x50414d5450464221ull

/* Kernel map types (enum bpf_map_type) and update flags. */
enum {
	MAP_HASH = 1, MAP_ARRAY = 2, MAP_PROG_ARRAY = 3, MAP_PERF_EVENT_ARRAY = 4,
	MAP_PERCPU_HASH = 5, MAP_PERCPU_ARRAY = 6, MAP_STACK_TRACE = 7, MAP_LRU_HASH = 9, MAP_LRU_PERCPU_HASH = 10,
	MAP_LPM_TRIE = 11, MAP_ARRAY_OF_MAPS = 12, MAP_HASH_OF_MAPS = 13, MAP_QUEUE = 22,
	MAP_STACK = 23, MAP_RINGBUF = 27, MAP_BLOOM_FILTER = 30,
};
enum { F_ANY = 0, F_NOEXIST = 1, F_EXIST = 2, F_LOCK = 4 };
#define F_MMAPABLE 0x400u /* BPF_F_MMAPABLE: an array whose values user space maps */
#define F_NO_PREALLOC 0x1u
#define F_NO_COMMON_LRU 0x2u
#define F_NUMA_NODE 0x4u
#define F_ACCESS_MASK 0x198u /* BPF_F_RDONLY, _WRONLY, _RDONLY_PROG, _WRONLY_PROG: accepted, not enforced */
#define F_INNER_MAP 0x1000u
#define MAP_PAGE 4096u
#define KERNEL_ENOTSUPP 524 /* the kernel's internal ENOTSUPP, which bpf(2) passes on */

/*
 * The header every map starts with, and all that code outside a map type's
 * own file may read. Each type's state is its own struct embedding this one
 * first (as the kernel's struct bpf_htab embeds struct bpf_map), e.g.
 * struct hash_map in hash.c; the map type table gives its size.
 */
struct shm_map {
	uint64_t magic; /* MAP_MAGIC: pointers handed in by programs are checked against it */
	uint64_t self;  /* own offset, to find the segment from a map pointer */
	uint32_t id, type, key_size, value_size, max_entries, map_flags;
	uint32_t key_stride;   /* key_size rounded up to 8 */
	uint32_t value_stride; /* value_size rounded up to 8 */
	uint32_t ncpus;        /* copies of each value: possible CPUs for per-CPU maps, else 1 */
	char name[SHM_NAME_LEN];
	pthread_mutex_t lock;
	uint64_t map_extra;     /* the creation attribute, as the kernel keeps it (bloom filters' hash count) */
	uint64_t slots;         /* offset of the type's values area */
	uint64_t values_bytes;  /* bytes at `slots` a program may touch (0: none) */
	uint32_t spin_lock_off; /* offset + 1 of a struct bpf_spin_lock in the value, 0 if none */
	uint32_t kernel_id;     /* a map fronting kernel map `kernel_id` (kernel_map.c), 0 if none */
};

/* Maps of maps: the template inner maps must match, kept in the map-in-map type's struct. */
struct map_inner {
	uint32_t type, key_size, value_size, max_entries;
	uint32_t map_id; /* the template's id, when the map was created */
};

struct map_ops {
	/* Bytes of the type's struct (which starts with struct shm_map). */
	uint32_t state_size;
	/* Maps of maps: offset of the struct map_inner in the type's struct (0: none). */
	uint32_t inner_off;
	/* Bytes of storage after the type's struct, from the header's fields. */
	uint64_t (*storage_size)(const struct shm_map *map);
	/* Fill in the type's struct and lay out the storage starting at offset `at` (zeroed). */
	void (*init)(struct bpftime_shm *shm, struct shm_map *map, uint64_t at);
	/* Pointer to the key's values (all CPUs' copies, consecutive), or NULL. */
	void *(*lookup)(struct bpftime_shm *shm, struct shm_map *map, const void *key);
	/* value holds one copy (cpu >= 0: that CPU's slot of a per-CPU map) or all (cpu < 0). */
	int (*update)(struct bpftime_shm *shm, struct shm_map *map, const void *key,
		      const void *value, uint64_t flags, int cpu);
	int (*delete)(struct bpftime_shm *shm, struct shm_map *map, const void *key);
	int (*next_key)(struct bpftime_shm *shm, struct shm_map *map, const void *key, void *next);
	/* Queue, stack and bloom filter: keyless maps. */
	int (*push)(struct bpftime_shm *shm, struct shm_map *map, const void *value, uint64_t flags);
	int (*pop)(struct bpftime_shm *shm, struct shm_map *map, void *value);
	int (*peek)(struct bpftime_shm *shm, struct shm_map *map, void *value);
	/* Queue and stack: up to max values, oldest first, without taking them; returns how many. */
	int (*values)(struct bpftime_shm *shm, struct shm_map *map, void *out, uint32_t max);
	/*
	 * Called with the map's lock held when its last holder died holding it (EOWNERDEAD), maybe
	 * in the middle of an update: makes the structure consistent again (free lists, LRU lists,
	 * chains, counts, positions) from what the published state says. NULL: nothing to repair.
	 */
	void (*repair)(struct bpftime_shm *shm, struct shm_map *map);
	/* Frees heap blocks the map took besides its own (segment lock held). NULL: none. */
	void (*release)(struct bpftime_shm *shm, struct shm_map *map);
};

/*
 * Takes the map's robust lock; when its holder died with it, the type's repair op puts the
 * structure right before anyone goes on (see map_ops.repair).
 */
HIDDEN void map_lock(struct bpftime_shm *shm, struct shm_map *map);
static inline void map_unlock(struct shm_map *map)
{
	shm_unlock(&map->lock);
}

HIDDEN extern const struct map_ops array_map_ops;
HIDDEN extern const struct map_ops array_of_maps_ops;
HIDDEN extern const struct map_ops hash_map_ops;
HIDDEN extern const struct map_ops hash_of_maps_ops;
HIDDEN extern const struct map_ops queue_map_ops;
HIDDEN extern const struct map_ops stack_map_ops;
HIDDEN extern const struct map_ops bloom_map_ops;
HIDDEN extern const struct map_ops lpm_map_ops;
HIDDEN extern const struct map_ops ringbuf_map_ops;
HIDDEN extern const struct map_ops perf_event_array_map_ops;
HIDDEN extern const struct map_ops prog_array_map_ops;
HIDDEN extern const struct map_ops stack_trace_map_ops;

/*
 * The map types, one entry each, indexed by kernel id (enum bpf_map_type):
 * everything the generic code asks about a type. An id without ops is not
 * supported. Defined in map_types.c.
 */
struct map_type {
	const char *name;          /* libbpf's name ("percpu_hash"), as lib/maps/types.ts has it */
	const struct map_ops *ops; /* NULL: not supported */
	uint32_t create_flags;     /* map_flags it takes besides NUMA node and access flags */
	uint32_t key_size;         /* the only key size it takes (0: any non-zero, or none if keyless) */
	uint32_t value_size;       /* the only value size it takes (0: any non-zero) */
	bool percpu;               /* a value per possible CPU */
	bool keyless;              /* queue, stack, bloom filter: push, pop, peek */
	bool index_keyed;          /* u32 keys 0..max_entries-1, every one present */
	bool map_in_map;           /* values are inner map ids, checked against a template */
	bool lru;                  /* full maps evict the least recently used element */
	bool hashed;               /* a hash table: lookup_and_delete takes an element */
	bool iterable;             /* bpf_for_each_map_elem walks it */
	bool spin_lock;            /* values may hold a struct bpf_spin_lock */
};
#define MAP_TYPE_LIMIT 32 /* kernel ids below this */
HIDDEN extern const struct map_type map_types[MAP_TYPE_LIMIT];

/* The table entry of a kernel map type id; an entry without ops when unknown. */
static inline const struct map_type *map_type(uint32_t type)
{
	return &map_types[type < MAP_TYPE_LIMIT ? type : 0];
}
static inline const struct map_ops *map_ops_for(uint32_t type)
{
	return map_type(type)->ops;
}
/*
 * The operations of one map: those of its type, or for a map fronting a kernel map
 * (kernel_map.c) the ones that reach the kernel map and keep the type's storage as its shadow.
 */
HIDDEN extern const struct map_ops kernel_map_ops;
static inline const struct map_ops *map_ops_of(const struct shm_map *m)
{
	return m->kernel_id ? &kernel_map_ops : map_ops_for(m->type);
}
static inline bool is_map_in_map(uint32_t type)
{
	return map_type(type)->map_in_map;
}
/* A map of maps' template, NULL for other maps. */
static inline struct map_inner *map_inner_of(struct shm_map *map)
{
	const struct map_ops *ops = map_ops_for(map->type);
	return ops && ops->inner_off ? (struct map_inner *)((uint8_t *)map + ops->inner_off) : NULL;
}

/* The map with this id, or NULL (and the last error says why). */
HIDDEN struct shm_map *map_by_id(struct bpftime_shm *shm, uint32_t id);
/* get_next_key of every index-keyed map (arrays, program and perf event arrays). */
HIDDEN int index_next_key(struct bpftime_shm *shm, struct shm_map *map, const void *key, void *next);
/* The inner map a map-in-map value (a map id) names, or NULL. */
HIDDEN struct shm_map *inner_map(struct bpftime_shm *shm, const void *id_value);
/*
 * How programs reach a map's values: elements of value_size bytes every value_stride (per-CPU
 * copies are elements too); a ring buffer's data area is one piece.
 */
static inline void map_value_elements(const struct shm_map *m, uint64_t *stride, uint64_t *size)
{
	if (m->type == MAP_RINGBUF) {
		*stride = *size = m->values_bytes;
		return;
	}
	*stride = m->value_stride;
	*size = m->value_size;
}
/* The map whose values hold [addr, addr+size) inside one element, or NULL. NO_VECTORS. */
HIDDEN const struct shm_map *shm_map_holding(const struct bpftime_shm *shm, uint64_t addr,
					     uint64_t size);
/* Whether the map of maps `outer` holds inner map `id` (in its values area). NO_VECTORS. */
HIDDEN bool map_in_map_holds(const struct bpftime_shm *shm, const struct shm_map *outer, uint32_t id);
HIDDEN uint32_t possible_cpus(void);
/* Array: bytes of its values as user space maps them (BPF_F_MMAPABLE). */
HIDDEN uint64_t array_mmap_bytes(const struct shm_map *map);
/* Program array: the slot holding the program id at `index`, or NULL when out of range. */
HIDDEN uint32_t *prog_array_slot(struct bpftime_shm *shm, struct shm_map *map, uint32_t index);
HIDDEN int current_cpu(void);

/*
 * How to look a key up in a map without calling its lookup op, for code that compiles lookups
 * inline: only for maps whose lookup takes no lock and touches nothing (plain arrays and plain
 * hash maps; not per-CPU, LRU or maps of maps). Values of element i: values + i * value_stride;
 * hash maps (hash.c): buckets hold element index + 1 (0: empty), each element the chain link,
 * the key's map_hash_bytes(key, key_size, 0) and the key at the given offsets.
 */
struct map_lookup_layout {
	uint32_t kind; /* MAP_ARRAY or MAP_HASH */
	uint32_t key_size, max_entries;
	uint8_t *values;
	uint64_t value_stride;
	uint32_t *buckets;
	uint8_t *elems;
	uint32_t bucket_mask, elem_size, next_off, hash_off, key_off;
};
/* False when lookups in this map must go through its lookup op. */
HIDDEN bool map_lookup_layout(struct bpftime_shm *shm, struct shm_map *map,
			      struct map_lookup_layout *out);
HIDDEN bool hash_lookup_layout(struct bpftime_shm *shm, struct shm_map *map,
			       struct map_lookup_layout *out);

/* struct bpf_spin_lock: a test-and-set word, shared by bpf_spin_lock and BPF_F_LOCK. */
static inline void value_spin_lock(uint32_t *l)
{
	while (__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE))
		while (__atomic_load_n(l, __ATOMIC_RELAXED))
			__builtin_ia32_pause();
}
static inline void value_spin_unlock(uint32_t *l)
{
	__atomic_store_n(l, 0, __ATOMIC_RELEASE);
}

/*
 * Copies one value into the map (or out of it, `out`), never overwriting the
 * value's spin lock; with `locked` (BPF_F_LOCK) under that lock.
 */
HIDDEN void map_copy_value(const struct shm_map *map, void *dst, const void *src, bool locked,
			   bool out);
/* Whether the update flags are valid for this map (BPF_F_LOCK needs a spin lock in the value). */
static inline bool map_flags_ok(const struct shm_map *map, uint64_t flags)
{
	return (flags & ~(uint64_t)F_LOCK) <= F_EXIST && (!(flags & F_LOCK) || map->spin_lock_off);
}

static inline void *map_at(struct bpftime_shm *shm, uint64_t off)
{
	return shm_ptr(shm, off);
}

#endif
