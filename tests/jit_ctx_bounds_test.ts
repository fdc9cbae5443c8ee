/**
 * Context accesses the JIT proves in bounds for a long enough context (csrc/vm/pointer_facts.c
 * ctx_proven; the JIT checks the run's context length once at entry and then runs the main
 * program without those checks): every engine gives the same result, and a run whose context
 * is too short (a loop that leaves it on its last round, a bound taken from the context length,
 * a negative index, a read-only context) stops with the same fault report, naming the pc and
 * the exact address, on every engine. Also the loop bounds held in registers that the facts now
 * follow (`i < n`), for stack buffers.
 */
import assert from "node:assert/strict";
import { type Engine, Vm, VmError } from "../ffi/vm.ts";
import { assemble } from "../lib/isa/assembler.ts";

const ENGINES: Engine[] = ["interp", "jit", "llvm"];

const bytes = (n: number) => new Uint8Array(n).map((_, i) => (i * 7 + 3) & 0xff);
const sum = (m: Uint8Array, n: number) => m.subarray(0, n).reduce((s, x) => s + x, 0);
const hex = (x: bigint) => `0x${x.toString(16)}`;

/**
 * r0 of a run on every engine (all equal), or the fault message (all equal; stack addresses
 * differ between engines, so `stack` compares messages without the address).
 */
function runAll(
  source: string,
  mem: Uint8Array<ArrayBuffer> | undefined,
  options: { readOnlyContext?: boolean; stack?: boolean } = {},
): { r0?: bigint; fault?: string } {
  const { stack, ...vmOptions } = options;
  const results = ENGINES.map((engine) => {
    using vm = new Vm({ engine, ...vmOptions });
    vm.load(assemble(source));
    try {
      return { r0: vm.exec(mem) };
    } catch (e) {
      if (!(e instanceof VmError)) throw e;
      return { fault: stack ? e.message.replace(/ at 0x[0-9a-f]+ /, " at ADDR ") : e.message };
    }
  });
  for (let i = 1; i < results.length; i++) {
    assert.deepEqual(results[i], results[0], `${ENGINES[i]} differs from ${ENGINES[0]}`);
  }
  return results[0];
}

function assertFault(
  result: { r0?: bigint; fault?: string },
  pc: number,
  kind: "load" | "store",
  address: bigint,
) {
  assert.equal(result.r0, undefined, `expected a fault, got r0 = ${result.r0}`);
  assert.ok(
    result.fault?.startsWith(`pc ${pc}: out-of-bounds ${kind} of 1 bytes at ${hex(address)} `),
    result.fault,
  );
}

/* Sums ctx[0..16]: 17 bytes, proven for a context of at least 17. */
const sum17 = `
    mov %r0, 0
    mov %r2, 0
  loop:
    mov %r3, %r1
    add %r3, %r2
    ldxb %r4, [%r3]
    add %r0, %r4
    add %r2, 1
    jle %r2, 16, loop
    exit`;

Deno.test("ctx facts: a loop that leaves the context on its last round faults there", () => {
  const long = bytes(17);
  assert.equal(runAll(sum17, long).r0, BigInt(sum(long, 17)));
  const big = bytes(4096);
  assert.equal(runAll(sum17, big).r0, BigInt(sum(big, 17)));
  const short = bytes(16);
  assertFault(runAll(sum17, short), 4, "load", Vm.addressOf(short) + 16n);
});

/* n = min(len, 64); sums ctx[i] for i < n (`jlt`) or, one too many, i <= n (`jle`). */
const sumLen = (jump: "jlt" | "jle") => `
    mov %r0, 0
    jlt %r2, 64, small
    mov %r2, 64
  small:
    mov %r3, 0
    jeq %r2, 0, done
  loop:
    mov %r4, %r1
    add %r4, %r3
    ldxb %r5, [%r4]
    add %r0, %r5
    add %r3, 1
    ${jump} %r3, %r2, loop
  done:
    exit`;

Deno.test("ctx facts: a bound taken from the context length", () => {
  for (const len of [1, 2, 31, 63, 64, 65, 100, 4096]) {
    const m = bytes(len);
    assert.equal(runAll(sumLen("jlt"), m).r0, BigInt(sum(m, Math.min(len, 64))), `len ${len}`);
    const over = runAll(sumLen("jle"), m);
    if (len >= 65) {
      assert.equal(over.r0, BigInt(sum(m, 65)), `len ${len}`);
    } else {
      assertFault(over, 7, "load", Vm.addressOf(m) + BigInt(len));
    }
  }
});

Deno.test("ctx facts: a loop that runs 0 times touches nothing", () => {
  assert.equal(runAll(sumLen("jle"), undefined).r0, 0n);
  assert.equal(runAll(sumLen("jle"), new Uint8Array(0)).r0, 0n);
  assert.equal(runAll(sum17, undefined).fault?.startsWith("pc 4: out-of-bounds load"), true);
});

Deno.test("ctx facts: a negative index is checked, whatever the context's length", () => {
  const source = `
      mov %r0, 0
      mov %r2, 0
    loop:
      mov %r3, %r1
      add %r3, %r2
      ldxb %r4, [%r3-1]
      add %r0, %r4
      add %r2, 1
      jlt %r2, 8, loop
      exit`;
  for (const len of [8, 64, 4096]) {
    const m = bytes(len);
    assertFault(runAll(source, m), 4, "load", Vm.addressOf(m) - 1n);
  }
});

