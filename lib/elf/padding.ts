/**
 * Alignment padding after a function: the nop and int3 forms compilers put
 * between functions. Nothing executes it, so a probe's 5-byte jump may
 * extend into it when the function itself is shorter (an empty function is
 * a single `ret`).
 */

/** Length of the padding instruction at `at`, or 0 when it is not one. */
function nopLength(bytes: Uint8Array, at: number): number {
  if (bytes[at] === 0x90 || bytes[at] === 0xcc) return 1;
  let p = at;
  while (p - at < 14 && (bytes[p] === 0x66 || bytes[p] === 0x2e)) p++;
  if (bytes[p] === 0x90 && p > at) return p - at + 1; // 66 90: xchg ax, ax
  if (bytes[p] !== 0x0f || bytes[p + 1] !== 0x1f) return 0;
  const modrmLength: Record<number, number> = { 0x00: 1, 0x40: 2, 0x44: 3, 0x80: 5, 0x84: 6 };
  const rest = modrmLength[bytes[p + 2]];
  return rest ? p - at + 2 + rest : 0;
}

/** Bytes of padding starting at file offset `at` (at most `max`). */
export function paddingAt(bytes: Uint8Array, at: number, max: number): number {
  let n = 0;
  while (n < max && at + n < bytes.length) {
    const len = nopLength(bytes, at + n);
    if (len === 0) break;
    n += len;
  }
  return Math.min(n, max);
}
