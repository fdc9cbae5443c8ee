/**
 * Maps differential test against the kernel: the same random operation
 * sequence (all flags, a map that fills up, deletes, iteration with deletes)
 * on a kernel map through bpf(2) and on ours gives the same return values,
 * errno and contents.
 */
import assert from "node:assert/strict";
import {
  BPF_F_SLEEPABLE,
  BPF_PROG_TYPE_SYSCALL,
  kernelBpfAvailable,
  KernelMap,
  kernelProgLoad,
} from "../testing/kernel_bpf.ts";
import { assemble } from "../lib/isa/assembler.ts";
import { bpftime } from "../ffi/lib.ts";
import { Segment } from "../ffi/shm.ts";
import { MAP_TYPES } from "../lib/maps/types.ts";
import { Rng } from "../testing/program_gen.ts";

const kernel = kernelBpfAvailable();
if (!kernel.ok) console.log(`skip: map differential tests: ${kernel.reason}`);

const SEGMENT = `bpftime_test_mapdiff_${Deno.pid}`;
const CASES: { type: keyof typeof MAP_TYPES; keySize: number; valueSize: number }[] = [
  { type: "hash", keySize: 4, valueSize: 8 },
  { type: "hash", keySize: 12, valueSize: 20 },
  { type: "array", keySize: 4, valueSize: 12 },
  { type: "percpu_hash", keySize: 8, valueSize: 4 },
  { type: "percpu_array", keySize: 4, valueSize: 16 },
];
const MAX_ENTRIES = 16;
const EAGAIN = -11;

/** A kernel map call, retried when bpf(2) answers EAGAIN (it may, transiently, under load). */
function retrying(call: () => number): number {
  let rc = call();
  for (let i = 0; rc === EAGAIN && i < 5; i++) rc = call();
  return rc;
}
const OPS = 3000;

/** Our map's raw C calls, returning rc like the kernel's. */
function ours(seg: Segment, id: number) {
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

for (const c of CASES) {
  Deno.test({
    name:
      `maps kernel diff: ${c.type} (key ${c.keySize}, value ${c.valueSize}), ${OPS} random operations`,
    ignore: !kernel.ok,
    fn: () => {
      using seg = Segment.open(SEGMENT, { create: true, sizeMb: 4 });
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
            b.fill(0, cpu * mine.info.valueStride + c.valueSize, (cpu + 1) * mine.info.valueStride);
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
        Segment.remove(SEGMENT);
      }
    },
  });
}

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

function u32v(n: number) {
  return new Uint8Array(new Uint32Array([n]).buffer);
}

Deno.test({
  name:
    "maps kernel diff: maps of maps accept matching inner maps only, lookups give the inner map",
  ignore: !kernel.ok,
  fn: () => {
    using seg = Segment.open(SEGMENT, { create: true, sizeMb: 4 });
    const kernelMaps: KernelMap[] = [];
    try {
      for (const outerType of ["array_of_maps", "hash_of_maps"] as const) {
        // Kernel values are inner map fds, ours inner map ids: the same maps on each side.
        const kInner = (valueSize: number) => {
          const m = KernelMap.create(MAP_TYPES.array, 4, valueSize, 4);
          kernelMaps.push(m);
          return m.fd;
        };
        const uInner = (valueSize: number) =>
          seg.createMap({ type: "array", keySize: 4, valueSize, maxEntries: 4 }).id;
        const template = [kInner(8), uInner(8)];
        const k = KernelMap.create(MAP_TYPES[outerType], 4, 4, 8, 0, "", 0n, template[0]);
        kernelMaps.push(k);
        const mine = seg.createMap({
          type: outerType,
          keySize: 4,
          valueSize: 4,
          maxEntries: 8,
          innerMapId: template[1],
        });
        const u = ours(seg, mine.id);
        const good = [kInner(8), uInner(8)], bad = [kInner(16), uInner(16)];
        const cases: [string, number, number, bigint][] = [
          ["matching inner map", good[0], good[1], 0n],
          ["value size differs", bad[0], bad[1], 0n],
          ["not a map", 9999, 9999, 0n],
          ["BPF_NOEXIST on a present key", good[0], good[1], 1n],
          ["bad flags", good[0], good[1], 7n],
        ];
        for (const [what, kv, uv, flags] of cases) {
          const key = u32v(outerType === "array_of_maps" ? 2 : 5);
          assert.equal(
            u.update(key, u32v(uv), flags),
            k.update(key, u32v(kv), flags),
            `${outerType}: ${what}`,
          );
        }
        // Past the end of an array of maps, and a missing key of a hash of maps.
        assert.equal(u.update(u32v(50), u32v(good[1]), 0n), k.update(u32v(50), u32v(good[0]), 0n));
        assert.equal(u.lookup(u32v(3), new Uint8Array(4)), k.lookup(u32v(3), new Uint8Array(4)));
        assert.equal(u.delete(u32v(2)), k.delete(u32v(2)));
      }
    } finally {
      for (const m of kernelMaps) m.close();
      Segment.remove(SEGMENT);
    }
  },
});

