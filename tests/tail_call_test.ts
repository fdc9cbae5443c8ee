/** Program arrays and bpf_tail_call on every engine. */
import assert from "node:assert/strict";
import { freshSegment } from "./test_utils.ts";
import { MapError } from "../ffi/errors.ts";
import { Segment } from "../ffi/shm.ts";
import { type Engine, Vm } from "../ffi/vm.ts";
import { assemble } from "../lib/isa/assembler.ts";

const NAME = `bpftime_test_tail_${Deno.pid}`;
const u32 = (n: number) => new Uint8Array(new Uint32Array([n]).buffer);

function setup() {
  const seg = freshSegment(NAME);
  const progs = seg.createMap({
    type: "prog_array",
    name: "progs",
    keySize: 4,
    valueSize: 4,
    maxEntries: 4,
  });
  const count = seg.createMap({
    type: "array",
    name: "count",
    keySize: 4,
    valueSize: 8,
    maxEntries: 1,
  });
  // slot 0: r0 = ctx[0] + 100
  progs.update(
    u32(0),
    u32(seg.createProgram("plus100", assemble("ldxb %r0, [%r1]\nadd %r0, 100\nexit"))),
  );
  // slot 1: count[0] += 1, then tail-call slot 1 again; r0 = 1 once the chain stops
  const again = seg.createProgram(
    "again",
    assemble(`
      lddw %r2, map_value ${count.id}+0
      mov %r3, 1
      lock add [%r2], %r3
      lddw %r2, map_fd ${progs.id}
      mov %r3, 1
      call 12
      mov %r0, 1
      exit`),
  );
  progs.update(u32(1), u32(again));
  return { seg, progs, count };
}

// Tail-call slot ctx[1]; when that fails, r0 = 7.
const CALLER = (progs: number) => `
  ldxb %r3, [%r1+1]
  lddw %r2, map_fd ${progs}
  call 12
  mov %r0, 7
  exit`;

for (const engine of ["interp", "jit", "llvm"] as Engine[]) {
  Deno.test(`tail calls/${engine}: the callee's r0 ends the caller; empty slots fall through`, () => {
    const { seg, progs } = setup();
    try {
      using vm = new Vm({ engine });
      vm.useRuntime(seg);
      vm.load(assemble(CALLER(progs.id)));
      assert.equal(vm.exec(new Uint8Array([5, 0])), 105n);
      assert.equal(vm.exec(new Uint8Array([5, 3])), 7n, "empty slot");
      assert.equal(vm.exec(new Uint8Array([5, 9])), 7n, "index past the end");
    } finally {
      seg.close();
      Segment.remove(NAME);
    }
  });

  Deno.test(`tail calls/${engine}: a chain stops after 33 tail calls, like the kernel`, () => {
    const { seg, progs, count } = setup();
    try {
      using vm = new Vm({ engine });
      vm.useRuntime(seg);
      vm.load(assemble(CALLER(progs.id)));
      assert.equal(vm.exec(new Uint8Array([0, 1])), 1n);
      assert.deepEqual(count.lookup(u32(0)), new Uint8Array(new BigUint64Array([33n]).buffer));
    } finally {
      seg.close();
      Segment.remove(NAME);
    }
  });
}

Deno.test("tail calls: program array updates must name a stored program", () => {
  const { seg, progs, count } = setup();
  try {
    assert.throws(
      () => progs.update(u32(2), u32(999)),
      (e: unknown) => e instanceof MapError && e.errno === 9,
    );
    assert.throws(
      () => progs.update(u32(2), u32(count.id)),
      (e: unknown) => e instanceof MapError && e.code === "EINVAL",
    );
    assert.equal(progs.delete(u32(3)), false);
    assert.equal(progs.delete(u32(0)), true);
  } finally {
    seg.close();
    Segment.remove(NAME);
  }
});
