/** Kernel map types (enum bpf_map_type) and update flags, by the names libbpf uses. */

export const MAP_TYPES = {
  hash: 1,
  array: 2,
  prog_array: 3,
  perf_event_array: 4,
  percpu_hash: 5,
  percpu_array: 6,
  stack_trace: 7,
  lru_hash: 9,
  lru_percpu_hash: 10,
  lpm_trie: 11,
  array_of_maps: 12,
  hash_of_maps: 13,
  queue: 22,
  stack: 23,
  ringbuf: 27,
  bloom_filter: 30,
} as const;

export type MapTypeName = keyof typeof MAP_TYPES;

export function mapTypeName(type: number): string {
  const found = Object.entries(MAP_TYPES).find(([, v]) => v === type);
  return found ? found[0] : `type ${type}`;
}

export const BPF_ANY = 0n;
export const BPF_NOEXIST = 1n;
export const BPF_EXIST = 2n;
export const BPF_F_LOCK = 4n;

/** errno names for the values maps return. */
export const ERRNO: Readonly<Record<number, string>> = {
  1: "EPERM",
  2: "ENOENT",
  7: "E2BIG",
  12: "ENOMEM",
  17: "EEXIST",
  22: "EINVAL",
  28: "ENOSPC",
};
