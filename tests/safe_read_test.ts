/**
 * probe_read and friends on bad memory, in-process (csrc/base/safe_copy.c): unmapped, PROT_NONE,
 * a guard page under readable memory and memory unmapped by another thread while programs read
 * it all return -EFAULT with the destination zeroed, on every engine, and never crash; a target's
 * own SIGSEGV handler still gets its faults, and a default disposition still kills.
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

const ENGINES: Engine[] = ["interp", "jit", "llvm"];
const EFAULT = BigInt.asUintN(64, -14n);
const PAGE = 4096;

/*
 * Two pages: [readable "hello..." up to its last byte][PROT_NONE guard]. Unmapped memory is a low
 * address nothing maps (checked with mincore): a page this test unmapped could be reused by the
 * runtime of Deno at any time.
 */
const UNMAPPED = 0x200000n;
function assertUnmapped(addr: bigint) {
  assert.equal(isMapped(addr, PAGE), false);
}
function layout() {
  const base = mapAnonymous(3 * PAGE);
  const bytes = bytesAt(base, PAGE);
  bytes.fill(0x41);
  bytes.set(new TextEncoder().encode("hello\0"), 0);
  assert.equal(
    protect(base + BigInt(PAGE), PAGE, PROT_NONE),
    0,
  );
  assert.equal(
    unmap(base + 2n * BigInt(PAGE), PAGE),
    0,
  );
  assertUnmapped(UNMAPPED);
  return {
    base,
    close: () => unmap(base, 2 * PAGE),
  };
}

function run(engine: Engine, source: string) {
  using vm = new Vm({ engine });
  vm.useRuntime();
  vm.load(assemble(source));
  return vm.exec();
}

/* probe_read(helper) of `size` (8 or 16) bytes at addr into a stack buffer prefilled with ones:
 * r0 plus both words (so -EFAULT with a zeroed buffer is exactly -EFAULT). */
const readProgram = (helper: number, addr: bigint, size: number) => `
stdw [%r10-16], -1
stdw [%r10-8], -1
mov %r1, %r10
add %r1, -16
mov %r2, ${size}
lddw %r3, ${addr}
call ${helper}
ldxdw %r1, [%r10-16]
add %r0, %r1
ldxdw %r1, [%r10-8]
${size === 16 ? "add %r0, %r1" : ""}
exit`;

/* probe_read_user_str into 16 bytes of ones: its r0. */
const strProgram = (addr: bigint) => `
stdw [%r10-16], -1
stdw [%r10-8], -1
mov %r1, %r10
add %r1, -16
mov %r2, 16
lddw %r3, ${addr}
call 114
exit`;

for (const engine of ENGINES) {
  Deno.test(`safe_read/${engine}: unmapped, PROT_NONE and guard-page reads: -EFAULT, zeroed`, () => {
    const m = layout();
    try {
      const page = BigInt(PAGE);
      // 113 (probe_read_kernel) refuses user memory, valid or not, as the kernel does
      assert.equal(run(engine, readProgram(113, m.base, 8)), EFAULT, "113 of user memory");
      for (const helper of [4, 112, 113]) {
        assert.equal(
          run(engine, readProgram(helper, UNMAPPED, 8)),
          EFAULT,
          `${helper} unmapped`,
        );
        assert.equal(
          run(engine, readProgram(helper, m.base + page, 8)),
          EFAULT,
          `${helper} PROT_NONE`,
        );
        assert.equal(
          run(engine, readProgram(helper, m.base + page - 8n, 16)),
          EFAULT,
          `${helper} across`,
        );
        assert.equal(run(engine, readProgram(helper, 0x10n, 16)), EFAULT, `${helper} NULL page`);
        assert.equal(run(engine, readProgram(helper, 1n << 63n, 8)), EFAULT, `${helper} kernel`);
        // valid memory: 8 bytes of "hello\0AA"
        if (helper === 113) continue;
        assert.equal(
          run(engine, readProgram(helper, m.base, 8)),
          0x41_41_00_6f_6c_6c_65_68n,
        );
      }
    } finally {
      m.close();
    }
  });

  Deno.test(`safe_read/${engine}: strings: bad is -EFAULT zeroed, and so is one running into a guard page (as the kernel)`, () => {
    const m = layout();
    try {
      const page = BigInt(PAGE);
      for (const addr of [m.base + page, UNMAPPED, 0x10n]) {
        assert.equal(run(engine, strProgram(addr)), EFAULT);
        // the whole destination is zeroed: read it back through a program that ignores r0
        assert.equal(
          run(
            engine,
            `stdw [%r10-16], -1\nstdw [%r10-8], -1\nmov %r1, %r10\nadd %r1, -16\nmov %r2, 16\nlddw %r3, ${addr}\ncall 114\nldxdw %r0, [%r10-16]\nldxdw %r1, [%r10-8]\nor %r0, %r1\nexit`,
          ),
          0n,
        );
      }
      assert.equal(run(engine, strProgram(m.base)), 6n); // "hello\0"
      // 3 bytes 'AAA', no NUL, then the guard page: the kernel's -EFAULT
      // (tests/probe_read_str_kernel_test.ts compares every case with the kernel itself)
      assert.equal(run(engine, strProgram(m.base + page - 3n)), EFAULT);
    } finally {
      m.close();
    }
  });

  Deno.test(`safe_read/${engine}: probe_write_user to PROT_NONE and unmapped memory: -EFAULT`, () => {
    const m = layout();
    try {
      const page = BigInt(PAGE);
      const write = (addr: bigint) =>
        run(
          engine,
          `stdw [%r10-8], 7\nlddw %r1, ${addr}\nmov %r2, %r10\nadd %r2, -8\nmov %r3, 8\ncall 36\nexit`,
        );
      assert.equal(write(m.base + page), EFAULT);
      assert.equal(write(UNMAPPED), EFAULT);
      assert.equal(write(m.base + 8n), 0n);
      const word = bytesAt(m.base, 16);
      assert.equal(new DataView(word.buffer, word.byteOffset).getBigUint64(8, true), 7n);
    } finally {
      m.close();
    }
  });
}

