/** Interpreter behaviour beyond the suite: memory safety, budget, frames, helpers. */
import assert from "node:assert/strict";
import { assemble } from "../lib/isa/assembler.ts";
import { type Engine, Vm, VmError } from "../ffi/vm.ts";

const ENGINES: Engine[] = ["interp", "jit", "llvm"];

for (const engine of ENGINES) {
  const run = (source: string, mem?: Uint8Array<ArrayBuffer>, setup?: (vm: Vm) => void) => {
    using vm = new Vm({ engine });
    setup?.(vm);
    vm.load(assemble(source));
    return vm.exec(mem);
  };

  const faults = (
    source: string,
    message: RegExp,
    mem?: Uint8Array<ArrayBuffer>,
    setup?: (vm: Vm) => void,
  ) => {
    assert.throws(() => run(source, mem, setup), (e: unknown) => {
      assert.ok(e instanceof VmError, `expected VmError, got ${e}`);
      assert.match(e.message, message);
      return true;
    });
  };

  Deno.test(`${engine}: frames: a subprogram never sees the last one's frame through a pointer made from r10`, () => {
    // fill and read run one after the other in the same frame memory; read's frame is cleared on entry.
    assert.equal(
      run(`
        call local fill
        call local read
        exit
      fill:
        mov %r4, -1
        mov %r5, %r10
        add %r5, -64
        stxdw [%r5], %r4
        stxdw [%r5+8], %r4
        stxdw [%r5+16], %r4
        stxdw [%r5+24], %r4
        stxdw [%r5+32], %r4
        stxdw [%r5+40], %r4
        stxdw [%r5+48], %r4
        stxdw [%r5+56], %r4
        mov %r0, 1
        exit
      read:
        mov %r2, %r10
        add %r2, -40
        ldxdw %r0, [%r2]
        exit`),
      0n,
    );
  });

  Deno.test(`${engine}: memory: a read-only context can be read, not written, by code or helpers`, () => {
    const mem = new Uint8Array([7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    using vm = new Vm({ engine, readOnlyContext: true });
    vm.load(assemble("ldxdw %r0, [%r1]\nexit"));
    assert.equal(vm.exec(mem), 7n);
    for (
      const store of [
        "stdw [%r1+8], 1",
        "mov %r2, 1\nstxdw [%r1+8], %r2",
        "mov %r2, 1\nlock add [%r1+8], %r2",
      ]
    ) {
      using w = new Vm({ engine, readOnlyContext: true });
      w.load(assemble(`${store}\nmov %r0, 0\nexit`));
      assert.throws(() => w.exec(mem), /out-of-bounds store of 8 bytes/);
    }
    // bpf_get_current_comm (16) into the context: refused like any bad buffer.
    using h = new Vm({ engine, readOnlyContext: true });
    h.useRuntime();
    h.load(assemble("mov %r2, 16\ncall 16\nexit"));
    assert.equal(h.exec(mem), BigInt.asUintN(64, -22n));
    assert.deepEqual([...mem.subarray(8)], [0, 0, 0, 0, 0, 0, 0, 0]);
  });

  Deno.test(`${engine}: memory: loads and stores inside the context block work`, () => {
    const mem = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
    assert.equal(run("ldxw %r0, [%r1+4]\nexit", mem), 0x08070605n);
    run("stb [%r1+7], 0x7f\nmov %r0, 0\nexit", mem);
    assert.equal(mem[7], 0x7f);
  });

  Deno.test(`${engine}: memory: a load past the context block stops with pc and address`, () => {
    const mem = new Uint8Array(8);
    faults(
      "mov %r0, 0\nldxw %r0, [%r1+6]\nexit",
      /^pc 1: out-of-bounds load of 4 bytes at 0x[0-9a-f]+ /,
      mem,
    );
  });

  Deno.test(`${engine}: memory: null, wild and kernel-looking pointers never crash the host`, () => {
    faults("mov %r1, 0\nldxb %r0, [%r1]\nexit", /^pc 1: out-of-bounds load of 1 bytes at 0x0 /);
    faults(
      "lddw %r1, 0xdeadbeef\nstxdw [%r1], %r1\nexit",
      /^pc 2: out-of-bounds store of 8 bytes at 0xdeadbeef /,
    );
    faults(
      "lddw %r1, 0xffffffffffffff00\nldxdw %r0, [%r1+0x7f]\nexit",
      /^pc 2: out-of-bounds load/,
    );
  });

  Deno.test(`${engine}: memory: above the stack top is out of bounds`, () => {
    faults("stxdw [%r10], %r1\nexit", /^pc 0: out-of-bounds store of 8 bytes/);
    faults("ldxb %r0, [%r10+0]\nexit", /^pc 0: out-of-bounds load of 1 bytes/);
    assert.equal(run("stdw [%r10-512], 9\nldxdw %r0, [%r10-512]\nexit"), 9n);
  });

  Deno.test(`${engine}: memory: misaligned atomics are refused at run time`, () => {
    faults("mov %r1, 1\nlock add [%r10-12], %r1\nexit", /^pc 1: misaligned 8-byte atomic access/);
  });

  Deno.test(`${engine}: memory: the host process survives 1000 faults and the VM stays usable`, () => {
    using vm = new Vm({ engine });
    vm.load(assemble("ldxdw %r0, [%r1+0x100]\nexit"));
    for (let i = 0; i < 1000; i++) assert.throws(() => vm.exec(new Uint8Array(16)), VmError);
    assert.equal(vm.exec(new Uint8Array(0x108).fill(1)), 0x0101010101010101n);
  });

  Deno.test(`${engine}: budget: a runaway loop stops with an error`, () => {
    using vm = new Vm({ engine, instructionBudget: 1000 });
    // (`ja loop` with no way out is refused at load: see termination_test.ts.)
    vm.load(assemble("mov %r0, 0\nloop:\nadd %r0, 1\njne %r0, 0, loop\nexit"));
    assert.throws(
      () => vm.exec(),
      /^VmError: pc \d: instruction budget of 1000 exhausted$|instruction budget of 1000 exhausted/,
    );
  });

  Deno.test(`${engine}: budget: a program inside its budget completes`, () => {
    using vm = new Vm({ engine, instructionBudget: 1000 });
    vm.load(assemble("mov %r0, 0\nloop:\nadd %r0, 1\njlt %r0, 100, loop\nexit"));
    assert.equal(vm.exec(), 100n);
  });

  Deno.test(`${engine}: calls: each frame has its own 512-byte stack and r6-r9 survive`, () => {
    const source = `
    stdw [%r10-8], 111
    mov %r6, 6
    call local f
    ldxdw %r1, [%r10-8]
    jne %r1, 111, bad
    jne %r6, 6, bad
    exit
  bad:
    mov %r0, -1
    exit
  f:
    stdw [%r10-8], 222
    mov %r6, 0
    ldxdw %r0, [%r10-8]
    exit`;
    assert.equal(run(source), 222n);
  });

  Deno.test(`${engine}: calls: the kernel's depth of 8 frames works, a 9th is an error`, () => {
    const chain = (depth: number) => {
      let s = "mov %r0, 0\ncall local f1\nexit\n";
      for (let i = 1; i < depth; i++) {
        s += `f${i}:\nadd %r0, 1\n${i + 1 < depth ? `call local f${i + 1}\n` : ""}exit\n`;
      }
      return s;
    };
    assert.equal(run(chain(8)), 7n);
    faults(chain(9), /call depth exceeds 8 frames/);
    faults("call local f\nexit\nf:\ncall local f\nexit", /^pc 2: call depth exceeds 8 frames$/);
  });

  Deno.test(`${engine}: helpers: TypeScript helpers receive r1-r5 and return r0`, () => {
    const seen: bigint[][] = [];
    const r0 = run(
      "mov %r1, 1\nmov %r2, 2\nmov %r3, 3\nmov %r4, 4\nmov %r5, 5\ncall 7\nexit",
      undefined,
      (vm) =>
        vm.registerHelper(7, "sum", (a, b, c, d, e) => {
          seen.push([a, b, c, d, e]);
          return a + b + c + d + e;
        }),
    );
    assert.equal(r0, 15n);
    assert.deepEqual(seen, [[1n, 2n, 3n, 4n, 5n]]);
  });

  Deno.test(`${engine}: helpers: callx to an unregistered id is a runtime error`, () => {
    faults("mov %r2, 42\ncall %r2\nexit", /^pc 1: callx to unknown helper id 42 \(r2\)$/);
  });

  Deno.test(`${engine}: helpers: the unwind helper stops the program with r0 = 0`, () => {
    const setup = (vm: Vm) => {
      vm.registerHelper(5, "unwind", { builtin: "identity" });
      vm.setUnwindHelper(5);
    };
    assert.equal(run("mov %r1, 0\ncall 5\nmov %r0, 9\nexit", undefined, setup), 0n);
    assert.equal(run("mov %r1, 3\ncall 5\nmov %r0, 9\nexit", undefined, setup), 9n);
    assert.equal(
      run("call local f\nmov %r0, 9\nexit\nf:\nmov %r1, 0\ncall 5\nexit", undefined, setup),
      0n,
    );
  });

  Deno.test(`${engine}: helpers: registration errors are reported`, () => {
    using vm = new Vm({ engine });
    assert.throws(() => vm.setUnwindHelper(5), /unwind helper 5 is not registered/);
    assert.throws(() => vm.registerHelper(70000, "x", { builtin: "identity" }), /id above 65535/);
    assert.throws(
      () => vm.registerHelper(1, "x", { builtin: "nope" }),
      /no built-in helper named 'nope'/,
    );
  });

  Deno.test(`${engine}: exec: running before loading is an error`, () => {
    using vm = new Vm({ engine });
    assert.throws(() => vm.exec(), /no program loaded/);
  });

  Deno.test(`${engine}: lddw: pseudo forms are resolved through the resolver at load time`, () => {
    using vm = new Vm({ engine });
    const seen: number[][] = [];
    vm.setLddwResolver((src, imm, next) => {
      seen.push([src, imm, next]);
      if (imm !== 3) throw new Error(`map fd ${imm} does not exist`);
      return 0x1234_5678_9abc_def0n;
    });
    // lddw %r0, map_fd 3 (src 1); exit
    vm.load(assemble(".insn 0x0000000300001018\n.insn 0x0000000000000000\nexit"));
    assert.equal(vm.exec(), 0x1234_5678_9abc_def0n);
    assert.deepEqual(seen, [[1, 3, 0]]);
    using other = new Vm({ engine });
    other.setLddwResolver((_src, imm) => {
      throw new Error(`map fd ${imm} does not exist`);
    });
    assert.throws(
      () => other.load(assemble(".insn 0x0000000700001018\n.insn 0\nexit")),
      /^VmError: pc 0: lddw pseudo source 1 imm 7 refused by the map resolver \(errno 22\): map fd 7 does not exist$/,
    );
  });

  Deno.test(`${engine}: memory: registered regions are reachable, their neighbours are not`, () => {
    using vm = new Vm({ engine });
    const value = new Uint8Array(16).fill(7);
    vm.addRegion(value);
    const at = Vm.addressOf(value);
    vm.load(assemble(`lddw %r1, 0x${at.toString(16)}\nldxdw %r0, [%r1+8]\nstb [%r1+15], 9\nexit`));
    assert.equal(vm.exec(), 0x0707070707070707n);
    assert.equal(value[15], 9);
    using vm2 = new Vm({ engine });
    vm2.addRegion(value);
    vm2.load(assemble(`lddw %r1, 0x${at.toString(16)}\nldxdw %r0, [%r1+9]\nexit`));
    assert.throws(() => vm2.exec(), /^VmError: pc 2: out-of-bounds load of 8 bytes/);
  });
}

Deno.test("engines: an unknown engine is a clear error", () => {
  assert.throws(() => new Vm({ engine: "turbo" as Engine }), /unknown engine 'turbo'/);
});
