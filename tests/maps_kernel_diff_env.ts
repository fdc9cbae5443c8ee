/**
 * The harness of the maps differential tests against the kernel (the
 * maps_kernel_diff_*_test.ts files, one per map family): the same operation
 * sequence on a kernel map through bpf(2) and on ours must give the same
 * return values, errno and contents.
 */
import assert from "node:assert/strict";
import { bpftime } from "../ffi/lib.ts";
import { Segment } from "../ffi/shm.ts";
import { MAP_TYPES } from "../lib/maps/types.ts";
import { kernelBpfAvailable, KernelMap } from "../testing/kernel_bpf.ts";
import { Rng } from "../testing/program_gen.ts";

export const kernel = kernelBpfAvailable();
if (!kernel.ok) console.log(`skip: map differential tests: ${kernel.reason}`);

/** The segment of one family's tests (each file its own, so that files may run side by side). */
export function mapDiffSegment(family: string): string {
  return `bpftime_test_mapdiff_${family}_${Deno.pid}`;
}

export const MAX_ENTRIES = 16;
const EAGAIN = -11;

/** A kernel map call, retried when bpf(2) answers EAGAIN (it may, transiently, under load). */
export function retrying(call: () => number): number {
  let rc = call();
  for (let i = 0; rc === EAGAIN && i < 5; i++) rc = call();
  return rc;
}
export const OPS = 3000;

/** Our map's raw C calls, returning rc like the kernel's. */
export function ours(seg: Segment, id: number) {
  const b = bpftime();
  return {
    lookup: (k: Uint8Array<ArrayBuffer>, out: Uint8Array<ArrayBuffer>) =>
      b.bpftime_map_lookup(seg.pointer, id, k, out),
    update: (k: Uint8Array<ArrayBuffer>, v: Uint8Array<ArrayBuffer>, f: bigint) =>
      b.bpftime_map_update(seg.pointer, id, k, v, f),
    delete: (k: Uint8Array<ArrayBuffer>) => b.bpftime_map_delete(seg.pointer, id, k),
    nextKey: (k: Uint8Array<ArrayBuffer> | null, out: Uint8Array<ArrayBuffer>) =>
      b.bpftime_map_get_next_key(seg.pointer, id, k, out),
  };
}

export function u32v(n: number) {
  return new Uint8Array(new Uint32Array([n]).buffer);
}

/** A map type with key and value sizes, for randomOpsTests. */
export interface RandomOpsCase {
  type: keyof typeof MAP_TYPES;
  keySize: number;
  valueSize: number;
}

/**
 * One test per case: OPS random operations (all flags, a map that fills up,
 * deletes, iteration with deletes) on a kernel map and on ours.
 */