/* ctx[i] = i for i < 32. */
const fill32 = `
    mov %r2, 0
  loop:
    mov %r3, %r1
    add %r3, %r2
    stxb [%r3], %r2
    add %r2, 1
    jlt %r2, 32, loop
    mov %r0, 7
    exit`;

Deno.test("ctx facts: stores land in a writable context and fault in a read-only or short one", () => {
  for (const engine of ENGINES) {
    using vm = new Vm({ engine });
    vm.load(assemble(fill32));
    const m = new Uint8Array(40);
    assert.equal(vm.exec(m), 7n);
    assert.deepEqual([...m], [...Array(32).keys(), 0, 0, 0, 0, 0, 0, 0, 0], engine);
  }
  const ro = new Uint8Array(40);
  assertFault(runAll(fill32, ro, { readOnlyContext: true }), 3, "store", Vm.addressOf(ro));
  assert.deepEqual([...ro], Array(40).fill(0));
  const short = new Uint8Array(31);
  assertFault(runAll(fill32, short), 3, "store", Vm.addressOf(short) + 31n);
});

/* A 64-byte stack buffer filled for i < n (or i <= n) with n = min(ctx[0], 64): r0 = its sum. */
const stackFill = (jump: "jlt" | "jle") => `
    stdw [%r10-8], 0
    ldxb %r2, [%r1]
    jlt %r2, 64, small
    mov %r2, 64
  small:
    mov %r3, 0
    jeq %r2, 0, done
  loop:
    mov %r4, %r10
    add %r4, -64
    add %r4, %r3
    stxb [%r4], %r3
    add %r3, 1
    ${jump} %r3, %r2, loop
  done:
    mov %r0, 0
    ldxdw %r5, [%r10-8]
    add %r0, %r5
    exit`;

Deno.test("facts: a stack index bounded by a register stays checked when it can leave the frame", () => {
  for (const n of [0, 1, 8, 63, 64, 200]) {
    const m = new Uint8Array([n]);
    const k = Math.min(n, 64);
    // The buffer's last 8 bytes: byte i holds i where written (i < end), 0 elsewhere.
    const last8 = (end: number) => {
      let v = 0n;
      for (let i = 56; i < Math.min(end, 64); i++) v |= BigInt(i) << BigInt(8 * (i - 56));
      return v;
    };
    assert.equal(runAll(stackFill("jlt"), m).r0, last8(k), `n ${n}`);
    const over = runAll(stackFill("jle"), m, { stack: true });
    if (k === 0) assert.equal(over.r0, 0n);
    else if (k < 64) assert.equal(over.r0, last8(k + 1), `n ${n}`);
    else assert.match(over.fault ?? "", /^pc 9: out-of-bounds store of 1 bytes at ADDR /);
  }
});

/*
 * Random context loops: a counter from `start` stepping by 1 up to a bound (a constant or
 * min(len, cap) in a register, compared by jlt, jle, jne, jslt or jsle), an access of 1-8 bytes
 * at ctx + counter + off; run on contexts around the length the loop needs. Every engine gives
 * the same r0 or the same fault (pc and address).
 */
Deno.test("ctx facts: random context loops behave alike on every engine", () => {
  let seed = 4242;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  for (let round = 0; round < 40; round++) {
    const start = rand(4), bound = 1 + rand(40), off = rand(8) - 2;
    const size = [1, 2, 4, 8][rand(4)];
    const ldx = { 1: "ldxb", 2: "ldxh", 4: "ldxw", 8: "ldxdw" }[size];
    const jump = ["jlt", "jle", "jne", "jslt", "jsle"][rand(5)];
    const fromLen = rand(2) === 1;
    const source = `
        mov %r0, 0
        ${fromLen ? `jlt %r2, ${bound}, small\n mov %r2, ${bound}\n small:` : `mov %r2, ${bound}`}
        mov %r3, ${start}
        jge %r3, %r2, done
      loop:
        mov %r4, %r1
        add %r4, %r3
        ${ldx} %r5, [%r4${off < 0 ? off : `+${off}`}]
        add %r0, %r5
        add %r3, 1
        ${jump} %r3, %r2, loop
      done:
        exit`;
    const lens = [0, bound - 1, bound, bound + size, bound + 8, 64].filter((n) => n >= 0);
    const mems = lens.map(bytes);
    const results = ENGINES.map((engine) => {
      using vm = new Vm({ engine });
      vm.load(assemble(source));
      return mems.map((m) => {
        try {
          return `r0 ${vm.exec(m)}`;
        } catch (e) {
          if (!(e instanceof VmError)) throw e;
          return `fault ${e.message}`;
        }
      });
    });
    lens.forEach((len, i) => {
      const what = `round ${round}: ${jump} to ${bound}${fromLen ? " (from len)" : ""}, ` +
        `start ${start}, ${ldx} at +${off}, len ${len}`;
      for (let e = 1; e < ENGINES.length; e++) assert.equal(results[e][i], results[0][i], what);
      if (results[0][i].startsWith("fault")) {
        assert.match(
          results[0][i],
          /^fault pc \d+: out-of-bounds load of \d bytes at 0x[0-9a-f]+ /,
          what,
        );
      }
    });
  }
});
