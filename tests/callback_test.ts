/** bpf_loop: helpers that call back into a subprogram of the running program, on every engine. */
import assert from "node:assert/strict";
import { assemble } from "../lib/isa/assembler.ts";
import { disassemble } from "../lib/isa/disassembler.ts";
import { type Engine, Vm, VmError } from "../ffi/vm.ts";

const LOOP = `
    stdw [%r10-8], 0
    mov %r1, 10
    lddw %r2, callback add_i
    mov %r3, %r10
    add %r3, -8
    mov %r4, 0
    call 181
    ldxdw %r1, [%r10-8]
    lsh %r0, 32
    or %r0, %r1
    exit
  add_i:
    ldxdw %r3, [%r2]
    add %r3, %r1
    stxdw [%r2], %r3
    mov %r0, 0
    jne %r1, 6, +1
    mov %r0, 1
    exit`;

Deno.test("asm: callback references assemble and disassemble", () => {
  const code = assemble(LOOP);
  assert.deepEqual(assemble(disassemble(code)), code);
  assert.match(disassemble(code), /lddw %r2, callback \+\d+/);
});

for (const engine of ["interp", "jit", "llvm"] as Engine[]) {
  Deno.test(`callbacks/${engine}: bpf_loop runs the callback until it returns 1`, () => {
    using vm = new Vm({ engine });
    vm.useRuntime();
    vm.load(assemble(LOOP));
    const r0 = vm.exec();
    assert.equal(r0 >> 32n, 7n, "iterations (0..6, stopped at 6)");
    assert.equal(r0 & 0xffffffffn, 21n, "the callback updated the caller's stack");
  });

  Deno.test(`callbacks/${engine}: a callback cannot reach past its caller's stack`, () => {
    using vm = new Vm({ engine });
    vm.useRuntime();
    // The callback writes 4 KiB below the context pointer it was given.
    vm.load(assemble(LOOP.replace("ldxdw %r3, [%r2]", "ldxdw %r3, [%r2-4000]")));
    assert.equal(
      vm.exec() >> 32n,
      BigInt.asUintN(32, -22n),
      "bpf_loop reports the failed callback",
    );
  });
}

Deno.test("callbacks: a callback target must be a valid subprogram", () => {
  using vm = new Vm();
  vm.useRuntime();
  assert.throws(
    () => vm.load(assemble("lddw %r2, callback +5\nexit")),
    (e: unknown) => e instanceof VmError && /call out of range/.test(e.message),
  );
});

for (const engine of ["interp", "jit", "llvm"] as Engine[]) {
  Deno.test(`callbacks/${engine}: bpf_for_each_map_elem visits every element until told to stop`, async () => {
    const { Segment } = await import("../ffi/shm.ts");
    const name = `bpftime_test_foreach_${Deno.pid}`;
    using seg = Segment.open(name, { create: true, sizeMb: 2 });
    try {
      const m = seg.createMap({
        type: "hash",
        name: "h",
        keySize: 4,
        valueSize: 8,
        maxEntries: 16,
      });
      for (let k = 1; k <= 5; k++) {
        m.update(
          new Uint8Array([k, 0, 0, 0]),
          new Uint8Array(new BigUint64Array([BigInt(k * 10)]).buffer),
        );
      }
      using vm = new Vm({ engine });
      vm.useRuntime(seg);
      // sum of key * value over all elements, into the caller's stack
      vm.load(assemble(`
          stdw [%r10-8], 0
          lddw %r1, map_fd ${m.id}
          lddw %r2, callback visit
          mov %r3, %r10
          add %r3, -8
          mov %r4, 0
          call 164
          ldxdw %r1, [%r10-8]
          lsh %r0, 32
          or %r0, %r1
          exit
        visit:
          ldxw %r6, [%r2]
          ldxdw %r7, [%r3]
          mul %r6, %r7
          ldxdw %r8, [%r4]
          add %r8, %r6
          stxdw [%r4], %r8
          mov %r0, 0
          exit`));
      const r0 = vm.exec();
      assert.equal(r0 >> 32n, 5n);
      assert.equal(r0 & 0xffffffffn, 10n + 40n + 90n + 160n + 250n);
    } finally {
      Segment.remove(name);
    }
  });
}
