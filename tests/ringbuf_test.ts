/** Ring buffers: kernel record layout, wrap-around, drops counted, blocking consumers, across processes. */
import assert from "node:assert/strict";
import { Segment } from "../ffi/shm.ts";
import { RingBuffer } from "../ffi/ringbuf.ts";
import { Vm } from "../ffi/vm.ts";
import { assemble } from "../lib/isa/assembler.ts";
import { DENO, freshSegment } from "./test_utils.ts";

const NAME = `bpftime_test_ringbuf_${Deno.pid}`;
const PRODUCER = new URL("./fixtures/ringbuf_producer.ts", import.meta.url).pathname;

const fresh = () => freshSegment(NAME, 16);

/** A ring buffer of `size` bytes and its consumer. */
function ring(seg: Segment, size: number) {
  const m = seg.createMap({
    type: "ringbuf",
    name: "rb",
    keySize: 0,
    valueSize: 0,
    maxEntries: size,
  });
  return { id: m.id, rb: new RingBuffer(seg, m.id) };
}

/** tests/fixtures/ringbuf_producer.ts in its own process. */
function producer(mapId: number, count: number, mode: "retry" | "drop", tag?: number) {
  const tagArg = tag === undefined ? [] : [String(tag)];
  return new Deno.Command(DENO, {
    args: ["run", "-A", PRODUCER, NAME, String(mapId), String(count), mode, ...tagArg],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

const seqOf = (r: Uint8Array) => new DataView(r.buffer, r.byteOffset, 8).getBigUint64(0, true);

Deno.test("ringbuf: records of every size wrap around in order; discards are skipped", () => {
  using seg = fresh();
  try {
    const { id, rb } = ring(seg, 4096);
    using vm = new Vm();
    vm.useRuntime(seg);
    // ctx: [u32 size][u32 discard][payload...]; reserve size bytes, copy payload, submit or discard
    vm.load(assemble(`
        mov %r6, %r1
        ldxw %r7, [%r6]
        lddw %r1, map_fd ${id}
        mov %r2, %r7
        mov %r3, 0
        call 131
        jeq %r0, 0, full
        mov %r8, %r0
        mov %r1, %r8
        mov %r2, %r7
        mov %r3, %r6
        add %r3, 8
        call 4
        ldxw %r1, [%r6+4]
        jne %r1, 0, discard
        mov %r1, %r8
        mov %r2, 0
        call 132
        mov %r0, 0
        exit
      discard:
        mov %r1, %r8
        mov %r2, 0
        call 133
        mov %r0, 0
        exit
      full:
        mov %r0, 1
        exit`));
    const expected: Uint8Array[] = [];
    let seq = 0;
    for (let round = 0; round < 3000; round++) {
      const size = 1 + ((round * 37) % 300);
      const ctx = new Uint8Array(8 + size);
      const view = new DataView(ctx.buffer);
      view.setUint32(0, size, true);
      const discard = round % 7 === 3;
      view.setUint32(4, discard ? 1 : 0, true);
      for (let i = 0; i < size; i++) ctx[8 + i] = (seq + i) & 0xff;
      assert.equal(
        vm.exec(ctx),
        0n,
        `round ${round}: reserve failed with ${rb.available} bytes pending`,
      );
      if (!discard) expected.push(ctx.slice(8));
      seq++;
      if (round % 5 === 4) {
        rb.consume((r) => {
          assert.deepEqual(r, expected.shift());
        });
        assert.equal(expected.length, 0);
      }
    }
    rb.consume((r) => assert.deepEqual(r, expected.shift()));
    assert.equal(expected.length, 0);
    assert.equal(rb.dropped, 0n);
    // bpf_ringbuf_query: ring size and available data
    vm.close();
  } finally {
    Segment.remove(NAME);
  }
});

Deno.test("ringbuf: 10 million records from a producer process arrive in order, none lost, refusals counted", async () => {
  using seg = fresh();
  try {
    const { id, rb } = ring(seg, 1 << 20);
    const COUNT = 10_000_000;
    const child = producer(id, COUNT, "retry");
    let next = 0n, bad = 0;
    while (next < BigInt(COUNT)) {
      await rb.poll((r) => {
        const v = seqOf(r);
        if (v !== next) bad++;
        next = v + 1n;
      }, 1000);
    }
    const out = await child.output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    assert.equal(bad, 0, "records out of order or lost");
    assert.equal(next, BigInt(COUNT));
    // A reservation refused while the ring was full counts as a drop, and was retried: the
    // ring's count and the producer's agree (0 when the consumer kept up all along).
    assert.equal(rb.dropped, BigInt(new TextDecoder().decode(out.stdout).trim()));
  } finally {
    Segment.remove(NAME);
  }
});

Deno.test("ringbuf: producer processes reserving at once: each one's records arrive in its order, none lost", async () => {
  using seg = fresh();
  try {
    // A small ring, records of 16, 32 and 48 bytes: producers race for reservations and fillers.
    const { id, rb } = ring(seg, 1 << 14);
    const PRODUCERS = 4, COUNT = 100_000;
    const children = Array.from(
      { length: PRODUCERS },
      (_, tag) => producer(id, COUNT, "retry", tag),
    );
    const next = new Array<bigint>(PRODUCERS).fill(0n);
    let seen = 0, bad = 0, progressAt = performance.now();
    while (seen < PRODUCERS * COUNT) {
      // 0 records also when the next one is still being written (busy): only a long stall fails.
      const got = await rb.poll((r) => {
        const v = seqOf(r), tag = Number(v >> 56n), n = v & ((1n << 56n) - 1n);
        if (tag >= PRODUCERS || n !== next[tag]) bad++;
        else next[tag] = n + 1n;
        seen++;
      }, 1000);
      if (got > 0) progressAt = performance.now();
      assert.ok(performance.now() - progressAt < 10_000, `no record for 10 s after ${seen}`);
    }
    for (const c of children) {
      const out = await c.output();
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    }
    assert.equal(bad, 0, "records out of order, lost or damaged");
    // Refused reservations (a full ring) were retried: none is missing.
    assert.deepEqual(next, new Array(PRODUCERS).fill(BigInt(COUNT)));
  } finally {
    Segment.remove(NAME);
  }
});

Deno.test("ringbuf: a consumer that does not keep up loses records cleanly and counts them", async () => {
  using seg = fresh();
  try {
    const { id, rb } = ring(seg, 65536);
    const COUNT = 100_000;
    const out = await producer(id, COUNT, "drop").output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const refused = BigInt(new TextDecoder().decode(out.stdout).trim());
    let received = 0n, next = 0n;
    rb.consume((r) => {
      assert.equal(seqOf(r), next);
      next++;
      received++;
    });
    // Like the kernel, producers stay at most size - 1 bytes ahead: 4095 records of 16 bytes.
    assert.equal(received, 4095n, "the ring held exactly what fit");
    assert.equal(rb.dropped, refused);
    assert.equal(received + refused, BigInt(COUNT));
  } finally {
    Segment.remove(NAME);
  }
});

Deno.test("ringbuf: an idle consumer sleeps in the kernel, not in a loop", async () => {
  using seg = fresh();
  try {
    const { id, rb } = ring(seg, 4096);
    const before = process.cpuUsage();
    const started = performance.now();
    const n = await rb.poll(() => {}, 300);
    const waited = performance.now() - started;
    const cpu = process.cpuUsage(before);
    assert.equal(n, 0);
    assert.ok(waited >= 250, `returned after ${waited.toFixed(0)} ms`);
    const cpuMs = (cpu.user + cpu.system) / 1000;
    assert.ok(
      cpuMs < 60,
      `idle consumer used ${cpuMs.toFixed(1)} ms of CPU in ${waited.toFixed(0)} ms`,
    );
    // A submit wakes it promptly.
    using vm = new Vm();
    vm.useRuntime(seg);
    vm.load(
      assemble(
        `stdw [%r10-8], 5\nlddw %r1, map_fd ${id}\nmov %r2, %r10\nadd %r2, -8\nmov %r3, 8\nmov %r4, 0\ncall 130\nexit`,
      ),
    );
    const wakeStart = performance.now();
    const waiting = rb.poll(() => {}, 5000);
    setTimeout(() => vm.exec(), 50);
    assert.equal(await waiting, 1);
    assert.ok(performance.now() - wakeStart < 2000);
  } finally {
    Segment.remove(NAME);
  }
});

Deno.test("ringbuf: kill -9 of producers inside reservations does not wedge the others", async () => {
  using seg = fresh();
  try {
    const { id, rb } = ring(seg, 4096);
    for (let round = 0; round < 5; round++) {
      // A full ring and "retry": the producer takes the reservation lock in a tight loop.
      const child = producer(id, 1_000_000_000, "retry");
      await new Promise((r) => setTimeout(r, 150 + 30 * round));
      child.kill("SIGKILL");
      await child.status;
      rb.consume(() => {}); // make room
      using vm = new Vm();
      vm.useRuntime(seg);
      vm.load(
        assemble(
          `stdw [%r10-8], 1\nlddw %r1, map_fd ${id}\nmov %r2, %r10\nadd %r2, -8\nmov %r3, 8\nmov %r4, 0\ncall 130\nexit`,
        ),
      );
      const started = performance.now();
      assert.equal(vm.exec(), 0n, `round ${round}`);
      assert.ok(performance.now() - started < 1000, `round ${round}: took too long`);
    }
  } finally {
    Segment.remove(NAME);
  }
});

Deno.test("ringbuf: the kernel's mmap layout maps the data twice over the same pages", () => {
  using seg = fresh();
  try {
    const { id, rb } = ring(seg, 4096);
    const view = rb.kernelLayout();
    assert.equal(view.length, 2 * 4096 + 2 * 4096);
    using vm = new Vm();
    vm.useRuntime(seg);
    vm.load(
      assemble(
        `stdw [%r10-8], 0x5a5a\nlddw %r1, map_fd ${id}\nmov %r2, %r10\nadd %r2, -8\nmov %r3, 8\nmov %r4, 0\ncall 130\nexit`,
      ),
    );
    assert.equal(vm.exec(), 0n);
    const dv = new DataView(view.buffer);
    assert.equal(dv.getBigUint64(4096, true), 16n, "producer_pos on the producer page");
    assert.equal(dv.getUint32(8192, true), 8, "the record's header, not busy");
    assert.equal(dv.getBigUint64(8192 + 8, true), 0x5a5an);
    assert.equal(
      dv.getBigUint64(8192 + 4096 + 8, true),
      0x5a5an,
      "the same bytes again in the second copy",
    );
    dv.setBigUint64(0, 16n, true); // consume through the consumer page
    assert.equal(rb.available, 0n);
  } finally {
    Segment.remove(NAME);
  }
});
