import assert from "node:assert/strict";
import { fromHex, parseHexBytes, toHex } from "../lib/encoding/hex.ts";

Deno.test("hex: toHex and fromHex round-trip; fromHex takes bare pairs only", () => {
  const bytes = Uint8Array.from([0, 1, 0x0a, 0xab, 0xff]);
  assert.equal(toHex(bytes), "00010aabff");
  assert.deepEqual(fromHex("00010aABff"), bytes);
  assert.deepEqual(fromHex(""), new Uint8Array(0));
  assert.throws(() => fromHex("abc"), /not hex: 'abc'/);
  assert.throws(() => fromHex("aa bb"), /not hex/);
});

Deno.test("hex: parseHexBytes allows 0x, whitespace and commas between pairs", () => {
  assert.deepEqual(parseHexBytes("aa bb\n0c, 0x0d"), Uint8Array.from([0xaa, 0xbb, 0x0c, 0x0d]));
  assert.throws(() => parseHexBytes("a b c"), /not hex bytes: 'a b c'/);
});
