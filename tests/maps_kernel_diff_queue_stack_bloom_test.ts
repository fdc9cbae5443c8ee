/**
 * Maps differential test against the kernel, keyless maps: queue and stack
 * (push/pop/peek with flags, full and empty) and bloom filter.
 */
import assert from "node:assert/strict";
import { bpftime } from "../ffi/lib.ts";
import { Segment } from "../ffi/shm.ts";
import { MAP_TYPES } from "../lib/maps/types.ts";
import { KernelMap } from "../testing/kernel_bpf.ts";
import { Rng } from "../testing/program_gen.ts";
import { kernel, mapDiffSegment, retrying } from "./maps_kernel_diff_env.ts";

const SEGMENT = mapDiffSegment("queue_stack_bloom");

Deno.test({
  name: "maps kernel diff: queue and stack, push/pop/peek with flags, full and empty",
  ignore: !kernel.ok,
  fn: () => {
    using seg = Segment.open(SEGMENT, { create: true, sizeMb: 4 });
    try {
      for (const typeName of ["queue", "stack"] as const) {
        const type = MAP_TYPES[typeName];
        const k = KernelMap.create(type, 0, 12, 5);
        const mine = seg.createMap({ type, keySize: 0, valueSize: 12, maxEntries: 5 });
        const b = bpftime();
        const rng = new Rng(type);
        try {
          for (let i = 0; i < 2000; i++) {
            const op = rng.int(4);
            const ko = new Uint8Array(12), uo = new Uint8Array(12);
            let kr: number, ur: number;
            if (op < 2) {
              const v = Uint8Array.from({ length: 12 }, () => rng.int(256));
              const flags = BigInt(rng.pick([0, 0, 2, 1, 3]));
              kr = retrying(() => k.update(null, v, flags));
              ur = b.bpftime_map_update(seg.pointer, mine.id, null, v, flags);
            } else if (op === 2) {
              kr = retrying(() => k.lookup(null, ko));
              ur = b.bpftime_map_lookup(seg.pointer, mine.id, null, uo);
            } else {
              kr = retrying(() => k.lookupAndDelete(null, ko));
              ur = b.bpftime_map_lookup_and_delete(seg.pointer, mine.id, null, uo);
            }
            assert.equal(ur, kr, `${typeName} op ${i} (${op})`);
            assert.deepEqual(uo, ko, `${typeName} op ${i} value`);
          }
          const kd = new Uint8Array(4), ud = new Uint8Array(4);
          assert.equal(b.bpftime_map_delete(seg.pointer, mine.id, ud), k.delete(kd));
          assert.equal(
            b.bpftime_map_get_next_key(seg.pointer, mine.id, null, ud),
            k.nextKey(null, kd),
          );
        } finally {
          k.close();
        }
      }
    } finally {
      Segment.remove(SEGMENT);
    }
  },
});

Deno.test({
  name: "maps kernel diff: bloom filter finds every pushed value; bad flags and ops refused alike",
  ignore: !kernel.ok,
  fn: () => {
    using seg = Segment.open(SEGMENT, { create: true, sizeMb: 4 });
    try {
      const type = MAP_TYPES.bloom_filter;
      const k = KernelMap.create(type, 0, 8, 100, 0, "", 3n);
      const mine = seg.createMap({ type, keySize: 0, valueSize: 8, maxEntries: 100, mapExtra: 3 });
      const b = bpftime();
      const rng = new Rng(31);
      try {
        const pushed: Uint8Array<ArrayBuffer>[] = [];
        for (let i = 0; i < 100; i++) {
          const v = Uint8Array.from({ length: 8 }, () => rng.int(256));
          pushed.push(v);
          assert.equal(
            b.bpftime_map_update(seg.pointer, mine.id, null, v, 0n),
            k.update(null, v, 0n),
          );
        }
        for (const v of pushed) {
          assert.equal(b.bpftime_map_lookup(seg.pointer, mine.id, null, new Uint8Array(v)), 0);
          assert.equal(k.lookup(null, new Uint8Array(v)), 0);
        }
        let absent = 0;
        for (let i = 0; i < 1000; i++) {
          const v = Uint8Array.from({ length: 8 }, () => rng.int(256));
          if (b.bpftime_map_lookup(seg.pointer, mine.id, null, v) === -2) absent++;
        }
        assert.ok(absent > 900, `false positive rate too high: ${1000 - absent}/1000`);
        const v = pushed[0];
        for (const flags of [1n, 2n]) {
          assert.equal(
            b.bpftime_map_update(seg.pointer, mine.id, null, v, flags),
            k.update(null, v, flags),
          );
        }
        const o1 = new Uint8Array(8), o2 = new Uint8Array(8);
        assert.equal(
          b.bpftime_map_lookup_and_delete(seg.pointer, mine.id, null, o1),
          k.lookupAndDelete(null, o2),
        );
        assert.equal(b.bpftime_map_delete(seg.pointer, mine.id, o1), k.delete(o2));
      } finally {
        k.close();
      }
    } finally {
      Segment.remove(SEGMENT);
    }
  },
});
