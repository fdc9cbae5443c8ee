/**
 * Maps differential test against the kernel, LPM trie: longest-prefix
 * lookups, updates and deletes.
 */
import assert from "node:assert/strict";
import { Segment } from "../ffi/shm.ts";
import { MAP_TYPES } from "../lib/maps/types.ts";
import { KernelMap } from "../testing/kernel_bpf.ts";
import { Rng } from "../testing/program_gen.ts";
import { kernel, mapDiffSegment, ours, retrying, u32v } from "./maps_kernel_diff_env.ts";

const SEGMENT = mapDiffSegment("lpm");

Deno.test({
  name: "maps kernel diff: LPM trie longest-prefix lookups, updates and deletes",
  ignore: !kernel.ok,
  fn: () => {
    using seg = Segment.open(SEGMENT, { create: true, sizeMb: 4 });
    try {
      const type = MAP_TYPES.lpm_trie;
      const k = KernelMap.create(type, 8, 4, 32, 1);
      const mine = seg.createMap({ type, keySize: 8, valueSize: 4, maxEntries: 32, flags: 1 });
      const u = ours(seg, mine.id);
      const rng = new Rng(11);
      const key = (plen: number, ip: number) => {
        const b = new Uint8Array(8);
        new DataView(b.buffer).setUint32(0, plen, true);
        new DataView(b.buffer).setUint32(4, ip, false);
        return b;
      };
      const randomKey = () =>
        key(
          rng.pick([0, 8, 16, 20, 24, 28, 32, 33]),
          rng.pick([0x0a000000, 0x0a010000, 0x0a0101ff, 0xc0a80000, rng.next()]),
        );
      try {
        for (let i = 0; i < 3000; i++) {
          const kk = randomKey();
          const op = rng.int(3);
          const ko = new Uint8Array(4), uo = new Uint8Array(4);
          let kr: number, ur: number;
          if (op === 0) {
            const v = u32v(i);
            const flags = BigInt(rng.pick([0, 0, 1, 2, 3]));
            kr = retrying(() => k.update(kk, v, flags));
            ur = u.update(kk, v, flags);
          } else if (op === 1) {
            kr = retrying(() => k.lookup(kk, ko));
            ur = u.lookup(kk, uo);
          } else {
            kr = retrying(() => k.delete(kk));
            ur = u.delete(kk);
          }
          assert.equal(ur, kr, `op ${i} (${op}) on ${kk.join(",")}`);
          assert.deepEqual(uo, ko, `op ${i} value`);
        }
      } finally {
        k.close();
      }
    } finally {
      Segment.remove(SEGMENT);
    }
  },
});
