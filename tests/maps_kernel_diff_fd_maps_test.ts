/**
 * Maps differential test against the kernel, maps whose values name other
 * objects (kernel: fds, ours: ids): maps of maps and program arrays.
 */
import assert from "node:assert/strict";
import { Segment } from "../ffi/shm.ts";
import { assemble } from "../lib/isa/assembler.ts";
import { MAP_TYPES } from "../lib/maps/types.ts";
import {
  BPF_F_SLEEPABLE,
  BPF_PROG_TYPE_SYSCALL,
  KernelMap,
  kernelProgLoad,
} from "../testing/kernel_bpf.ts";
import { kernel, mapDiffSegment, ours, u32v } from "./maps_kernel_diff_env.ts";

const SEGMENT = mapDiffSegment("fd_maps");

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
