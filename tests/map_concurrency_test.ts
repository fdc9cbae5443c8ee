/**
 * Several processes x several threads updating one hash map and one array
 * through the JIT and the map helpers; and a process killed while it may
 * hold a map's lock must not block the others.
 */
import assert from "node:assert/strict";
import { DENO, freshSegment } from "./test_utils.ts";
import { incrementInHash } from "./fixtures/programs.ts";
import { Segment } from "../ffi/shm.ts";
import { assemble } from "../lib/isa/assembler.ts";
import { toHex } from "../lib/encoding/hex.ts";

const NAME = `bpftime_test_conc_${Deno.pid}`;
const PROCESSES = 3, THREADS = 2, RUNS = 20_000;

Deno.test(`maps: ${PROCESSES} processes x ${THREADS} threads x ${RUNS} atomic adds are exact`, async () => {
  using seg = freshSegment(NAME);
  const hash = seg.createMap({
    type: "hash",
    name: "per_key",
    keySize: 4,
    valueSize: 8,
    maxEntries: 16,
  });
  const total = seg.createMap({
    type: "array",
    name: "total",
    keySize: 4,
    valueSize: 8,
    maxEntries: 1,
  });
  const code = assemble(`
      ldxw %r6, [%r1]
      stxw [%r10-4], %r6
      ${incrementInHash(hash.id)}
      lddw %r1, map_value ${total.id}+0
      mov %r2, 1
      lock add [%r1], %r2
      mov %r0, 0
      exit
    fail:
      mov %r0, 1
      exit`);
  const script = new URL("./fixtures/map_stress_process.ts", import.meta.url).pathname;
  const outputs = await Promise.all(
    Array.from({ length: PROCESSES }, () =>
      new Deno.Command(DENO, {
        args: ["run", "-A", script, NAME, toHex(code), String(RUNS), String(THREADS)],
        stdout: "piped",
        stderr: "piped",
      }).output()),
  );
  for (const o of outputs) {
    assert.equal(o.code, 0, new TextDecoder().decode(o.stderr));
    assert.equal(new TextDecoder().decode(o.stdout).trim(), "0", "no run failed");
  }
  const expected = BigInt(PROCESSES * THREADS * RUNS);
  const value = (b: Uint8Array | undefined) => new DataView(b!.buffer).getBigUint64(0, true);
  assert.equal(value(total.lookup(new Uint8Array(4))), expected);
  let sum = 0n;
  for (const [, v] of hash.entries()) sum += value(v);
  assert.equal(sum, expected);
  assert.equal([...hash.keys()].length, 8);
  Segment.remove(NAME);
});

Deno.test("maps: kill -9 of a process inside map updates does not block the others", async () => {
  using seg = freshSegment(NAME);
  const m = seg.createMap({ type: "hash", name: "busy", keySize: 4, valueSize: 8, maxEntries: 64 });
  const shm = new URL("../ffi/shm.ts", import.meta.url).pathname;
  const writer = `
    import { Segment } from "${shm}";
    const m = Segment.open("${NAME}").map(${m.id});
    const k = new Uint8Array(4), v = new Uint8Array(8);
    console.log("ready");
    for (let i = 0;; i++) { k[0] = i & 63; v[0] = i; m.update(k, v); if ((i & 3) === 0) m.delete(k); }`;
  const probe = `
    import { Segment } from "${shm}";
    const m = Segment.open("${NAME}").map(${m.id});
    m.update(new Uint8Array([200, 0, 0, 0]), new Uint8Array(8));
    console.log([...m.keys()].length > 0 ? "ok" : "empty");`;
  for (let round = 0; round < 5; round++) {
    const child = new Deno.Command(DENO, { args: ["eval", writer], stdout: "piped" })
      .spawn();
    const reader = child.stdout.getReader();
    await reader.read(); // "ready"
    await new Promise((r) => setTimeout(r, 30 + 20 * round));
    child.kill("SIGKILL");
    await child.status;
    reader.releaseLock();
    const started = performance.now();
    const p = new Deno.Command(DENO, { args: ["eval", probe], stdout: "piped" }).spawn();
    const timer = setTimeout(() => p.kill("SIGKILL"), 5_000);
    const out = await p.output();
    clearTimeout(timer);
    const took = performance.now() - started;
    assert.equal(
      new TextDecoder().decode(out.stdout).trim(),
      "ok",
      `round ${round}: the next process got stuck`,
    );
    // Process start-up dominates; the lock itself must not cost a second.
    assert.ok(took < 1_000 + 1_500, `round ${round}: ${took.toFixed(0)} ms`);
  }
  Segment.remove(NAME);
});

Deno.test("maps: bpf_spin_lock makes a two-field update atomic across threads and processes", async () => {
  using seg = freshSegment(NAME);
  // value: { u32 lock; u32 pad; u64 a; u64 b } — a and b always move together
  const pair = seg.createMap({
    type: "array",
    name: "pair",
    keySize: 4,
    valueSize: 24,
    maxEntries: 1,
  });
  const code = assemble(`
      lddw %r6, map_value ${pair.id}+0
      mov %r1, %r6
      call 93
      ldxdw %r2, [%r6+8]
      add %r2, 1
      stxdw [%r6+8], %r2
      ldxdw %r3, [%r6+16]
      add %r3, 2
      stxdw [%r6+16], %r3
      mov %r1, %r6
      call 94
      mov %r0, 0
      exit`);
  const script = new URL("./fixtures/map_stress_process.ts", import.meta.url).pathname;
  const outputs = await Promise.all(
    Array.from({ length: 2 }, () =>
      new Deno.Command(DENO, {
        args: ["run", "-A", script, NAME, toHex(code), "20000", "2"],
        stdout: "piped",
        stderr: "piped",
      }).output()),
  );
  for (const o of outputs) assert.equal(o.code, 0, new TextDecoder().decode(o.stderr));
  const v = new DataView(pair.lookup(new Uint8Array(4))!.buffer);
  assert.equal(v.getBigUint64(8, true), 80_000n);
  assert.equal(v.getBigUint64(16, true), 160_000n);
  Segment.remove(NAME);
});

Deno.test("maps: BPF_F_LOCK updates and lookups take the value's spin lock and never copy it", () => {
  using seg = freshSegment(NAME);
  try {
    const m = seg.createMap({
      type: "hash",
      name: "locked",
      keySize: 4,
      valueSize: 16,
      maxEntries: 4,
    });
    const key = new Uint8Array(4);
    const value = (lock: number, a: bigint) => {
      const b = new Uint8Array(16);
      new DataView(b.buffer).setUint32(0, lock, true);
      new DataView(b.buffer).setBigUint64(8, a, true);
      return b;
    };
    assert.throws(() => m.update(key, value(0, 1n), 4n), /EINVAL/, "no spin lock declared yet");
    m.setSpinLock(0);
    m.update(key, value(0, 1n), 4n);
    m.update(key, value(1, 2n)); // a plain update never writes the lock word
    assert.deepEqual(m.lookup(key), value(0, 2n));
    assert.deepEqual(m.lookup(key, 4n), value(0, 2n));
    assert.throws(() => m.setSpinLock(14), /does not fit/);
  } finally {
    Segment.remove(NAME);
  }
});
