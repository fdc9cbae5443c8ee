/**
 * Maps differential test against the kernel, maps programs write events
 * to: ring buffer, perf event array and stack traces.
 */
import assert from "node:assert/strict";
import { Segment } from "../ffi/shm.ts";
import { assemble } from "../lib/isa/assembler.ts";
import { MAP_TYPES } from "../lib/maps/types.ts";
import {
  BPF_F_SLEEPABLE,
  BPF_PROG_TYPE_SYSCALL,
  KernelMap,
  kernelProgLoad,
} from "../testing/kernel_bpf.ts";
import { kernel, mapDiffSegment, ours, retrying, u32v } from "./maps_kernel_diff_env.ts";

const SEGMENT = mapDiffSegment("events");

Deno.test({
  name: "maps kernel diff: ring buffer records, discards and a full ring match the kernel's",
  ignore: !kernel.ok,
  fn: async () => {
    const { kernelRingRecords, kernelTestRun } = await import("../testing/kernel_bpf.ts");
    const { RingBuffer } = await import("../ffi/ringbuf.ts");
    const { Vm } = await import("../ffi/vm.ts");
    const SIZE = 4096;
    // 300 reservations of 8, 24 or 40 bytes; every 5th discarded; r0 = reservations that fit.
    const program = (ring: string) =>
      assemble(`
        mov %r6, 0
        mov %r7, 0
      loop:
        mov %r8, %r6
        mod %r8, 3
        ${ring}
        mov %r3, 0
        jeq %r8, 0, size8
        jeq %r8, 1, size24
        mov %r2, 40
        ja reserve
      size8:
        mov %r2, 8
        ja reserve
      size24:
        mov %r2, 24
      reserve:
        call 131
        jeq %r0, 0, next
        add %r7, 1
        stxb [%r0], %r6
        mov %r1, %r0
        mov %r2, 0
        mov %r9, %r6
        mod %r9, 5
        jeq %r9, 0, discard
        call 132
        ja next
      discard:
        call 133
      next:
        add %r6, 1
        jlt %r6, 300, loop
        mov %r0, %r7
        exit`);
    using seg = Segment.open(SEGMENT, { create: true, sizeMb: 4 });
    const k = KernelMap.create(MAP_TYPES.ringbuf, 0, 0, SIZE);
    try {
      const prog = kernelProgLoad(BPF_PROG_TYPE_SYSCALL, program(`lddw %r1, map_fd ${k.fd}`), {
        flags: BPF_F_SLEEPABLE,
      });
      const kernelFit = kernelTestRun(prog, new Uint8Array(8));
      prog.close();
      const mine = seg.createMap({ type: "ringbuf", keySize: 0, valueSize: 0, maxEntries: SIZE });
      using vm = new Vm();
      vm.useRuntime(seg);
      vm.load(program(`lddw %r1, map_fd ${mine.id}`));
      assert.equal(Number(vm.exec()), kernelFit, "the same reservations fit");
      const ours: Uint8Array[] = [];
      new RingBuffer(seg, mine.id).consume((r) => ours.push(r.slice()));
      const theirs = kernelRingRecords(k, SIZE);
      assert.ok(theirs.length > 10 && theirs.length < 300, `${theirs.length} records`);
      assert.deepEqual(ours, theirs);
    } finally {
      k.close();
      Segment.remove(SEGMENT);
    }
  },
});

Deno.test({
  name: "maps kernel diff: stack trace maps answer bpf(2) like the kernel's",
  ignore: !kernel.ok,
  fn: () => {
    using seg = Segment.open(SEGMENT, { create: true, sizeMb: 4 });
    const k = KernelMap.create(MAP_TYPES.stack_trace, 4, 8 * 16, 32);
    try {
      const mine = seg.createMap({
        type: "stack_trace",
        keySize: 4,
        valueSize: 8 * 16,
        maxEntries: 32,
      });
      const u = ours(seg, mine.id);
      const out = () => new Uint8Array(8 * 16);
      assert.equal(u.lookup(u32v(3), out()), retrying(() => k.lookup(u32v(3), out())));
      assert.equal(u.delete(u32v(3)), retrying(() => k.delete(u32v(3))));
      assert.equal(
        u.nextKey(null, new Uint8Array(4)),
        retrying(() => k.nextKey(null, new Uint8Array(4))),
      );
      assert.equal(u.update(u32v(1), out(), 0n), retrying(() => k.update(u32v(1), out(), 0n)));
    } finally {
      k.close();
      Segment.remove(SEGMENT);
    }
  },
});

Deno.test({
  name: "maps kernel diff: perf event array samples, padding and a full ring match the kernel's",
  ignore: !kernel.ok,
  fn: async () => {
    const { KernelPerfOutput, kernelTestRunData } = await import("../testing/kernel_bpf.ts");
    const { PerfBuffer } = await import("../ffi/perf_buffer.ts");
    const { Vm } = await import("../ffi/vm.ts");
    const cpus = (await import("node:os")).cpus().length;
    // 4,000 samples of 8 bytes (i) to the current CPU's ring: more than 64 KiB of records.
    const program = (map: string) =>
      assemble(`
        mov %r6, %r1
        mov %r7, 0
      loop:
        stxdw [%r10-8], %r7
        mov %r1, %r6
        ${map}
        lddw %r3, 0xffffffff
        mov %r4, %r10
        add %r4, -8
        mov %r5, 8
        call 25
        add %r7, 1
        jlt %r7, 4000, loop
        mov %r0, 0
        exit`);
    using seg = Segment.open(SEGMENT, { create: true, sizeMb: 8 });
    const rings = Array.from({ length: cpus }, (_, cpu) => KernelPerfOutput.open(cpu));
    const k = KernelMap.create(MAP_TYPES.perf_event_array, 4, 4, cpus);
    try {
      rings.forEach((r, cpu) => assert.equal(k.update(u32v(cpu), u32v(r.fd), 0n), 0));
      const prog = kernelProgLoad(3, /* SCHED_CLS */ program(`lddw %r2, map_fd ${k.fd}`));
      kernelTestRunData(prog, new Uint8Array(64));
      prog.close();
      const theirs = rings.flatMap((r) => r.samples());
      const mine = seg.createMap({
        type: "perf_event_array",
        keySize: 4,
        valueSize: 4,
        maxEntries: cpus,
      });
      const ours: Uint8Array[] = [];
      const perf = new PerfBuffer(seg, mine.id, { onSample: (_c, d) => ours.push(d.slice()) });
      using vm = new Vm();
      vm.useRuntime(seg);
      vm.load(program(`lddw %r2, map_fd ${mine.id}`));
      assert.equal(vm.exec(new Uint8Array(64)), 0n);
      perf.consume();
      assert.equal(ours.length, theirs.length, "the same number of samples fit");
      assert.ok(theirs.length > 1000 && theirs.length < 4000, `${theirs.length} samples`);
      assert.deepEqual(ours, theirs, "same raw data, padding included");
    } finally {
      k.close();
      for (const r of rings) r.close();
      Segment.remove(SEGMENT);
    }
  },
});
