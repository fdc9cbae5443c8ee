/**
 * Maps differential test against the kernel, hash family: hash and per-CPU
 * hash under random operations, LRU hashes below capacity, and LRU eviction.
 */
import assert from "node:assert/strict";
import { Segment } from "../ffi/shm.ts";
import { MAP_TYPES } from "../lib/maps/types.ts";
import { KernelMap } from "../testing/kernel_bpf.ts";
import { Rng } from "../testing/program_gen.ts";
import {
  kernel,
  mapDiffSegment,
  ours,
  randomOpsTests,
  retrying,
  u32v,
} from "./maps_kernel_diff_env.ts";

const SEGMENT = mapDiffSegment("hash");

randomOpsTests([
  { type: "hash", keySize: 4, valueSize: 8 },
  { type: "hash", keySize: 12, valueSize: 20 },
  { type: "percpu_hash", keySize: 8, valueSize: 4 },
], SEGMENT);

Deno.test("maps: LRU hash evicts the least recently used key instead of failing", () => {
  using seg = Segment.open(SEGMENT, { create: true, sizeMb: 4 });
  try {
    const m = seg.createMap({ type: "lru_hash", keySize: 4, valueSize: 4, maxEntries: 4 });
    const k = (n: number) => u32v(n);
    for (let i = 0; i < 4; i++) m.update(k(i), k(i * 10));
    assert.ok(m.lookup(k(0))); // 0 becomes the most recent; 1 is now the oldest
    m.update(k(9), k(90));
    assert.equal(m.lookup(k(1)), undefined, "1 was evicted");
    assert.deepEqual([...m.keys()].length, 4);
    for (const n of [0, 2, 3, 9]) assert.ok(m.lookup(k(n)), `${n} kept`);
    assert.throws(() => m.update(k(5), k(1), 2n), /ENOENT/);
  } finally {
    Segment.remove(SEGMENT);
  }
});

Deno.test({
  name: "maps kernel diff: LRU hash maps below capacity behave as hash maps do",
  ignore: !kernel.ok,
  fn: () => {
    using seg = Segment.open(SEGMENT, { create: true, sizeMb: 8 });
    try {
      for (const typeName of ["lru_hash", "lru_percpu_hash"] as const) {
        const type = MAP_TYPES[typeName];
        // Far from full, so neither side evicts (eviction order differs by design).
        const k = KernelMap.create(type, 4, 8, 512);
        const mine = seg.createMap({ type, keySize: 4, valueSize: 8, maxEntries: 512 });
        const u = ours(seg, mine.id);
        const bytes = mine.perCpu ? mine.info.valueStride * mine.info.ncpus : 8;
        const rng = new Rng(type);
        try {
          for (let i = 0; i < 2000; i++) {
            const kk = u32v(rng.int(24));
            const op = rng.int(3);
            const ko = new Uint8Array(bytes), uo = new Uint8Array(bytes);
            let kr: number, ur: number;
            if (op === 0) {
              const v = Uint8Array.from({ length: bytes }, () => rng.int(256));
              const flags = BigInt(rng.pick([0, 1, 2, 3]));
              kr = retrying(() => k.update(kk, v, flags));
              ur = u.update(kk, v, flags);
            } else if (op === 1) {
              kr = retrying(() => k.lookup(kk, ko));
              ur = u.lookup(kk, uo);
            } else {
              kr = retrying(() => k.delete(kk));
              ur = u.delete(kk);
            }
            assert.equal(ur, kr, `${typeName} op ${i} (${op})`);
            assert.deepEqual(uo, ko, `${typeName} op ${i} value`);
          }
        } finally {
          k.close();
        }
      }
    } finally {
      Segment.remove(SEGMENT);
    }
  },
});
