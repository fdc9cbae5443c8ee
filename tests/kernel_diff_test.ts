/**
 * Differential test against the kernel (the spec): random verifier-accepted
 * programs run as BPF_PROG_TYPE_SYSCALL via BPF_PROG_TEST_RUN and on our
 * interpreter must leave the same registers.
 */
import assert from "node:assert/strict";
import {
  BPF_F_SLEEPABLE,
  BPF_PROG_TYPE_SYSCALL,
  kernelBpfAvailable,
  kernelProgLoad,
  kernelTestRun,
} from "../ffi/kernel_bpf.ts";
import { Vm } from "../ffi/vm.ts";
import { assemble } from "../lib/isa/assembler.ts";
import { aluProgramSource, CTX_SIZE, SAVED_REGS } from "./fuzz/alu_program_gen.ts";
import { Rng } from "./fuzz/program_gen.ts";

const kernel = kernelBpfAvailable();
if (!kernel.ok) console.log(`skip: kernel differential tests: ${kernel.reason}`);

const PROGRAMS = 3000;

Deno.test({
  name: `kernel diff: ${PROGRAMS} random ALU/jump/atomic programs leave the same registers`,
  ignore: !kernel.ok,
  fn: () => {
    const rng = new Rng(0xd1ff);
    let compared = 0;
    for (let i = 0; i < PROGRAMS; i++) {
      const source = aluProgramSource(new Rng(rng.next()));
      const code = assemble(source);
      const prog = kernelProgLoad(BPF_PROG_TYPE_SYSCALL, code, { flags: BPF_F_SLEEPABLE });
      const kctx = new Uint8Array(CTX_SIZE);
      try {
        kernelTestRun(prog, kctx);
      } finally {
        prog.close();
      }
      using vm = new Vm();
      vm.load(code);
      const uctx = new Uint8Array(CTX_SIZE);
      vm.exec(uctx);
      if (!kctx.every((b, k) => b === uctx[k])) {
        const regs = (ctx: Uint8Array) =>
          SAVED_REGS.map((r, k) =>
            `r${r}=0x${new DataView(ctx.buffer).getBigUint64(k * 8, true).toString(16)}`
          ).join(" ");
        assert.fail(
          `program ${i} differs\n${source}\nkernel: ${regs(kctx)}\nours:   ${regs(uctx)}`,
        );
      }
      compared++;
    }
    assert.equal(compared, PROGRAMS);
  },
});