export function randomOpsTests(cases: readonly RandomOpsCase[], segment: string): void {
  for (const c of cases) {
    Deno.test({
      name:
        `maps kernel diff: ${c.type} (key ${c.keySize}, value ${c.valueSize}), ${OPS} random operations`,
      ignore: !kernel.ok,
      fn: () => {
        using seg = Segment.open(segment, { create: true, sizeMb: 4 });
        const type = MAP_TYPES[c.type];
        const k = KernelMap.create(type, c.keySize, c.valueSize, MAX_ENTRIES);
        const mine = seg.createMap({
          type,
          keySize: c.keySize,
          valueSize: c.valueSize,
          maxEntries: MAX_ENTRIES,
        });
        const u = ours(seg, mine.id);
        const perCpu = mine.perCpu;
        const valueBytes = perCpu ? mine.info.valueStride * mine.info.ncpus : c.valueSize;
        const rng = new Rng(type * 7919 + c.keySize);
        const key = (n: number) => {
          const b = new Uint8Array(c.keySize);
          new DataView(b.buffer).setUint32(0, n, true);
          if (c.keySize > 4) b[c.keySize - 1] = n & 0xff;
          return b;
        };
        const value = () => {
          const b = new Uint8Array(valueBytes);
          for (let i = 0; i < b.length; i++) b[i] = rng.int(256);
          // Per-CPU padding is not part of the value: keep it zero on both sides.
          if (perCpu) {
            for (let cpu = 0; cpu < mine.info.ncpus; cpu++) {
              b.fill(
                0,
                cpu * mine.info.valueStride + c.valueSize,
                (cpu + 1) * mine.info.valueStride,
              );
            }
          }
          return b;
        };
        const isArray = c.type.endsWith("array");
        const keySpace = isArray ? MAX_ENTRIES + 4 : MAX_ENTRIES + 8; // reaches full maps and bad indexes
        try {
          for (let i = 0; i < OPS; i++) {
            const kk = key(rng.int(keySpace));
            const op = rng.int(10);
            let kr: number, ur: number, what: string;
            if (op < 4) {
              const flags = BigInt(rng.pick([0, 0, 1, 2, 3, 4]));
              const v = value();
              kr = retrying(() => k.update(kk, v, flags));
              ur = u.update(kk, v, flags);
              what = `update flags ${flags}`;
            } else if (op < 6) {
              const ko = new Uint8Array(valueBytes), uo = new Uint8Array(valueBytes);
              kr = retrying(() => k.lookup(kk, ko));
              ur = u.lookup(kk, uo);
              what = "lookup";
              if (kr === 0) assert.deepEqual(uo, ko, `op ${i}: lookup value`);
            } else if (op < 8) {
              kr = retrying(() => k.delete(kk));
              ur = u.delete(kk);
              what = "delete";
            } else {
              const ko = new Uint8Array(c.keySize), uo = new Uint8Array(c.keySize);
              const from = rng.chance(0.2) ? null : kk;
              kr = retrying(() => k.nextKey(from, ko));
              ur = u.nextKey(from, uo);
              what = `get_next_key(${from ? "key" : "NULL"})`;
              // Arrays iterate in index order. Hash order depends on each side's hash, so
              // only NULL and a missing key (both restart at the first key) compare.
              if (isArray && kr === 0) assert.deepEqual(uo, ko, `op ${i}: next key`);
              if (!isArray && from && k.lookup(from, new Uint8Array(valueBytes)) === 0) continue;
            }
            assert.equal(ur, kr, `op ${i}: ${what} returned ${ur}, kernel ${kr}`);
          }
          // Same contents, and a full iteration visits the same keys once each.
          const keysOf = (
            next: (k: Uint8Array<ArrayBuffer> | null, o: Uint8Array<ArrayBuffer>) => number,
          ) => {
            const seen: string[] = [];
            let cur: Uint8Array<ArrayBuffer> | null = null;
            for (let n = 0; n < 4 * MAX_ENTRIES; n++) {
              const out = new Uint8Array(c.keySize);
              if (next(cur, out) !== 0) break;
              seen.push(out.join(","));
              cur = out;
            }
            return seen;
          };
          const kk = keysOf((a, o) => k.nextKey(a, o)), uk = keysOf((a, o) => u.nextKey(a, o));
          assert.deepEqual([...uk].sort(), [...kk].sort());
          assert.equal(new Set(uk).size, uk.length, "iteration visits each key once");
          for (let n = 0; n < keySpace; n++) {
            const ko = new Uint8Array(valueBytes), uo = new Uint8Array(valueBytes);
            assert.equal(u.lookup(key(n), uo), k.lookup(key(n), ko));
            assert.deepEqual(uo, ko);
          }
          // Deleting while iterating empties both maps the same way.
          if (!isArray) {
            for (const [name, m] of [["kernel", k], ["ours", u]] as const) {
              const out = new Uint8Array(c.keySize);
              let guard = 0;
              while (m.nextKey(null, out) === 0 && guard++ < 100) {
                assert.equal(m.delete(new Uint8Array(out)), 0, name);
              }
              assert.equal(m.nextKey(null, out), -2, `${name} is empty`);
            }
          }
        } finally {
          k.close();
          Segment.remove(segment);
        }
      },
    });
  }
}
