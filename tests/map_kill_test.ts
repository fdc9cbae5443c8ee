/**
 * Maps survive a killed writer: a process hammering a map (build/tests/map_hammer) is killed
 * with SIGKILL at random points, round after round; the next holder of the map's lock repairs
 * what the dead one left half done (map_ops.repair). Then the map must be whole: iteration
 * agrees with itself, no element is lost for good (the map still holds max_entries), and
 * updates keep working, without a crash.
 */
import assert from "node:assert/strict";
import { type BpfMap, Segment } from "../ffi/shm.ts";
import { freshSegment, ROOT } from "./test_utils.ts";

const HAMMER = `${ROOT}build/tests/map_hammer`;
const ROUNDS = 12;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Kills a hammering writer at a random point, ROUNDS times; `check` runs after each kill. */
async function hammerAndKill(seg: Segment, map: BpfMap, mode: string, check: () => void) {
  const lib = Deno.env.get("BPFTIME_LIB");
  const env: Record<string, string> = lib ? { LD_LIBRARY_PATH: lib.replace(/\/[^/]*$/, "") } : {};
  for (let round = 0; round < ROUNDS; round++) {
    const child = new Deno.Command(HAMMER, {
      args: [seg.name, String(map.id), mode, String(round + 1)],
      env,
      stdout: "null",
      stderr: "piped",
    }).spawn();
    await sleep(20 + Math.random() * 60);
    child.kill("SIGKILL");
    const status = await child.status;
    assert.equal(status.signal, "SIGKILL", `the writer ended by itself (${status.code})`);
    check();
  }
}

const u32 = (n: number) => new Uint8Array(new Uint32Array([n]).buffer);
const u64 = (n: number) => new Uint8Array(new BigUint64Array([BigInt(n)]).buffer);

/** Keys by iteration, at most `limit` (a cycle would go on for ever), checked unique. */
function keysOf(map: BpfMap, limit: number): string[] {
  const seen: string[] = [];
  for (const k of map.keys()) {
    const s = k.join(",");
    assert.ok(!seen.includes(s), `key ${s} twice in one iteration`);
    seen.push(s);
    assert.ok(seen.length <= limit, "iteration does not end");
  }
  return seen;
}

for (const type of ["hash", "lru_hash"] as const) {
  Deno.test(`map kill: ${type}: writers killed mid-update lose no element for good`, async () => {
    using seg = freshSegment(`t_mapkill_${type}_${Deno.pid}`);
    const MAX = 64;
    const m = seg.createMap({ type, name: "m", keySize: 4, valueSize: 32, maxEntries: MAX });
    await hammerAndKill(seg, m, "hash", () => {
      try {
        m.update(u32(5000), new Uint8Array(32)); // takes the lock: the repair runs here
        assert.ok(m.delete(u32(5000)));
      } catch (e) {
        if (type !== "hash" || !/E2BIG/.test(String(e))) throw e; // a full hash map refuses
      }
      assert.ok(keysOf(m, MAX).length <= MAX);
    });
    // Every element is back in use or free: the map holds MAX fresh keys again.
    for (const k of keysOf(m, MAX)) m.delete(new Uint8Array(k.split(",").map(Number)));
    assert.equal(keysOf(m, MAX).length, 0);
    for (let i = 0; i < MAX; i++) m.update(u32(1000 + i), new Uint8Array(32).fill(i));
    assert.equal(keysOf(m, MAX).length, MAX);
    for (let i = 0; i < MAX; i++) assert.equal(m.lookup(u32(1000 + i))?.[0], i);
    if (type === "hash") {
      assert.throws(() => m.update(u32(9999), new Uint8Array(32)), /E2BIG|full|No space|7/);
    } else {
      m.update(u32(9999), new Uint8Array(32)); // evicts the oldest
      assert.equal(keysOf(m, MAX).length, MAX);
      assert.ok(m.lookup(u32(9999)));
    }
  });
}

Deno.test("map kill: lpm_trie: writers killed mid-update leave every entry usable", async () => {
  using seg = freshSegment(`t_mapkill_lpm_${Deno.pid}`);
  const MAX = 32;
  const m = seg.createMap({
    type: "lpm_trie",
    name: "m",
    keySize: 8,
    valueSize: 8,
    maxEntries: MAX,
    flags: 1,
  });
  const key = (plen: number, a: number) =>
    new Uint8Array([...new Uint8Array(new Uint32Array([plen]).buffer), 192, 168, a, 0]);
  await hammerAndKill(seg, m, "lpm", () => {
    assert.ok(keysOf(m, MAX).length <= MAX);
  });
  for (const k of keysOf(m, MAX)) m.delete(new Uint8Array(k.split(",").map(Number)));
  for (let i = 0; i < MAX; i++) m.update(key(24, i), u64(i));
  assert.equal(keysOf(m, MAX).length, MAX);
  assert.equal(m.lookup(key(32, 7))?.[0], 7);
  assert.throws(() => m.update(key(24, 200), u64(1)));
});

for (const type of ["queue", "stack"] as const) {
  Deno.test(`map kill: ${type}: writers killed mid-push or pop leave a whole ring`, async () => {
    using seg = freshSegment(`t_mapkill_${type}_${Deno.pid}`);
    const MAX = 16;
    const m = seg.createMap({ type, name: "m", keySize: 0, valueSize: 32, maxEntries: MAX });
    await hammerAndKill(seg, m, "queue", () => {
      assert.ok(m.values().length <= MAX);
    });
    while (m.pop()) { /* drain */ }
    for (let i = 0; i < MAX; i++) m.push(new Uint8Array(32).fill(i));
    assert.throws(() => m.push(new Uint8Array(32)));
    assert.deepEqual(m.values().map((v) => v[0]), [...Array(MAX).keys()]);
  });
}
