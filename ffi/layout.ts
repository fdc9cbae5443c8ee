/**
 * The C layouts the bindings read and write by hand, in one place: field
 * offsets (and sizes, as `sizeof`) of the structs of csrc/include/bpftime.h,
 * and of the kernel formats the runtime reproduces in shared memory (perf
 * ring pages and records, ring buffer record headers), by their C names.
 * tests/layout_table_test.ts compiles a C program printing offsetof, sizeof
 * and the constants' values, and checks every number here against it.
 */

/** struct bpftime_object_info */
export const OBJECT_INFO = { sizeof: 24, id: 0, kind: 4, name: 8 } as const;

/** struct bpftime_map_info */
export const MAP_INFO = {
  sizeof: 56,
  id: 0,
  type: 4,
  key_size: 8,
  value_size: 12,
  max_entries: 16,
  map_flags: 20,
  ncpus: 24,
  value_stride: 28,
  name: 32,
  inner_map_id: 48,
} as const;

/** struct bpftime_link_spec */
export const LINK_SPEC = {
  sizeof: 304,
  prog_id: 0,
  type: 4,
  pid: 8,
  func_size: 12,
  offset: 16,
  cookie: 24,
  target: 32,
  ref_ctr_offset: 288,
  flags: 296,
} as const;

/** struct bpftime_shm_stats */
export const SHM_STATS = {
  sizeof: 24,
  size: 0,
  heap_used: 8,
  generation: 16,
  objects: 20,
} as const;

/** struct bpftime_ringbuf_info: five 8-byte fields (pointers and the size). */
export const RINGBUF_INFO = {
  sizeof: 40,
  consumer_pos: 0,
  producer_pos: 8,
  data: 16,
  size: 24,
  dropped: 32,
} as const;

/** struct bpftime_attach_info */
export const ATTACH_INFO = { sizeof: 24, func_ip: 0, cookie: 8, flags: 16 } as const;

/** struct perf_ring_page (csrc/maps/perf_event_array.h): a perf_event_mmap_page's ring fields. */
export const PERF_RING_PAGE = {
  data_head: 1024,
  data_tail: 1032,
  data_offset: 1040,
  data_size: 1048,
} as const;

/** struct perf_header (struct perf_event_header): what starts every perf record. */
export const PERF_HEADER = { sizeof: 8, type: 0, misc: 4, size: 6 } as const;

/** Every struct above, by its C name. */
export const C_STRUCTS: Readonly<Record<string, Readonly<Record<string, number>>>> = {
  "struct bpftime_object_info": OBJECT_INFO,
  "struct bpftime_map_info": MAP_INFO,
  "struct bpftime_link_spec": LINK_SPEC,
  "struct bpftime_shm_stats": SHM_STATS,
  "struct bpftime_ringbuf_info": RINGBUF_INFO,
  "struct bpftime_attach_info": ATTACH_INFO,
  "struct perf_ring_page": PERF_RING_PAGE,
  "struct perf_header": PERF_HEADER,
};

/** Constants of the C side the bindings use, by their C names. */
export const C_CONSTANTS = {
  BPFTIME_SHM_CREATE: 0x1000,
  BPFTIME_OBJ_MAP: 1,
  BPFTIME_OBJ_PROG: 2,
  BPFTIME_OBJ_LINK: 3,
  BPFTIME_LINK_UPROBE: 1,
  BPFTIME_LINK_URETPROBE: 2,
  BPFTIME_LINK_SYSCALL_TRACEPOINT: 3,
  BPFTIME_LINK_DETACH: 4,
  BPFTIME_LINK_UREPLACE: 5,
  BPFTIME_LINK_F_FUNC_ENTRY: 1,
  /** Ring buffer records: an 8-byte header, u32 length with these bits, u32 page offset. */
  RB_HDR: 8,
  RB_BUSY_BIT: 0x80000000,
  RB_DISCARD_BIT: 0x40000000,
  PERF_RECORD_LOST: 2,
  PERF_RECORD_SAMPLE: 9,
} as const;