Deno.test({
  name: "maps kernel diff: program arrays refuse what is not a program, like the kernel",
  ignore: !kernel.ok,
  fn: () => {
    using seg = Segment.open(SEGMENT, { create: true, sizeMb: 4 });
    const kprog = kernelProgLoad(BPF_PROG_TYPE_SYSCALL, assemble("mov %r0, 0\nexit"), {
      flags: BPF_F_SLEEPABLE,
    });
    const kmap = KernelMap.create(MAP_TYPES.array, 4, 4, 1);
    const k = KernelMap.create(MAP_TYPES.prog_array, 4, 4, 4);
    try {
      const mine = seg.createMap({ type: "prog_array", keySize: 4, valueSize: 4, maxEntries: 4 });
      const uprog = seg.createProgram("p", assemble("mov %r0, 0\nexit"));
      const umap = seg.createMap({ type: "array", keySize: 4, valueSize: 4, maxEntries: 1 }).id;
      const u = ours(seg, mine.id);
      const cases: [string, number, number, number, bigint][] = [
        ["a program", 1, kprog.fd, uprog, 0n],
        ["a map", 1, kmap.fd, umap, 0n],
        ["nothing", 1, 9999, 9999, 0n],
        ["BPF_NOEXIST", 1, kprog.fd, uprog, 1n],
        ["past the end", 7, kprog.fd, uprog, 0n],
      ];
      for (const [what, index, kv, uv, flags] of cases) {
        assert.equal(
          u.update(u32v(index), u32v(uv), flags),
          k.update(u32v(index), u32v(kv), flags),
          what,
        );
      }
      assert.equal(u.lookup(u32v(1), new Uint8Array(4)), k.lookup(u32v(1), new Uint8Array(4)));
      assert.equal(u.lookup(u32v(2), new Uint8Array(4)), k.lookup(u32v(2), new Uint8Array(4)));
      assert.equal(u.delete(u32v(2)), k.delete(u32v(2)));
      assert.equal(u.delete(u32v(1)), k.delete(u32v(1)));
    } finally {
      k.close();
      kmap.close();
      kprog.close();
      Segment.remove(SEGMENT);
    }
  },
});

