/**
 * Bounds and call-depth checks that the LLVM tier now emits as IR (csrc/llvm/llvm_jit.c: the
 * context limits as SSA values, the budget and call depth in registers): every engine stops at
 * the same instruction with the same report, including when the bad access comes only in a
 * loop's last iteration, when the bound depends on the context's length, and when bpf-to-bpf
 * recursion reaches the depth limit, with and without an instruction budget.
 */
import assert from "node:assert/strict";
import { type Engine, Vm, VmError } from "../ffi/vm.ts";
import { assemble } from "../lib/isa/assembler.ts";

const ENGINES: Engine[] = ["interp", "jit", "llvm"];
const BUDGETS = [0n, 1_000_000n];

/* r0 = the outcome of one run: its value or its error, and the context afterwards. */
function outcome(engine: Engine, budget: bigint, source: string, mem?: Uint8Array<ArrayBuffer>) {
  using vm = new Vm({ engine, instructionBudget: budget });
  vm.load(assemble(source));
  try {
    return { r0: vm.exec(mem), mem: mem && [...mem] };
  } catch (e) {
    assert.ok(e instanceof VmError, `expected VmError, got ${e}`);
    return { error: e.message, mem: mem && [...mem] };
  }
}

/* A context block of len bytes inside a larger buffer (off V8's heap, so it never moves and
 * reports name the same address on every engine), with bytes after it that are not its. */
const block = (len: number) => new Uint8Array(new ArrayBuffer(4096), 1024, len);

/* Runs source on every engine with the same context block; all must agree. */
function sameEverywhere(source: string, memOf: () => Uint8Array<ArrayBuffer> | undefined) {
  const results = [];
  /* One block for every engine, so addresses in reports are the same. */
  const mem = memOf();
  const init = mem && new Uint8Array(mem);
  for (const budget of BUDGETS) {
    for (const engine of ENGINES) {
      if (mem && init) mem.set(init);
      results.push({ engine, budget, ...outcome(engine, budget, source, mem) });
    }
  }
  for (const r of results.slice(1)) {
    assert.deepEqual(
      { r0: r.r0, error: r.error, mem: r.mem },
      { r0: results[0].r0, error: results[0].error, mem: results[0].mem },
      `${r.engine} (budget ${r.budget}) differs from ${results[0].engine}`,
    );
  }
  return results[0];
}

/* Sums ctx bytes 0..r2 inclusive: the last iteration reads one byte past the end. */
const sumThroughLen = (cmp: "jle" | "jlt") => `
    mov %r6, %r1
    mov %r7, %r2
    mov %r8, 0
    mov %r0, 0
  loop:
    mov %r3, %r6
    add %r3, %r8
    ldxb %r4, [%r3]
    add %r0, %r4
    add %r8, 1
    ${cmp} %r8, %r7, loop
    exit`;

Deno.test("llvm bounds: a loop whose last iteration reads past the context faults there on every engine", () => {
  const mem = () => {
    const m = block(64);
    m.forEach((_, i) => m[i] = i + 1);
    return m;
  };
  const ok = sameEverywhere(sumThroughLen("jlt"), mem);
  assert.equal(ok.r0, BigInt((64 * 65) / 2));
  const m = mem();
  const bad = sameEverywhere(sumThroughLen("jle"), () => m);
  /* The address reported is the byte just past the block (r1 + 64). */
  const base = outcome("interp", 0n, "mov %r0, %r1\n exit", m).r0 ?? 0n;
  assert.ok(base > 0n);
  assert.equal(
    bad.error,
    `pc 6: out-of-bounds load of 1 bytes at 0x${(base + 64n).toString(16)} ` +
      "(outside the stack, the context and every registered region)",
  );
});

