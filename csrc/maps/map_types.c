/*
 * The map types: one entry per supported kernel map type. Adding a type is
 * an entry here, its ops in its own file, and its name in lib/maps/types.ts
 * (tests/layout_table_test.ts checks that the two tables agree).
 */
#include "map.h"

const struct map_type map_types[MAP_TYPE_LIMIT] = {
	[MAP_HASH] = {.name = "hash", .ops = &hash_map_ops, .create_flags = F_NO_PREALLOC,
		      .hashed = true, .iterable = true, .spin_lock = true},
	[MAP_ARRAY] = {.name = "array", .ops = &array_map_ops, .create_flags = F_INNER_MAP | F_MMAPABLE,
		       .key_size = 4, .index_keyed = true, .iterable = true, .spin_lock = true},
	[MAP_PROG_ARRAY] = {.name = "prog_array", .ops = &prog_array_map_ops, .create_flags = F_NO_PREALLOC,
			    .key_size = 4, .value_size = 4, .index_keyed = true},
	[MAP_PERF_EVENT_ARRAY] = {.name = "perf_event_array", .ops = &perf_event_array_map_ops,
				  .create_flags = F_NO_PREALLOC, .key_size = 4, .value_size = 4,
				  .index_keyed = true},
	[MAP_PERCPU_HASH] = {.name = "percpu_hash", .ops = &hash_map_ops, .create_flags = F_NO_PREALLOC,
			     .percpu = true, .hashed = true, .iterable = true},
	[MAP_PERCPU_ARRAY] = {.name = "percpu_array", .ops = &array_map_ops, .create_flags = F_INNER_MAP,
			      .key_size = 4, .percpu = true, .index_keyed = true, .iterable = true},
	[MAP_STACK_TRACE] = {.name = "stack_trace", .ops = &stack_trace_map_ops, .create_flags = F_NO_PREALLOC,
			     .key_size = 4},
	[MAP_LRU_HASH] = {.name = "lru_hash", .ops = &hash_map_ops, .create_flags = F_NO_COMMON_LRU,
			  .lru = true, .hashed = true, .iterable = true},
	[MAP_LRU_PERCPU_HASH] = {.name = "lru_percpu_hash", .ops = &hash_map_ops,
				 .create_flags = F_NO_COMMON_LRU, .percpu = true, .lru = true, .hashed = true,
				 .iterable = true},
	[MAP_LPM_TRIE] = {.name = "lpm_trie", .ops = &lpm_map_ops, .create_flags = F_NO_PREALLOC},
	[MAP_ARRAY_OF_MAPS] = {.name = "array_of_maps", .ops = &array_of_maps_ops, .create_flags = F_INNER_MAP,
			       .key_size = 4, .value_size = 4, .index_keyed = true, .map_in_map = true},
	[MAP_HASH_OF_MAPS] = {.name = "hash_of_maps", .ops = &hash_of_maps_ops, .create_flags = F_NO_PREALLOC,
			      .value_size = 4, .map_in_map = true, .hashed = true},
	[MAP_QUEUE] = {.name = "queue", .ops = &queue_map_ops, .create_flags = F_NO_PREALLOC, .keyless = true},
	[MAP_STACK] = {.name = "stack", .ops = &stack_map_ops, .create_flags = F_NO_PREALLOC, .keyless = true},
	[MAP_RINGBUF] = {.name = "ringbuf", .ops = &ringbuf_map_ops},
	[MAP_BLOOM_FILTER] = {.name = "bloom_filter", .ops = &bloom_map_ops, .create_flags = F_NO_PREALLOC,
			      .keyless = true},
};

const char *bpftime_map_type_name(uint32_t type)
{
	return map_type(type)->ops ? map_type(type)->name : NULL;
}
