/** The validator: one test per refusal rule; each error names the pc and the reason. */
import assert from "node:assert/strict";
import { assemble } from "../lib/isa/assembler.ts";
import { encodeInsns } from "../lib/isa/opcodes.ts";
import { Vm, VmError } from "../ffi/vm.ts";

function load(code: Uint8Array, setup?: (vm: Vm) => void): void {
  using vm = new Vm();
  setup?.(vm);
  vm.load(code);
}

function refused(source: string | Uint8Array, message: RegExp, setup?: (vm: Vm) => void): void {
  const code = typeof source === "string" ? assemble(source) : source;
  assert.throws(() => load(code, setup), (e: unknown) => {
    assert.ok(e instanceof VmError, `expected VmError, got ${e}`);
    assert.match(e.message, message);
    return true;
  });
}

Deno.test("validator: accepts a well-formed program", () => {
  load(assemble("mov %r0, 1\nja +1\nexit\nexit"));
});

Deno.test("validator: empty program", () => {
  refused(new Uint8Array(0), /^empty program$/);
});

Deno.test("validator: length not a multiple of 8", () => {
  refused(new Uint8Array(12), /not a multiple of 8 bytes/);
});

Deno.test("validator: too many instructions", () => {
  const insns = Array.from({ length: 1_000_001 }, () => ({
    opcode: 0x95,
    dst: 0,
    src: 0,
    off: 0,
    imm: 0,
  }));
  refused(encodeInsns(insns), /too many instructions: 1000001 \(limit 1000000\)/);
});

Deno.test("validator: unknown opcode", () => {
  refused(".insn 0x00000000000000ff\nexit", /^pc 0: unknown opcode 0xff$/);
  refused("mov %r0, 0\n.insn 0x0000000000000020\nexit", /^pc 1: unknown opcode 0x20$/);
});

Deno.test("validator: bad register", () => {
  refused("mov %r11, 1\nexit", /^pc 0: invalid register r11$/);
  refused("mov %r0, %r12\nexit", /^pc 0: invalid register r12$/);
});

Deno.test("validator: writes to r10", () => {
  refused("mov %r10, 1\nexit", /^pc 0: frame pointer r10 is read only$/);
  refused("mov %r0, 0\nldxdw %r10, [%r1]\nexit", /^pc 1: frame pointer r10 is read only$/);
  refused("lddw %r10, 1\nexit", /^pc 0: frame pointer r10 is read only$/);
  refused("lock fetch add [%r10-8], %r10\nexit", /^pc 0: frame pointer r10 is read only/);
  refused("lock xchg32 [%r10-8], %r10\nexit", /^pc 0: frame pointer r10 is read only/);
});

Deno.test("validator: jumps out of the program", () => {
  refused("ja +5\nexit", /^pc 0: jump out of range: target 6, program has 2 instructions$/);
  refused("mov %r0, 0\njeq %r0, 0, -3\nexit", /^pc 1: jump out of range: target -1/);
  refused("ja32 +100\nexit", /^pc 0: jump out of range/);
});

Deno.test("validator: jump into the middle of lddw", () => {
  refused("ja +1\nlddw %r0, 5\nexit", /^pc 0: jump into the middle of lddw at pc 1$/);
});

Deno.test("validator: lddw without its second slot", () => {
  const code = assemble("lddw %r0, 5").subarray(0, 8);
  refused(code, /^pc 0: lddw is the last instruction/);
  refused(
    ".insn 0x0000000500000018\n.insn 0x0000000000000095",
    /^pc 1: second slot of lddw must hold only the upper 32 bits$/,
  );
});

Deno.test("validator: falling off the end", () => {
  refused("mov %r0, 0", /^pc 0: last instruction is not exit or ja: execution falls off/);
  refused("mov %r0, 0\njeq %r0, 0, -1", /^pc 1: last instruction is not exit or ja/);
});

Deno.test("validator: unknown helper", () => {
  refused("call 99\nexit", /^pc 0: call to unknown helper 99$/);
  load(assemble("call 99\nexit"), (vm) => vm.registerHelper(99, "h", { builtin: "identity" }));
});

Deno.test("validator: bad local call targets", () => {
  refused("call local +10\nexit", /^pc 0: call out of range: target 11/);
  refused("call local +1\nlddw %r0, 1\nexit", /^pc 0: call into the middle of lddw at pc 1$/);
});

Deno.test("validator: the main program cannot be called", () => {
  refused(
    "mov %r0, 1\ncall local -2\nexit",
    /^pc 1: call to pc 0: the main program cannot be called/,
  );
});

Deno.test("validator: subprograms end with exit and jumps stay inside them", () => {
  refused(
    "call local f\nexit\nf:\nmov %r0, 1\njeq %r0, 1, -1",
    /^pc 3: last instruction is not exit or ja/,
  );
  refused(
    "call local f\nmov %r0, 1\nf:\nmov %r0, 2\nexit",
    /^pc 1: last instruction of the subprogram before pc 2 is not exit or ja$/,
  );
  refused(
    "call local f\nja +1\nexit\nf:\nexit",
    /^pc 1: jump to pc 3 leaves its subprogram/,
  );
});

Deno.test("validator: kfunc calls are refused", () => {
  refused("call runtime 7\nexit", /^pc 0: kfunc calls are not supported/);
});

Deno.test("validator: reserved fields", () => {
  refused(".insn 0x0000000100000095", /^pc 0: exit uses reserved fields$/);
  refused(".insn 0x00000001000010bf\nexit", /^pc 0: register-source ALU .*reserved imm/);
  refused(".insn 0x0000000000010087\nexit", /^pc 0: neg uses reserved fields$/);
  refused(".insn 0x00000000000200b7\nexit", /^pc 0: invalid movsx offset 2$/);
  refused(".insn 0x0000000000020037\nexit", /^pc 0: div\/mod offset must be 0 .* not 2$/);
  refused(".insn 0x00000008000000d7\nexit", /^pc 0: byte swap must have width 16, 32 or 64/);
});

Deno.test("validator: unknown atomic operation", () => {
  refused(".insn 0x0000000210a100db\nexit", /^pc 0: unknown atomic operation 0x2$/);
});

Deno.test("validator: lddw map references need a resolver", () => {
  refused(
    ".insn 0x0000000100001018\n.insn 0x0000000000000000\nexit",
    /^pc 0: lddw pseudo source 1 \(map reference\) but no map resolver is set$/,
  );
});

Deno.test("validator: a refused program leaves the VM usable", () => {
  using vm = new Vm();
  assert.throws(() => vm.load(assemble("ja +5\nexit")), VmError);
  vm.load(assemble("mov %r0, 7\nexit"));
  assert.equal(vm.exec(), 7n);
});
