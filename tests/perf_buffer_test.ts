/** Perf event arrays: bpf_perf_event_output into per-CPU rings read like libbpf's perf_buffer. */
import assert from "node:assert/strict";
import { freshSegment } from "./test_utils.ts";
import { Segment } from "../ffi/shm.ts";
import { PerfBuffer } from "../ffi/perf_buffer.ts";
import { Vm } from "../ffi/vm.ts";
import { assemble } from "../lib/isa/assembler.ts";

const NAME = `bpftime_test_perf_${Deno.pid}`;

Deno.test("perf: samples arrive in order across ring wrap-around, losses are reported exactly", () => {
  using seg = freshSegment(NAME, 8);
  try {
    const events = seg.createMap({
      type: "perf_event_array",
      name: "events",
      keySize: 4,
      valueSize: 4,
      maxEntries: 2,
    });
    const seen: bigint[] = [];
    const lastPerRing = new Map<number, bigint>();
    let outOfOrder = 0;
    let lost = 0n;
    const perf = new PerfBuffer(seg, events.id, {
      onSample: (ring, data) => {
        const v = new DataView(data.buffer, data.byteOffset, 8).getBigUint64(0, true);
        if ((lastPerRing.get(ring) ?? -1n) >= v) outOfOrder++;
        lastPerRing.set(ring, v);
        seen.push(v);
      },
      onLost: (_cpu, n) => lost += n,
    });
    using vm = new Vm();
    vm.useRuntime(seg);
    // ctx: 20 bytes whose first 8 are a sequence number; output them to this CPU's ring
    vm.load(assemble(`
      mov %r4, %r1
      lddw %r2, map_fd ${events.id}
      lddw %r3, 0xffffffff
      mov %r5, 20
      call 25
      exit`));
    const ctx = new Uint8Array(20);
    const seq = new BigUint64Array(ctx.buffer, 0, 1);
    let produced = 0n, refused = 0n;
    // Keep up for a while (the ring wraps many times), then stop consuming to force losses.
    for (let i = 0n; i < 20_000n; i++) {
      seq[0] = i;
      if (vm.exec(ctx) === 0n) produced++;
      else refused++;
      if (i < 10_000n && i % 100n === 0n) perf.consume();
    }
    perf.consume();
    seq[0] = 99_999n; // after the reader caught up, one more sample carries the loss report
    assert.equal(vm.exec(ctx), 0n);
    perf.consume();
    assert.ok(refused > 0n, "the ring overflowed");
    assert.equal(lost, refused);
    assert.equal(BigInt(seen.length), produced + 1n);
    assert.equal(outOfOrder, 0, "each ring delivers its samples in order");
    assert.equal(new Set(seen).size, seen.length, "no sample twice");
  } finally {
    Segment.remove(NAME);
  }
});
