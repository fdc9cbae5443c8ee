/**
 * Differential test against the kernel (the spec): random verifier-accepted
 * programs run as BPF_PROG_TYPE_SYSCALL via BPF_PROG_TEST_RUN and on each of
 * our engines must leave the same registers.
 */
import assert from "node:assert/strict";
import {
  BPF_F_SLEEPABLE,
  BPF_PROG_TYPE_SYSCALL,
  kernelBpfAvailable,
  kernelProgLoad,
  kernelTestRun,
} from "../testing/kernel_bpf.ts";
import { type Engine, Vm } from "../ffi/vm.ts";
import { assemble } from "../lib/isa/assembler.ts";
import { SAVED_REGS, validProgramSource } from "../testing/valid_program_gen.ts";
import { Rng } from "../testing/program_gen.ts";

const kernel = kernelBpfAvailable();
if (!kernel.ok) console.log(`skip: kernel differential tests: ${kernel.reason}`);

const PROGRAMS = 3000;
/** The LLVM tier compiles in milliseconds: it runs every 10th program. */
const ENGINES: [Engine, number][] = [["interp", 1], ["jit", 1], ["llvm", 10]];
const CTX = SAVED_REGS.length * 8;

const regs = (ctx: Uint8Array) =>
  SAVED_REGS.map((r, k) =>
    `r${r}=0x${new DataView(ctx.buffer).getBigUint64(k * 8, true).toString(16)}`
  ).join(" ");

Deno.test({
  name: `kernel diff: ${PROGRAMS} random programs leave the same registers on every engine`,
  ignore: !kernel.ok,
  fn: () => {
    const rng = new Rng(0xd1ff);
    for (let i = 0; i < PROGRAMS; i++) {
      const source = validProgramSource(new Rng(rng.next()), { kernel: true });
      const code = assemble(source);
      const prog = kernelProgLoad(BPF_PROG_TYPE_SYSCALL, code, { flags: BPF_F_SLEEPABLE });
      const expected = new Uint8Array(CTX);
      try {
        kernelTestRun(prog, expected);
      } finally {
        prog.close();
      }
      for (const [engine, every] of ENGINES) {
        if (i % every !== 0) continue;
        using vm = new Vm({ engine });
        vm.load(code);
        const ours = new Uint8Array(CTX);
        vm.exec(ours);
        if (!expected.every((b, k) => b === ours[k])) {
          assert.fail(
            `program ${i} differs on ${engine}\n${source}\nkernel: ${regs(expected)}\nours:   ${
              regs(ours)
            }`,
          );
        }
      }
    }
  },
});
