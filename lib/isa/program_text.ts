/**
 * Program bytes from text: 64-bit words as `0x...` tokens (the suite's
 * `-- raw` format, one word per token) or a stream of hex bytes
 * ("b7 00 00 00 ..." or "b700000001000000...", the plugin protocol).
 */
import { parseHexBytes } from "../encoding/hex.ts";
import { fromWords } from "./opcodes.ts";

export function looksLikeHex(text: string): boolean {
  return /^[\s0-9a-fA-Fx,]*$/.test(text) && /[0-9a-fA-F]/.test(text);
}

export function parseProgramText(text: string): Uint8Array<ArrayBuffer> {
  const tokens = text.replace(/#.*$/gm, "").split(/[\s,]+/).filter((t) => t !== "");
  if (tokens.length > 0 && tokens.every((t) => /^0x[0-9a-f]{1,16}$/i.test(t))) {
    return fromWords(tokens.map((t) => BigInt(t)));
  }
  const bytes = parseHexBytes(tokens.join(""));
  if (bytes.length % 8 !== 0) {
    throw new Error(`program has ${bytes.length} bytes, not a multiple of 8`);
  }
  return bytes;
}
