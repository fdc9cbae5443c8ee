/**
 * A map seen through codecs (lib/maps/codec.ts): typed keys and values.
 *
 * ```ts
 * const stats = struct({ calls: u64, bytes: u64 });
 * const view = typed(map, u32, stats);
 * view.set(42, { calls: 1n, bytes: 128n });
 * for (const [pid, s] of view.entries()) console.log(pid, s.calls);
 * ```
 */
import type { BpfMap } from "../ffi/shm.ts";
import { type Codec, decode, encode } from "../lib/maps/codec.ts";

/** A map seen through codecs; per-CPU maps give one decoded value per CPU. */
export function typed<K, V>(map: BpfMap, key: Codec<K>, value: Codec<V>) {
  const { keySize, valueSize, name } = map.info;
  if (key.size !== keySize || value.size !== valueSize) {
    throw new Error(
      `map '${name}': codecs are ${key.size}/${value.size} bytes, the map's key/value ${keySize}/${valueSize}`,
    );
  }
  return {
    get: (k: K): V | undefined => {
      const v = map.lookup(encode(key, k));
      return v ? decode(value, v) : undefined;
    },
    getPerCpu: (k: K): V[] | undefined =>
      map.lookupPerCpu(encode(key, k))?.map((v) => decode(value, v)),
    set: (k: K, v: V, flags = 0n) => map.update(encode(key, k), encode(value, v), flags),
    delete: (k: K) => map.delete(encode(key, k)),
    *keys(): Generator<K> {
      for (const k of map.keys()) yield decode(key, k);
    },
    *entries(): Generator<[K, V]> {
      for (const [k, v] of map.entries()) yield [decode(key, k), decode(value, v)];
    },
  };
}
