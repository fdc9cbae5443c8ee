/**
 * The JIT counts the instruction budget in a register in programs that call no helper
 * (csrc/vm/jit_x86_64.c budget_in_r9): for every budget from 1 up to what a run needs, each
 * engine stops at the same pc or returns the same r0, in programs with loops, bpf-to-bpf calls,
 * divisions (whose code borrows that register), checked context loads and a fault after part of
 * the budget is spent, and map lookups compiled inline (array and hash, which leave the register
 * alone); and every run starts again with the whole budget.
 */
import assert from "node:assert/strict";
import { type Engine, Vm, VmError } from "../ffi/vm.ts";
import { assemble } from "../lib/isa/assembler.ts";
import { freshSegment } from "./test_utils.ts";

const OTHERS: Engine[] = ["jit", "llvm"];

/* Loops, calls, div and mod (by a constant and by a register), context loads. */
const PROGRAM = `
    mov %r6, 0
    mov %r7, 1
    mov %r8, %r1
  outer:
    mov %r1, %r7
    call local tri
    add %r6, %r0
    mov %r2, %r6
    div %r2, 3
    mov %r3, %r7
    add %r3, 1
    mod %r2, %r3
    add %r6, %r2
    mov %r4, %r8
    add %r4, %r7
    ldxb %r5, [%r4]
    add %r6, %r5
    add %r7, 1
    jlt %r7, 12, outer
    mov %r0, %r6
    exit
  tri:
    mov %r0, 0
    mov %r2, %r1
  inner:
    add %r0, %r2
    sub %r2, 1
    jne %r2, 0, inner
    exit`;

function outcomes(
  engine: Engine,
  mem: Uint8Array<ArrayBuffer> | undefined,
  budgets: number[],
  program = PROGRAM,
  setup?: (vm: Vm) => void,
): string[] {
  using vm = new Vm({ engine, instructionBudget: 1_000_000 });
  setup?.(vm);
  vm.load(assemble(program));
  return budgets.map((budget) => {
    vm.setInstructionBudget(budget);
    try {
      return `r0 ${vm.exec(mem)}`;
    } catch (e) {
      if (!(e instanceof VmError)) throw e;
      return e.message.replace(/ at 0x[0-9a-f]+ /, " at ADDR ");
    }
  });
}

Deno.test("budget in a register: every budget ends alike on every engine", () => {
  const budgets = Array.from({ length: 700 }, (_, i) => i + 1);
  // 16 bytes: the loads stay inside; 8: the 8th round's load faults after part of the budget.
  for (const len of [16, 8]) {
    const mem = new Uint8Array(len).map((_, i) => i * 3 + 1);
    const want = outcomes("interp", mem, budgets);
    assert.ok(want.some((o) => o.includes("instruction budget of")), "some budget runs out");
    assert.ok(want.some((o) => !o.includes("instruction budget of")), "some budget is enough");
    for (const engine of OTHERS) {
      const got = outcomes(engine, mem, budgets);
      budgets.forEach((b, i) =>
        assert.equal(got[i], want[i], `${engine}, len ${len}, budget ${b}`)
      );
    }
  }
});

Deno.test("budget in a register: each run starts with the whole budget", () => {
  using vm = new Vm({ engine: "jit", instructionBudget: 10_000 });
  vm.load(assemble("mov %r0, 0\nloop:\nadd %r0, 1\njlt %r0, 4000, loop\nexit"));
  for (let i = 0; i < 5; i++) assert.equal(vm.exec(), 4000n);
  vm.setInstructionBudget(7_999);
  assert.throws(() => vm.exec(), /^VmError: pc 2: instruction budget of 7999 exhausted/);
  vm.setInstructionBudget(8_000);
  assert.equal(vm.exec(), 4000n);
});

Deno.test("budget in a register: loops of inline array and hash lookups end alike on every engine", () => {
  using seg = freshSegment(`jit_budget_maps_${Deno.pid}`, 4);
  const u32 = (n: number) => new Uint8Array(new Uint32Array([n]).buffer);
  const u64 = (n: number) => new Uint8Array(new BigUint64Array([BigInt(n)]).buffer);
  const array = seg.createMap({
    type: "array",
    name: "a",
    keySize: 4,
    valueSize: 8,
    maxEntries: 8,
  });
  const hash = seg.createMap({ type: "hash", name: "h", keySize: 4, valueSize: 8, maxEntries: 8 });
  for (let k = 0; k < 8; k++) {
    array.update(u32(k), u64(k * 10 + 1));
    if (k % 3) hash.update(u32(k), u64(k * 100 + 7)); // keys 0, 3, 6 missing: lookups miss too
  }
  // Sum of the values of keys i & 7 (array) and i % 9 (hash: 8 is never there), i = 0..23.
  const program = `
    mov %r6, 0
    mov %r7, 0
  loop:
    mov %r1, %r7
    and %r1, 7
    stxw [%r10-4], %r1
    lddw %r1, map_fd ${array.id}
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, skip_a
    ldxdw %r1, [%r0]
    add %r6, %r1
  skip_a:
    mov %r1, %r7
    mod %r1, 9
    stxw [%r10-8], %r1
    lddw %r1, map_fd ${hash.id}
    mov %r2, %r10
    add %r2, -8
    call 1
    jeq %r0, 0, skip_h
    ldxdw %r1, [%r0]
    add %r6, %r1
  skip_h:
    add %r7, 1
    jlt %r7, 24, loop
    mov %r0, %r6
    exit`;
  const budgets = Array.from({ length: 700 }, (_, i) => i + 1);
  const setup = (vm: Vm) => vm.useRuntime(seg);
  const want = outcomes("interp", undefined, budgets, program, setup);
  assert.ok(want.some((o) => o.includes("instruction budget of")), "some budget runs out");
  assert.ok(want.some((o) => !o.includes("instruction budget of")), "some budget is enough");
  for (const engine of OTHERS) {
    const got = outcomes(engine, undefined, budgets, program, setup);
    budgets.forEach((b, i) => assert.equal(got[i], want[i], `${engine}, budget ${b}`));
  }
});