/*
 * Another thread flips a page the programs read: "munmap" unmaps it and maps a zero page at the
 * address again (racing munmap), "mprotect" makes it PROT_NONE and readable again.
 */
for (const kind of ["munmap", "mprotect"]) {
  Deno.test(`safe_read: a page another thread keeps flipping (${kind}) while programs read it`, async () => {
    const addr = mapAnonymous(PAGE);
    bytesAt(addr, PAGE).fill(0x22);
    const worker = new Worker(new URL("../testing/page_flipper.ts", import.meta.url), {
      type: "module",
    });
    const done = new Promise<{ n: number; ours: boolean }>((resolve) =>
      worker.onmessage = (e) => resolve(e.data)
    );
    worker.postMessage({ addr: addr.toString(), ms: 400, kind });
    const seen = new Set<string>();
    const vms = ENGINES.map((engine) => {
      const vm = new Vm({ engine });
      vm.useRuntime();
      vm.load(assemble(readProgram(112, addr, 8)));
      return vm;
    });
    const until = performance.now() + 350;
    while (performance.now() < until) {
      for (const vm of vms) {
        const r = vm.exec();
        // -EFAULT with the buffer zeroed, the old bytes, or the fresh zero page
        if (r === EFAULT) seen.add("efault");
        else if (r === 0x2222222222222222n) seen.add("old");
        else if (r === 0n) seen.add("zero page");
        else seen.add(`bad ${r}`);
      }
    }
    const { n: flips, ours } = await done;
    worker.terminate();
    for (const vm of vms) vm.close();
    if (ours) unmap(addr, PAGE);
    assert.ok(flips > 0);
    // (once another thread of Deno took the address, what the reads return is its memory)
    if (ours) { for (const s of seen) assert.ok(!s.startsWith("bad"), s); }
  });
}

Deno.test("safe_read: a target's own SIGSEGV handler, set before or after ours, gets its faults; a default disposition still kills", async () => {
  const target = `${ROOT}build/tests/segv_chain`;
  const own = await new Deno.Command(target, { args: ["own"], stdout: "piped", stderr: "piped" })
    .output();
  const out = new TextDecoder().decode(own.stdout);
  assert.equal(own.code, 0, out + new TextDecoder().decode(own.stderr));
  assert.match(out, /probe_read: -14\nown handler: fault at 0x18\n/);
  const dfl = await new Deno.Command(target, {
    args: ["default"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(dfl.signal, "SIGSEGV");
  assert.match(new TextDecoder().decode(dfl.stdout), /probe_read: -14\n/);
  // the target sets its handler after ours: it reads it back and gets its faults, ours stays first
  const later = await new Deno.Command(target, {
    args: ["later"],
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const text = new TextDecoder().decode(later.stdout);
  assert.equal(later.code, 0, text + new TextDecoder().decode(later.stderr));
  assert.match(
    text,
    /probe_read: -14\nreads back its handler: 1\nprobe_read after: -14\nown handler: fault at 0x18\n/,
  );
});
