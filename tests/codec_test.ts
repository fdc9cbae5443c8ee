/** Typed views of maps: integers and C-layout structs. */
import assert from "node:assert/strict";
import { Segment } from "../ffi/shm.ts";
import { cstring, decode, encode, struct, u16, u32, u64, u8 } from "../lib/maps/codec.ts";
import { typed } from "../api/typed_map.ts";

Deno.test("codec: structs use C layout (natural alignment, padded size)", () => {
  const s = struct({ a: u8, b: u32, c: u16, d: u64 });
  assert.equal(s.size, 24);
  const bytes = encode(s, { a: 1, b: 2, c: 3, d: 4n });
  assert.deepEqual([...bytes.subarray(0, 12)], [1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0]);
  assert.deepEqual(decode(s, bytes), { a: 1, b: 2, c: 3, d: 4n });
  assert.equal(decode(cstring(8), encode(cstring(8), "bashreadline")), "bashrea");
});

Deno.test("codec: a typed view of a hash map and a per-CPU array", () => {
  const name = `bpftime_test_codec_${Deno.pid}`;
  using seg = Segment.open(name, { create: true, sizeMb: 2 });
  try {
    const stats = struct({ calls: u64, bytes: u64 });
    const m = typed(
      seg.createMap({ type: "hash", name: "stats", keySize: 4, valueSize: 16, maxEntries: 8 }),
      u32,
      stats,
    );
    m.set(7, { calls: 1n, bytes: 64n });
    m.set(9, { calls: 2n, bytes: 8n });
    assert.deepEqual(m.get(7), { calls: 1n, bytes: 64n });
    assert.deepEqual([...m.keys()].sort(), [7, 9]);
    assert.equal(m.delete(9), true);
    assert.deepEqual([...m.entries()], [[7, { calls: 1n, bytes: 64n }]]);
    const pc = seg.createMap({
      type: "percpu_array",
      name: "pc",
      keySize: 4,
      valueSize: 8,
      maxEntries: 1,
    });
    const view = typed(pc, u32, u64);
    view.set(0, 5n);
    assert.deepEqual(view.getPerCpu(0), Array(pc.info.ncpus).fill(5n));
    assert.throws(() => typed(pc, u32, u32), /codecs are 4\/4 bytes, the map's key\/value 4\/8/);
  } finally {
    Segment.remove(name);
  }
});
