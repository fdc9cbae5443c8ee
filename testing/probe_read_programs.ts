/**
 * The probe read tests' program (tests/probe_read_inline_test.ts, probe_read_str_kernel_test.ts):
 * fills the 96 stack bytes below r10 with known bytes (initialStack), calls a read helper
 * (112 probe_read_user, 114 probe_read_user_str) into r10 - 88 with a constant size, then writes
 * r0 to ctx[0] and the 96 stack bytes to ctx[8..104), so r0 and every byte around the
 * destination can be compared.
 */

/** The 96 stack bytes before the call: byte i is (i + 1) & 0xff. */
export const initialStack = () => Uint8Array.from({ length: 96 }, (_, i) => (i + 1) & 0xff);

/* Stack words r10-96 .. r10-8, each of 8 distinct bytes (k * 8 + 1 ...). */
const fill = Array.from({ length: 12 }, (_, k) => {
  let w = 0n;
  for (let i = 7; i >= 0; i--) w = (w << 8n) | BigInt((k * 8 + i + 1) & 0xff);
  return `lddw %r1, ${w}\nstxdw [%r10${-96 + 8 * k}], %r1`;
}).join("\n");

const dump = Array.from(
  { length: 12 },
  (_, k) => `ldxdw %r1, [%r10${-96 + 8 * k}]\nstxdw [%r6+${8 + 8 * k}], %r1`,
).join("\n");

/**
 * helper(r10 - 88, size, src): src is ctx[0], or r10 - 88 + srcDelta (a copy within the stack).
 */
export function readIntoStackProgram(helper: number, size: number, srcDelta?: number): string {
  const src = srcDelta === undefined
    ? "ldxdw %r3, [%r6]"
    : `mov %r3, %r10\nadd %r3, ${-88 + srcDelta}`;
  return `
mov %r6, %r1
${fill}
${src}
mov %r1, %r10
add %r1, -88
mov %r2, ${size}
call ${helper}
stxdw [%r6], %r0
${dump}
mov %r0, 0
exit`;
}