Deno.test({
  name: "maps kernel diff: ring buffer records, discards and a full ring match the kernel's",
  ignore: !kernel.ok,
  fn: async () => {
    const { kernelRingRecords, kernelTestRun } = await import("../testing/kernel_bpf.ts");
    const { RingBuffer } = await import("../ffi/ringbuf.ts");
    const { Vm } = await import("../ffi/vm.ts");
    const SIZE = 4096;
    // 300 reservations of 8, 24 or 40 bytes; every 5th discarded; r0 = reservations that fit.
    const program = (ring: string) =>
      assemble(`
        mov %r6, 0
        mov %r7, 0
      loop:
        mov %r8, %r6
        mod %r8, 3
        ${ring}
        mov %r3, 0
        jeq %r8, 0, size8
        jeq %r8, 1, size24
        mov %r2, 40
        ja reserve
      size8:
        mov %r2, 8
        ja reserve
      size24:
        mov %r2, 24
      reserve:
        call 131
        jeq %r0, 0, next
        add %r7, 1
        stxb [%r0], %r6
        mov %r1, %r0
        mov %r2, 0
        mov %r9, %r6
        mod %r9, 5
        jeq %r9, 0, discard
        call 132
        ja next
      discard:
        call 133
      next:
        add %r6, 1
        jlt %r6, 300, loop
        mov %r0, %r7
        exit`);
    using seg = Segment.open(SEGMENT, { create: true, sizeMb: 4 });
    const k = KernelMap.create(MAP_TYPES.ringbuf, 0, 0, SIZE);
    try {
      const prog = kernelProgLoad(BPF_PROG_TYPE_SYSCALL, program(`lddw %r1, map_fd ${k.fd}`), {
        flags: BPF_F_SLEEPABLE,
      });
      const kernelFit = kernelTestRun(prog, new Uint8Array(8));
      prog.close();
      const mine = seg.createMap({ type: "ringbuf", keySize: 0, valueSize: 0, maxEntries: SIZE });
      using vm = new Vm();
      vm.useRuntime(seg);
      vm.load(program(`lddw %r1, map_fd ${mine.id}`));
      assert.equal(Number(vm.exec()), kernelFit, "the same reservations fit");
      const ours: Uint8Array[] = [];
      new RingBuffer(seg, mine.id).consume((r) => ours.push(r.slice()));
      const theirs = kernelRingRecords(k, SIZE);
      assert.ok(theirs.length > 10 && theirs.length < 300, `${theirs.length} records`);
      assert.deepEqual(ours, theirs);
    } finally {
      k.close();
      Segment.remove(SEGMENT);
    }
  },
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

Deno.test({
  name: "maps kernel diff: stack trace maps answer bpf(2) like the kernel's",
  ignore: !kernel.ok,
  fn: () => {
    using seg = Segment.open(SEGMENT, { create: true, sizeMb: 4 });
    const k = KernelMap.create(MAP_TYPES.stack_trace, 4, 8 * 16, 32);
    try {
      const mine = seg.createMap({
        type: "stack_trace",
        keySize: 4,
        valueSize: 8 * 16,
        maxEntries: 32,
      });
      const u = ours(seg, mine.id);
      const out = () => new Uint8Array(8 * 16);
      assert.equal(u.lookup(u32v(3), out()), retrying(() => k.lookup(u32v(3), out())));
      assert.equal(u.delete(u32v(3)), retrying(() => k.delete(u32v(3))));
      assert.equal(
        u.nextKey(null, new Uint8Array(4)),
        retrying(() => k.nextKey(null, new Uint8Array(4))),
      );
      assert.equal(u.update(u32v(1), out(), 0n), retrying(() => k.update(u32v(1), out(), 0n)));
    } finally {
      k.close();
      Segment.remove(SEGMENT);
    }
  },
});

Deno.test({
  name: "maps kernel diff: perf event array samples, padding and a full ring match the kernel's",
  ignore: !kernel.ok,
  fn: async () => {
    const { KernelPerfOutput, kernelTestRunData } = await import("../testing/kernel_bpf.ts");
    const { PerfBuffer } = await import("../ffi/perf_buffer.ts");
    const { Vm } = await import("../ffi/vm.ts");
    const cpus = (await import("node:os")).cpus().length;
    // 4,000 samples of 8 bytes (i) to the current CPU's ring: more than 64 KiB of records.
    const program = (map: string) =>
      assemble(`
        mov %r6, %r1
        mov %r7, 0
      loop:
        stxdw [%r10-8], %r7
        mov %r1, %r6
        ${map}
        lddw %r3, 0xffffffff
        mov %r4, %r10
        add %r4, -8
        mov %r5, 8
        call 25
        add %r7, 1
        jlt %r7, 4000, loop
        mov %r0, 0
        exit`);
    using seg = Segment.open(SEGMENT, { create: true, sizeMb: 8 });
    const rings = Array.from({ length: cpus }, (_, cpu) => KernelPerfOutput.open(cpu));
    const k = KernelMap.create(MAP_TYPES.perf_event_array, 4, 4, cpus);
    try {
      rings.forEach((r, cpu) => assert.equal(k.update(u32v(cpu), u32v(r.fd), 0n), 0));
      const prog = kernelProgLoad(3, /* SCHED_CLS */ program(`lddw %r2, map_fd ${k.fd}`));
      kernelTestRunData(prog, new Uint8Array(64));
      prog.close();
      const theirs = rings.flatMap((r) => r.samples());
      const mine = seg.createMap({
        type: "perf_event_array",
        keySize: 4,
        valueSize: 4,
        maxEntries: cpus,
      });
      const ours: Uint8Array[] = [];
      const perf = new PerfBuffer(seg, mine.id, { onSample: (_c, d) => ours.push(d.slice()) });
      using vm = new Vm();
      vm.useRuntime(seg);
      vm.load(program(`lddw %r2, map_fd ${mine.id}`));
      assert.equal(vm.exec(new Uint8Array(64)), 0n);
      perf.consume();
      assert.equal(ours.length, theirs.length, "the same number of samples fit");
      assert.ok(theirs.length > 1000 && theirs.length < 4000, `${theirs.length} samples`);
      assert.deepEqual(ours, theirs, "same raw data, padding included");
    } finally {
      k.close();
      for (const r of rings) r.close();
      Segment.remove(SEGMENT);
    }
  },
});