/* The same loop one byte early: its first iteration reads the byte before the context. */
Deno.test("llvm bounds: a loop whose first iteration reads before the context faults there on every engine", () => {
  const source = sumThroughLen("jlt").replace("add %r3, %r8", "add %r3, %r8\n    add %r3, -1");
  const r = sameEverywhere(source, () => block(64));
  assert.match(r.error ?? "", /^pc 7: out-of-bounds load of 1 bytes at 0x[0-9a-f]+/);
});

/* A loop over a stack buffer through a pointer the loop advances (checked against the frame). */
Deno.test("llvm bounds: a loop that walks off the end of its stack frame faults at the frame's top", () => {
  const walk = (count: number) => `
    mov %r3, %r10
    add %r3, -64
    mov %r0, 0
    mov %r8, 0
  loop:
    stxb [%r3], %r8
    ldxb %r4, [%r3]
    add %r0, %r4
    add %r3, 1
    add %r8, 1
    jlt %r8, ${count}, loop
    exit`;
  /* (Each engine has its own stack: the reports agree but for the address.) */
  const reports = ENGINES.flatMap((engine) =>
    BUDGETS.map((budget) => {
      const ok = outcome(engine, budget, walk(64));
      assert.equal(ok.r0, BigInt((63 * 64) / 2), engine);
      return outcome(engine, budget, walk(65)).error?.replace(/0x[0-9a-f]+/, "ADDR");
    })
  );
  for (const r of reports) {
    assert.equal(
      r,
      "pc 4: out-of-bounds store of 1 bytes at ADDR (outside the stack, the context and every registered region)",
    );
  }
});

/* Writes r8 into every 8-byte word at 0, 8, ... while the offset is below len. */
const fillWords = `
    mov %r6, %r1
    mov %r7, %r2
    mov %r8, 0
  loop:
    mov %r3, %r6
    add %r3, %r8
    stxdw [%r3], %r8
    add %r8, 8
    jlt %r8, %r7, loop
    mov %r0, %r8
    exit`;

Deno.test("llvm bounds: a bound that depends on the context's length: stores stop at the last whole word", () => {
  /* 24 bytes: three whole words. */
  const whole = sameEverywhere(fillWords, () => block(24));
  assert.equal(whole.r0, 24n);
  /* 20 bytes: the third store would cross the end; the first two happened. */
  const ragged = sameEverywhere(fillWords, () => block(20));
  assert.match(ragged.error ?? "", /^pc 5: out-of-bounds store of 8 bytes at 0x[0-9a-f]+/);
  assert.deepEqual(ragged.mem?.slice(8, 9), [8]);
  assert.deepEqual(ragged.mem?.slice(16), [0, 0, 0, 0]);
  /* No context at all: the very first store faults. */
  const none = sameEverywhere(fillWords, () => undefined);
  assert.match(none.error ?? "", /^pc 5: out-of-bounds store of 8 bytes at 0x0\b/);
});

/* The length of the context also bounds 2- and 4-byte loads at its end (limits per size). */
Deno.test("llvm bounds: loads of every size at the context's last bytes", () => {
  for (const [op, size] of [["ldxh", 2], ["ldxw", 4], ["ldxdw", 8]] as const) {
    const source = `
    mov %r3, %r1
    add %r3, %r2
    add %r3, -${size}
    ${op} %r0, [%r3]
    add %r3, 1
    ${op} %r4, [%r3]
    exit`;
    const r = sameEverywhere(source, () => block(37).fill(0xab));
    assert.match(r.error ?? "", new RegExp(`^pc 5: out-of-bounds load of ${size} bytes`));
  }
});

/* f(n) = n == 0 ? 0 : 1 + f(n - 1), called with n = r2 & 15 (the context length). */
const recursion = `
    mov %r1, %r2
    and %r1, 15
    call local f
    exit
  f:
    mov %r0, 0
    jeq %r1, 0, done
    mov %r6, %r1
    add %r1, -1
    call local f
    add %r0, 1
  done:
    exit`;

