/** Kernel helpers and maps used from eBPF programs, on every engine. */
import assert from "node:assert/strict";
import { assemble } from "../lib/isa/assembler.ts";
import { disassemble } from "../lib/isa/disassembler.ts";
import { type Engine, Vm } from "../ffi/vm.ts";
import { Segment } from "../ffi/shm.ts";
import { DENO, freshSegment, ROOT } from "./test_utils.ts";
import { incrementInHash } from "./fixtures/programs.ts";

const ENGINES: Engine[] = ["interp", "jit", "llvm"];
const SEGMENT = `bpftime_test_helpers_${Deno.pid}`;
const u32 = (n: number) => new Uint8Array(new Uint32Array([n]).buffer);
const u64 = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset).getBigUint64(0, true);

function withSegment(fn: (seg: Segment) => void) {
  const seg = freshSegment(SEGMENT);
  try {
    fn(seg);
  } finally {
    seg.close();
    Segment.remove(SEGMENT);
  }
}

function runWith(engine: Engine, seg: Segment, source: string, mem?: Uint8Array<ArrayBuffer>) {
  using vm = new Vm({ engine });
  vm.useRuntime(seg);
  vm.load(assemble(source));
  return vm.exec(mem);
}

Deno.test("asm: map references assemble and disassemble", () => {
  const text = "lddw %r1, map_fd 3\nlddw %r2, map_value 4+16\nexit";
  assert.equal(disassemble(assemble(text)), text);
});

for (const engine of ENGINES) {
  Deno.test(`helpers/${engine}: counting in hash and array maps through the map helpers`, () => {
    withSegment((seg) => {
      const counts = seg.createMap({
        type: "hash",
        name: "counts",
        keySize: 4,
        valueSize: 8,
        maxEntries: 8,
      });
      const total = seg.createMap({
        type: "array",
        name: "total",
        keySize: 4,
        valueSize: 8,
        maxEntries: 1,
      });
      // key = ctx byte 0; counts[key] += 1 (insert on first use); total[0] += key
      const program = `
        ldxb %r6, [%r1]
        stxw [%r10-4], %r6
        ${incrementInHash(counts.id)}
        lddw %r1, map_value ${total.id}+0
        lock add [%r1], %r6
        mov %r0, 0
        exit
      fail:
        mov %r0, 1
        exit`;
      for (const key of [1, 2, 2, 3, 3, 3]) {
        assert.equal(runWith(engine, seg, program, new Uint8Array([key])), 0n);
      }
      assert.deepEqual(
        [1, 2, 3].map((k) => u64(counts.lookup(u32(k))!)),
        [1n, 2n, 3n],
      );
      assert.equal(u64(total.lookup(u32(0))!), 14n);
    });
  });

  Deno.test(`helpers/${engine}: bad pointers handed to helpers are refused, never followed`, () => {
    withSegment((seg) => {
      const m = seg.createMap({ type: "hash", name: "m", keySize: 4, valueSize: 8, maxEntries: 2 });
      // lookup with a wild key pointer -> NULL; a wild "map" -> NULL; update with wild value -> -EINVAL
      assert.equal(
        runWith(engine, seg, `lddw %r1, map_fd ${m.id}\nlddw %r2, 0xdead0000\ncall 1\nexit`),
        0n,
      );
      assert.equal(
        runWith(engine, seg, `lddw %r1, 0x1000\nmov %r2, %r10\nadd %r2, -8\ncall 1\nexit`),
        0n,
      );
      assert.equal(
        runWith(
          engine,
          seg,
          `stw [%r10-4], 1\nlddw %r1, map_fd ${m.id}\nmov %r2, %r10\nadd %r2, -4\nlddw %r3, 0x10\nmov %r4, 0\ncall 2\nexit`,
        ),
        BigInt.asUintN(64, -22n),
      );
      // probe_read from a bad address: -EFAULT and a zeroed buffer
      assert.equal(
        runWith(
          engine,
          seg,
          `mov %r1, %r10\nadd %r1, -8\nmov %r2, 8\nlddw %r3, 0x10\ncall 4\nexit`,
        ),
        BigInt.asUintN(64, -14n),
      );
    });
  });

  Deno.test(`helpers/${engine}: pid/tgid, comm, time and probe_read report this process`, () => {
    withSegment((seg) => {
      const tgid = BigInt(Deno.pid);
      assert.equal(runWith(engine, seg, "call 14\nrsh %r0, 32\nexit"), tgid);
      const comm = new Uint8Array(16);
      runWith(engine, seg, "mov %r6, %r1\nmov %r2, 16\ncall 16\nexit", comm);
      const name = new TextDecoder().decode(comm.subarray(0, comm.indexOf(0)));
      assert.ok(name.length > 0 && name.length < 16, `comm '${name}'`);
      const t0 = runWith(engine, seg, "call 5\nexit");
      const until = performance.now() + 20;
      while (performance.now() < until) { /* wait 20 ms */ }
      const elapsed = runWith(engine, seg, "call 5\nexit") - t0;
      assert.ok(elapsed >= 19_000_000n && elapsed < 2_000_000_000n, `ktime advanced ${elapsed} ns`);
      // probe_read of the context into the stack, then back out
      const mem = new Uint8Array([9, 8, 7, 6, 5, 4, 3, 2]);
      const r = runWith(
        engine,
        seg,
        "mov %r3, %r1\nmov %r1, %r10\nadd %r1, -8\nmov %r2, 8\ncall 4\nldxdw %r0, [%r10-8]\nexit",
        mem,
      );
      assert.equal(r, 0x0203040506070809n);
    });
  });
}

