/** Wall-clock nanoseconds since the epoch as RFC 3339 UTC with nanoseconds: 2026-11-30T12:34:56.807862128Z. */
export function rfc3339Nanos(ns: bigint): string {
  const ms = ns / 1_000_000n;
  const iso = new Date(Number(ms)).toISOString(); // 2026-11-30T12:34:56.807Z
  const frac = (ns % 1_000_000_000n).toString().padStart(9, "0");
  return `${iso.slice(0, 19)}.${frac}Z`;
}
