/**
 * The batch writer both modes share (csrc/proctrace/batch_fill.c), on records and pages made
 * here: columns, the arena, argc, a lapped page (argv reported lost, never wrong), a full
 * batch; and the RFC 3339 timestamps. No kernel needed.
 */
import assert from "node:assert/strict";
import { BatchFiller, batchLayout } from "../ffi/proctrace.ts";
import { ProcessBatch } from "../api/process_batch.ts";
import { rfc3339Nanos } from "../lib/time/rfc3339.ts";

const PAGE = 4096, PAGES_PER_CPU = 256, EVENT_SIZE = 72;

/** struct proctrace_event (bpf/proctrace.h). */
function record(
  f: {
    type: number;
    pid: number;
    ppid: number;
    ts: bigint;
    cpu?: number;
    seq?: number;
    len?: number;
    pages?: number;
    comm: string;
    exit?: number;
  },
): Uint8Array {
  const b = new Uint8Array(EVENT_SIZE);
  const v = new DataView(b.buffer);
  v.setUint32(0, f.type, true);
  v.setInt32(8, f.pid, true);
  v.setInt32(12, f.ppid, true);
  v.setBigUint64(16, f.ts, true);
  v.setInt32(32, f.exit ?? 0, true);
  v.setUint32(40, f.cpu ?? 0, true);
  v.setUint32(44, f.seq ?? 0, true);
  v.setUint32(48, f.len ?? 0, true);
  v.setUint32(52, f.pages ?? 0, true);
  b.set(new TextEncoder().encode(f.comm), 56);
  return b;
}

/** Writes `bytes` into CPU `cpu`'s pool from sequence number `seq` on; returns pages used. */
function writePages(pool: Uint8Array, cpu: number, seq: number, bytes: Uint8Array): number {
  const room = PAGE - 8;
  let n = 0;
  for (let done = 0; done < bytes.length; done += room, n++) {
    const s = seq + n;
    const at = (cpu * PAGES_PER_CPU + s % PAGES_PER_CPU) * PAGE;
    const chunk = bytes.subarray(done, done + room);
    const v = new DataView(pool.buffer, at, 8);
    v.setUint32(0, s, true);
    v.setUint32(4, chunk.length, true);
    pool.set(chunk, at + 8);
  }
  return n;
}

Deno.test("proctrace batch: records and pages into columns and the arena; a lapped page loses argv", () => {
  const capacity = 4, arena = 64 * 1024;
  const { size, offsets } = batchLayout(capacity, arena);
  const block = new ArrayBuffer(size);
  const filler = new BatchFiller(block, capacity, arena);
  const batch = new ProcessBatch(block, offsets, capacity, arena);
  const pool = new Uint8Array(2 * PAGES_PER_CPU * PAGE);

  const argv = ["/bin/echo", "é ü", "x".repeat(5000)];
  const bytes = new TextEncoder().encode(argv.join("\0") + "\0");
  const pages = writePages(pool, 1, 300, bytes);
  assert.equal(pages, 2);
  filler.begin(7n);
  assert.equal(
    filler.append(
      record({
        type: 1,
        pid: 10,
        ppid: 1,
        ts: 5n,
        cpu: 1,
        seq: 300,
        len: bytes.length,
        pages,
        comm: "echo",
      }),
      pool,
      512,
    ),
    1,
  );
  assert.equal(
    filler.append(record({ type: 2, pid: 10, ppid: 1, ts: 6n, comm: "echo", exit: 3 }), pool, 512),
    1,
  );
  // The pool lapped: the page now carries a later sequence number.
  writePages(pool, 0, 1 + PAGES_PER_CPU, new TextEncoder().encode("newer\0"));
  assert.equal(
    filler.append(
      record({ type: 1, pid: 11, ppid: 1, ts: 7n, cpu: 0, seq: 1, len: 6, pages: 1, comm: "old" }),
      pool,
      512,
    ),
    2,
  );
  assert.equal(
    filler.append(record({ type: 2, pid: 11, ppid: 1, ts: 8n, comm: "old" }), pool, 512),
    1,
  );
  assert.equal(
    filler.append(record({ type: 2, pid: 12, ppid: 1, ts: 9n, comm: "full" }), pool, 512),
    0,
  );

  assert.equal(batch.length, 4);
  assert.equal(batch.sequence, 7n);
  assert.deepEqual([...batch.pid.subarray(0, 4)], [10, 10, 11, 11]);
  assert.deepEqual([...batch.eventType.subarray(0, 4)], [1, 2, 1, 2]);
  assert.equal(batch.exitCode[1], 3);
  assert.deepEqual(batch.argv(0), argv);
  assert.equal(batch.argc[0], 3);
  assert.equal(batch.comm(0), "echo");
  assert.deepEqual(batch.argv(2), [], "lapped: no argv rather than another process's");
  assert.equal(batch.flags[2] & 4, 4, "PROCTRACE_F_ARGV_LOST");
  // Boot-relative stamps became wall clock: 5 ns after boot is now minus the uptime.
  const uptimeMs = Number(Deno.readTextFileSync("/proc/uptime").split(" ")[0]) * 1000;
  const bootMs = Number(batch.timestampNs[0] / 1_000_000n);
  assert.ok(Math.abs(bootMs - (Date.now() - uptimeMs)) < 1000, `boot at ${batch.timestamp(0)}`);
});

Deno.test("proctrace batch: RFC 3339 with nanoseconds", () => {
  assert.equal(rfc3339Nanos(0n), "1970-01-01T00:00:00.000000000Z");
  assert.equal(rfc3339Nanos(1_796_041_696_807_862_128n), "2026-11-30T12:28:16.807862128Z");
  assert.equal(rfc3339Nanos(1_000_000_001n), "1970-01-01T00:00:01.000000001Z");
});