Deno.test("helpers: bpf_trace_printk writes trace_pipe-style lines to BPFTIME_LOG_OUTPUT", async () => {
  const log = await Deno.makeTempFile();
  const probe = `
    import { Vm } from "${ROOT}ffi/vm.ts";
    import { assemble } from "${ROOT}lib/isa/assembler.ts";
    using vm = new Vm();
    vm.useRuntime();
    // "n=%d s=%s\\0" on the stack, then bpf_trace_printk(fmt, 10, 42, "hi")
    vm.load(assemble(\`
      lddw %r1, 0x253d732064253d6e
      stxdw [%r10-16], %r1
      sth [%r10-8], 0x73
      stw [%r10-24], 0x6968
      mov %r1, %r10
      add %r1, -16
      mov %r2, 10
      mov %r3, 42
      mov %r4, %r10
      add %r4, -24
      call 6
      exit\`));
    console.log(vm.exec());
  `;
  const out = await new Deno.Command(DENO, {
    args: ["eval", "--quiet", probe],
    env: { BPFTIME_LOG_OUTPUT: log },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const text = await Deno.readTextFile(log);
  assert.match(
    text,
    /^\s*\S+-\d+\s+\[\d{3}\] d\.\.31\s+\d+\.\d{6}: bpf_trace_printk: n=42 s=hi\n$/,
  );
  assert.equal(new TextDecoder().decode(out.stdout).trim(), "9n"); // bytes written
  await Deno.remove(log);
});

for (const engine of ENGINES) {
  Deno.test(`helpers/${engine}: get_func_ip and get_attach_cookie report the attachment`, () => {
    using vm = new Vm({ engine });
    vm.useRuntime();
    vm.load(assemble("call 173\nmov %r6, %r0\ncall 174\nxor %r0, %r6\nexit"));
    assert.equal(vm.exec(), 0n, "0 outside a probe");
    assert.equal(vm.execAttached(undefined, { funcIp: 0x401000n, cookie: 0x77n }), 0x401077n);
  });
}

for (const engine of ENGINES) {
  Deno.test(`helpers/${engine}: get_stackid and get_stack walk the probe's frame pointers`, () => {
    withSegment((seg) => {
      const stacks = seg.createMap({
        type: "stack_trace",
        name: "stacks",
        keySize: 4,
        valueSize: 8 * 8,
        maxEntries: 64,
      });
      // Two frames: [saved rbp, return address] pairs, callers higher up.
      const frames = new Uint8Array(256);
      const at = Vm.addressOf(frames);
      const fv = new DataView(frames.buffer);
      fv.setBigUint64(64, at + 128n, true);
      fv.setBigUint64(72, 0x2222n, true);
      fv.setBigUint64(128, 0n, true);
      fv.setBigUint64(136, 0x3333n, true);
      const regs = new Uint8Array(168); // struct pt_regs
      const rv = new DataView(regs.buffer);
      rv.setBigUint64(32, at + 64n, true); // rbp
      rv.setBigUint64(128, 0x1111n, true); // ip
      using vm = new Vm({ engine });
      vm.useRuntime(seg);
      vm.load(assemble(`lddw %r2, map_fd ${stacks.id}\nmov %r3, 256\ncall 27\nexit`));
      const id = vm.exec(regs);
      assert.ok(id < 64n, `stack id ${id}`);
      assert.equal(vm.exec(regs), id, "the same stack keeps its id");
      const ips = new BigUint64Array(
        stacks.lookup(new Uint8Array(new Uint32Array([Number(id)]).buffer))!.buffer,
      );
      assert.deepEqual([...ips], [0x1111n, 0x2222n, 0x3333n, 0n, 0n, 0n, 0n, 0n]);
      using vm2 = new Vm({ engine });
      vm2.useRuntime(seg);
      // bpf_get_stack into the stack, skipping one frame; r0 = bytes written << 32 | ips[0]
      vm2.load(assemble(`
        mov %r2, %r10
        add %r2, -32
        mov %r3, 32
        mov %r4, 257
        call 67
        lsh %r0, 32
        ldxdw %r1, [%r10-32]
        or %r0, %r1
        exit`));
      assert.equal(vm2.exec(regs), (16n << 32n) | 0x2222n);
      vm2.close();
      // No kernel stacks in userspace.
      using vm3 = new Vm({ engine });
      vm3.useRuntime(seg);
      vm3.load(assemble(`lddw %r2, map_fd ${stacks.id}\nmov %r3, 0\ncall 27\nexit`));
      assert.equal(vm3.exec(regs), BigInt.asUintN(64, -14n));
    });
  });
}
