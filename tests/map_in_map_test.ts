/** Maps of maps: inner maps must match the template; programs reach inner maps through lookups. */
import assert from "node:assert/strict";
import { freshSegment } from "./test_utils.ts";
import { MapError } from "../ffi/errors.ts";
import { Segment } from "../ffi/shm.ts";
import { type Engine, Vm } from "../ffi/vm.ts";
import { assemble } from "../lib/isa/assembler.ts";

const NAME = `bpftime_test_mim_${Deno.pid}`;
const u32 = (n: number) => new Uint8Array(new Uint32Array([n]).buffer);
const u64 = (n: number) => new Uint8Array(new BigUint64Array([BigInt(n)]).buffer);

for (const outerType of ["array_of_maps", "hash_of_maps"] as const) {
  for (const engine of ["interp", "jit", "llvm"] as Engine[]) {
    Deno.test(`maps of maps/${outerType}/${engine}: lookup of the outer map gives the inner map`, () => {
      const seg = freshSegment(NAME);
      try {
        const template = seg.createMap({
          type: "array",
          name: "tmpl",
          keySize: 4,
          valueSize: 8,
          maxEntries: 4,
        });
        const inner = seg.createMap({
          type: "array",
          name: "inner",
          keySize: 4,
          valueSize: 8,
          maxEntries: 4,
        });
        inner.update(u32(2), u64(4242));
        const outer = seg.createMap({
          type: outerType,
          name: "outer",
          keySize: 4,
          valueSize: 4,
          maxEntries: 8,
          innerMapId: template.id,
        });
        outer.update(u32(5), u32(inner.id));
        assert.deepEqual(outer.lookup(u32(5)), u32(inner.id));
        const wrong = seg.createMap({
          type: "array",
          name: "wrong",
          keySize: 4,
          valueSize: 4,
          maxEntries: 4,
        });
        assert.throws(() => outer.update(u32(6), u32(wrong.id)), /does not match the template/);
        assert.throws(
          () => outer.update(u32(6), u32(999)),
          (e: unknown) => e instanceof MapError && e.errno === 9,
        );
        using vm = new Vm({ engine });
        vm.useRuntime(seg);
        vm.load(assemble(`
            stw [%r10-4], 5
            lddw %r1, map_fd ${outer.id}
            mov %r2, %r10
            add %r2, -4
            call 1
            jeq %r0, 0, none
            mov %r1, %r0
            stw [%r10-8], 2
            mov %r2, %r10
            add %r2, -8
            call 1
            jeq %r0, 0, none
            ldxdw %r0, [%r0]
            exit
          none:
            mov %r0, -1
            exit`));
        assert.equal(vm.exec(), 4242n);
      } finally {
        seg.close();
        Segment.remove(NAME);
      }
    });
  }
}

Deno.test("maps of maps: an outer map needs a usable template", () => {
  using seg = freshSegment(NAME);
  try {
    assert.throws(
      () =>
        seg.createMap({
          type: "array_of_maps",
          name: "o",
          keySize: 4,
          valueSize: 4,
          maxEntries: 2,
        }),
      /needs 4-byte values and an inner map template/,
    );
  } finally {
    Segment.remove(NAME);
  }
});
