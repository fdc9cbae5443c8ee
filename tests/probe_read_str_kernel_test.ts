/**
 * bpf_probe_read_user_str against the kernel (the spec): the same program, run by the kernel
 * (BPF_PROG_TYPE_SYSCALL through BPF_PROG_TEST_RUN, which may call it) and by each engine, reads
 * strings that end at every byte of a word, that are longer than the buffer, that run into a
 * PROT_NONE page, and bad addresses; r0 and all 96 bytes of the stack around the destination
 * must be the same.
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
import { bytesAt, mapAnonymous, PROT_NONE, protect, unmap } from "../testing/raw_memory.ts";
import { readIntoStackProgram } from "../testing/probe_read_programs.ts";

const kernel = kernelBpfAvailable();
if (!kernel.ok) console.log(`skip: kernel differential tests: ${kernel.reason}`);

const PAGE = 4096;
const ENGINES: Engine[] = ["interp", "jit", "llvm"];

function ctxFor(src: bigint): Uint8Array<ArrayBuffer> {
  const ctx = new Uint8Array(104);
  new DataView(ctx.buffer).setBigUint64(0, src, true);
  return ctx;
}

const show = (ctx: Uint8Array) =>
  `r0=${new DataView(ctx.buffer).getBigInt64(0, true)} stack=${
    [...ctx.slice(8)].map((b) => b.toString(16).padStart(2, "0")).join("")
  }`;

Deno.test({
  name: "probe_read_user_str: every engine gives the kernel's r0 and destination bytes",
  ignore: !kernel.ok,
  fn: () => {
    // A page of 'A's whose last bytes hold "abc..." strings, then a PROT_NONE page.
    const base = mapAnonymous(2 * PAGE);
    try {
      const page = bytesAt(base, PAGE);
      page.fill(0x41);
      assert.equal(protect(base + BigInt(PAGE), PAGE, PROT_NONE), 0);
      const text = new TextEncoder().encode("abcdefghijklmnopqrstuvwxyz0123456789");
      const at = 512; // a string of each length 0..36 ends at `at + len` with a NUL
      page.set([...text, 0], at);
      const sources: [string, bigint][] = [];
      for (let len = 0; len <= text.length; len++) {
        sources.push([`length ${len}`, base + BigInt(at + text.length - len)]);
      }
      for (let left = 1; left <= 20; left++) {
        sources.push([`${left} bytes, no NUL, then PROT_NONE`, base + BigInt(PAGE - left)]);
      }
      sources.push(["PROT_NONE", base + BigInt(PAGE)], ["NULL", 0n], [
        "a kernel address",
        0xffffffff81000000n,
      ]);
      const failures: string[] = [];
      for (const size of [1, 2, 7, 8, 9, 15, 16, 17, 24, 64]) {
        const code = assemble(readIntoStackProgram(114, size));
        const prog = kernelProgLoad(BPF_PROG_TYPE_SYSCALL, code, { flags: BPF_F_SLEEPABLE });
        const vms = ENGINES.map((engine) => {
          const vm = new Vm({ engine });
          vm.useRuntime();
          vm.load(code);
          return [engine, vm] as const;
        });
        try {
          for (const [what, src] of sources) {
            const expected = ctxFor(src);
            kernelTestRun(prog, expected);
            for (const [engine, vm] of vms) {
              const ours = ctxFor(src);
              vm.exec(ours);
              if (!expected.every((b, k) => b === ours[k])) {
                failures.push(
                  `size ${size}, ${what}, ${engine}:\n  kernel ${show(expected)}\n  ours   ${
                    show(ours)
                  }`,
                );
              }
            }
          }
        } finally {
          prog.close();
          for (const [, vm] of vms) vm.close();
        }
      }
      assert.deepEqual(failures, [], failures.slice(0, 6).join("\n"));
    } finally {
      unmap(base, 2 * PAGE);
    }
  },
});
