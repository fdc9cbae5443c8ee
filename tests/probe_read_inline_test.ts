/**
 * bpf_probe_read_user compiled inline by the JIT (csrc/vm/jit_probe_read.c, with the exception
 * table of csrc/base/fault_fixup.c) against the helper the interpreter and the LLVM tier call:
 * every size from 1 to 72 bytes (64 is the largest inline one) gives the same destination and
 * r0 on good memory, on a read running into a guard page, and on kernel addresses, and leaves
 * the bytes around the destination alone; copies between overlapping stack ranges give the same
 * bytes; bpf_probe_read_user_str (a direct call of the copy) gives the helper's results; and
 * inline reads of bad memory in threads, signal handlers, a forked child, with programs loaded
 * and freed meanwhile, are -EFAULT with the destination zeroed (build/tests/inline_read_stress).
 */
import assert from "node:assert/strict";
import { assemble } from "../lib/isa/assembler.ts";
import { type Engine, Vm } from "../ffi/vm.ts";
import { ROOT } from "./test_utils.ts";
import {
  bytesAt,
  isMapped,
  mapAnonymous,
  PROT_NONE,
  protect,
  unmap,
} from "../testing/raw_memory.ts";
import { initialStack, readIntoStackProgram } from "../testing/probe_read_programs.ts";

const PAGE = 4096;
const EFAULT = BigInt.asUintN(64, -14n);
const ENGINES: Engine[] = ["interp", "jit", "llvm"];
/* LLVM compiles take tens of ms: it runs a spread of the sizes. */
const LLVM_SIZES = new Set([1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 15, 16, 17, 24, 31, 32, 63, 64, 65, 72]);
const SIZES = Array.from({ length: 72 }, (_, i) => i + 1);

function runRead(vm: Vm, src: bigint) {
  const ctx = new Uint8Array(104);
  new DataView(ctx.buffer).setBigUint64(0, src, true);
  vm.exec(ctx);
  return { r0: new DataView(ctx.buffer).getBigUint64(0, true), stack: ctx.slice(8) };
}

function load(engine: Engine, source: string) {
  const vm = new Vm({ engine });
  vm.useRuntime();
  vm.load(assemble(source));
  return vm;
}

/* Source: a page of bytes i * 13 + 5, then a PROT_NONE page. */
function sourcePages() {
  const base = mapAnonymous(2 * PAGE);
  bytesAt(base, PAGE).set(Uint8Array.from({ length: PAGE }, (_, i) => (i * 13 + 5) & 0xff));
  assert.equal(protect(base + BigInt(PAGE), PAGE, PROT_NONE), 0);
  return base;
}

for (const engine of ENGINES) {
  Deno.test(`probe_read inline/${engine}: every size on good memory, into a guard page and at kernel addresses`, () => {
    const base = sourcePages();
    try {
      for (const size of SIZES) {
        if (engine === "llvm" && !LLVM_SIZES.has(size)) continue;
        using vm = load(engine, readIntoStackProgram(112, size));
        const at = 40; // an unaligned start
        const good = runRead(vm, base + BigInt(at));
        const want = initialStack();
        want.set(bytesAt(base + BigInt(at), size), 8);
        assert.equal(good.r0, 0n, `size ${size}`);
        assert.deepEqual(good.stack, want, `size ${size}: good memory`);
        const zeroed = initialStack();
        zeroed.fill(0, 8, 8 + size);
        const bad = [
          base + BigInt(PAGE - size + 1), // the last byte is in the guard page
          base + BigInt(PAGE),
          0xffffffff81000000n,
          1n << 63n,
          0xfffffffffffff000n,
        ];
        for (const src of bad) {
          const r = runRead(vm, src);
          assert.equal(r.r0, EFAULT, `size ${size} at ${src.toString(16)}`);
          assert.deepEqual(
            r.stack,
            zeroed,
            `size ${size} at ${src.toString(16)}: zeroed, and only that`,
          );
        }
      }
    } finally {
      unmap(base, 2 * PAGE);
    }
  });

  Deno.test(`probe_read inline/${engine}: overlapping stack ranges copy as the helper does`, () => {
    for (const size of [1, 2, 3, 4, 5, 7, 8, 9, 12, 15, 16, 23, 24]) {
      for (let d = -8; d <= 8; d++) {
        if (d === 0 || (engine === "llvm" && (size % 4 !== 1 || d % 3 !== 0))) continue;
        // the helper's order: 8-byte words (load, then store), then 4, 2 and 1 bytes
        const want = initialStack();
        let off = 0;
        for (const step of [8, 4, 2, 1]) {
          while (size - off >= step) {
            const chunk = want.slice(8 + d + off, 8 + d + off + step);
            want.set(chunk, 8 + off);
            off += step;
            if (step !== 8) break;
          }
        }
        using vm = load(engine, readIntoStackProgram(112, size, d));
        const r = runRead(vm, 0n);
        assert.equal(r.r0, 0n);
        assert.deepEqual(r.stack, want, `size ${size}, src = dst + ${d}`);
      }
    }
  });

  Deno.test(`probe_read inline/${engine}: probe_read_user_str results and destination bytes`, () => {
    const base = sourcePages();
    try {
      const text = new TextEncoder().encode("abcdefghijklmnopqrstuvwxyz0123456789");
      bytesAt(base, PAGE).fill(0x41);
      bytesAt(base, text.length + 1).set([...text, 0]);
      // strings of every length 0..34 (NUL at each byte of a word), buffer 24 (truncation)
      const str = (size: number) => readIntoStackProgram(114, size);
      for (const size of [1, 8, 24, 64]) {
        using vm = load(engine, str(size));
        for (let len = 0; len <= 34; len += engine === "llvm" ? 5 : 1) {
          const src = base + BigInt(text.length - len);
          const r = runRead(vm, src);
          const n = Math.min(len + 1, size);
          const want = initialStack();
          want.set(bytesAt(src, n), 8);
          want[8 + n - 1] = 0;
          // The kernel copies 8-byte words while 8 bytes are left, storing the NUL's word with
          // the bytes after the NUL zeroed (tests/probe_read_str_kernel_test.ts checks it there).
          const word = len - (len % 8);
          if (len < size && size - word >= 8) want.fill(0, 8 + len, 8 + word + 8);
          assert.equal(r.r0, BigInt(n), `size ${size}, length ${len}`);
          assert.deepEqual(r.stack, want, `size ${size}, length ${len}`);
        }
        // 3 bytes before the guard page, no NUL: -EFAULT as the kernel (but for size 1 and 2, which
        // end before the guard); the guard page itself: -EFAULT, zeroed
        const cut = runRead(vm, base + BigInt(PAGE - 3));
        assert.equal(cut.r0, size <= 3 ? BigInt(size) : EFAULT);
        const bad = runRead(vm, base + BigInt(PAGE));
        const zeroed = initialStack();
        zeroed.fill(0, 8, 8 + size);
        assert.equal(bad.r0, EFAULT);
        assert.deepEqual(bad.stack, zeroed);
      }
    } finally {
      unmap(base, 2 * PAGE);
    }
  });
}

Deno.test("probe_read inline: bad memory in threads, signal handlers and a forked child, while programs come and go", async () => {
  assert.equal(isMapped(0x200000n, PAGE), false);
  const out = await new Deno.Command(`${ROOT}build/tests/inline_read_stress`, {
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, text);
  assert.match(text, /^ok: \d+ reads, \d+ in signal handlers/);
});
