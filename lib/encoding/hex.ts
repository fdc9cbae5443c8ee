/** The one hex codec: bytes to lowercase hex and back, strict or lenient about separators. */

/** Bytes as lowercase hex, two digits each ("0a1b"). */
export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (x) => x.toString(16).padStart(2, "0")).join("");
}

function decodePairs(compact: string): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(compact.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(compact.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** The bytes of an even-length hex string with nothing else in it ("0a1b"), as toHex writes. */
export function fromHex(s: string): Uint8Array<ArrayBuffer> {
  if (!/^([0-9a-f]{2})*$/i.test(s)) throw new Error(`not hex: '${s.slice(0, 40)}'`);
  return decodePairs(s);
}

/** Hex byte pairs, optionally `0x`-prefixed and separated by whitespace or commas, e.g. "aa bb 0c". */
export function parseHexBytes(text: string): Uint8Array<ArrayBuffer> {
  const compact = text.replace(/0x/gi, "").replace(/[\s,]+/g, "");
  if (!/^([0-9a-f]{2})*$/i.test(compact)) throw new Error(`not hex bytes: '${text.trim()}'`);
  return decodePairs(compact);
}