Deno.test("llvm depth: bpf-to-bpf recursion up to 8 frames runs, one more faults at the call", () => {
  /* main + f(6) .. f(0): 8 frames. */
  const deepest = sameEverywhere(recursion, () => block(6));
  assert.equal(deepest.r0, 6n);
  const tooDeep = sameEverywhere(recursion, () => block(7));
  assert.equal(tooDeep.error, "pc 8: call depth exceeds 8 frames");
  const muchTooDeep = sameEverywhere(recursion, () => block(15));
  assert.equal(muchTooDeep.error, "pc 8: call depth exceeds 8 frames");
});

Deno.test("llvm budget: a budget that runs out deep in recursion stops every engine alike", () => {
  const source = assemble(recursion);
  for (const budget of [5n, 12n, 20n, 30n]) {
    const results = ENGINES.map((engine) => {
      using vm = new Vm({ engine, instructionBudget: budget });
      vm.load(source);
      try {
        return `r0 ${vm.exec(new Uint8Array(6))}`;
      } catch (e) {
        return (e as Error).message;
      }
    });
    assert.deepEqual(results.slice(1), [results[0], results[0]], `budget ${budget}`);
  }
});

/* Loops before and after bpf_loop, whose callback loops too: callbacks share the budget. */
const loopsAroundCallbacks = `
    mov %r6, 0
  pre:
    add %r6, 1
    jlt %r6, 5, pre
    mov %r1, 4
    lddw %r2, callback cb
    mov %r3, 0
    mov %r4, 0
    call 181
    mov %r7, 0
  post:
    add %r7, 1
    jlt %r7, 5, post
    mov %r0, %r7
    add %r0, %r6
    exit
  cb:
    mov %r0, 0
    mov %r2, 0
  inner:
    add %r2, 1
    jlt %r2, 3, inner
    exit`;

Deno.test("llvm budget: callbacks run by a helper share the budget: every engine runs out at the same point", () => {
  const source = assemble(loopsAroundCallbacks);
  const seen = new Set<string>();
  for (let budget = 1n; budget <= 60n; budget++) {
    const results = ENGINES.map((engine) => {
      using vm = new Vm({ engine, instructionBudget: budget });
      vm.useRuntime();
      vm.load(source);
      try {
        return `r0 ${vm.exec()}`;
      } catch (e) {
        return (e as Error).message;
      }
    });
    assert.deepEqual(results.slice(1), [results[0], results[0]], `budget ${budget}`);
    seen.add(results[0].replace(/^pc \d+/, "pc"));
  }
  /* The sweep reaches both outcomes: stopped by the budget, and finished. */
  assert.ok([...seen].some((r) => r.startsWith("r0 10")), [...seen].join("; "));
  assert.ok([...seen].some((r) => r.includes("budget")), [...seen].join("; "));
});

/* g(p) = p == ctx ? ctx[0] : *p + g(p - 1), with each frame keeping p on its own stack. */
const recursionWithMemory = `
    mov %r6, %r1
    mov %r1, %r6
    add %r1, 6
    call local g
    exit
  g:
    stxdw [%r10-8], %r1
    ldxb %r0, [%r1]
    jeq %r1, %r6, done
    add %r1, -1
    call local g
    ldxdw %r1, [%r10-8]
    ldxb %r2, [%r1]
    add %r0, %r2
  done:
    exit`;

Deno.test("llvm calls: recursion that uses its frames and the context agrees on every engine", () => {
  const mem = () => {
    const m = block(8);
    m.forEach((_, i) => m[i] = 10 + i);
    return m;
  };
  /* ctx[0] + ctx[1..6] (the deepest frame's own read is ctx[0]) */
  assert.equal(
    sameEverywhere(recursionWithMemory, mem).r0,
    BigInt(10 + 11 + 12 + 13 + 14 + 15 + 16),
  );
  /* One frame deeper than allowed: p starts at ctx + 7. */
  const deep = sameEverywhere(recursionWithMemory.replace("add %r1, 6", "add %r1, 7"), mem);
  assert.equal(deep.error, "pc 9: call depth exceeds 8 frames");
});
