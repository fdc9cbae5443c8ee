/**
 * Random programs the kernel verifier accepts, for differential runs against
 * the kernel: every register initialised, ALU/ALU64 ops of every kind,
 * forward jumps of every condition, sign-extending loads and atomics on an
 * initialised stack slot. The program saves r6 = r1 (the context) first and
 * ends by storing r0-r5 and r7-r9 into the context.
 */
import { Rng } from "./program_gen.ts";

const REGS = [0, 1, 2, 3, 4, 5, 7, 8, 9];
export const SAVED_REGS = REGS;
export const CTX_SIZE = REGS.length * 8;

const BINARY = [
  "add",
  "sub",
  "mul",
  "div",
  "sdiv",
  "mod",
  "smod",
  "or",
  "and",
  "lsh",
  "rsh",
  "xor",
  "mov",
  "arsh",
];
const JUMPS = ["jeq", "jne", "jgt", "jge", "jlt", "jle", "jset", "jsgt", "jsge", "jslt", "jsle"];
const VALUES = [
  0n,
  1n,
  2n,
  0x7fn,
  0x80n,
  0xffn,
  0x7fffn,
  0x8000n,
  0xffffn,
  0x7fffffffn,
  0x80000000n,
  0xffffffffn,
  0x100000000n,
  0x7fffffffffffffffn,
  0x8000000000000000n,
  0xffffffffffffffffn,
  0xfffffffffffffffen,
  0x123456789abcdef0n,
];

function value(rng: Rng): bigint {
  if (rng.chance(0.6)) return rng.pick(VALUES);
  return (BigInt(rng.next()) << 32n) | BigInt(rng.next());
}

function imm(rng: Rng): number {
  return rng.chance(0.5)
    ? rng.pick([0, 1, -1, 2, 3, 7, 31, 32, 63, -2, 0x7fffffff, -0x80000000])
    : (rng.next() | 0);
}

/** One unit of straight-line code (a few lines); jumps are added between units. */
function unit(rng: Rng): string[] {
  const r = () => `%r${rng.pick(REGS)}`;
  const k = rng.int(10);
  if (k < 6) {
    const op = rng.pick(BINARY);
    const w = rng.chance(0.5) ? "32" : "";
    const width = w ? 32 : 64;
    if (rng.chance(0.5)) return [`${op}${w} ${r()}, ${r()}`];
    let v = imm(rng);
    if (["div", "sdiv", "mod", "smod"].includes(op) && v === 0) v = 3; // the kernel refuses /0 by imm
    if (["lsh", "rsh", "arsh"].includes(op)) v = rng.int(width);
    return [`${op}${w} ${r()}, ${v}`];
  }
  if (k === 6) {
    const which = rng.pick([
      "neg",
      "neg32",
      "le16",
      "le32",
      "le64",
      "be16",
      "be32",
      "be64",
      "bswap16",
      "bswap32",
      "bswap64",
    ]);
    return [`${which} ${r()}`];
  }
  if (k === 7) {
    return [
      `${rng.pick(["movsx832", "movsx1632", "movsx864", "movsx1664", "movsx3264"])} ${r()}, ${r()}`,
    ];
  }
  if (k === 8) {
    const size = rng.pick([["b", 1], ["h", 2], ["w", 4], ["dw", 8]] as const);
    const signed = size[0] !== "dw" && rng.chance(0.5) ? "s" : "";
    const off = -8 + rng.int(8 / size[1]) * size[1];
    return [`stxdw [%r10-8], ${r()}`, `ldx${signed}${size[0]} ${r()}, [%r10${off}]`];
  }
  const op = rng.pick(["add", "or", "and", "xor", "xchg", "cmpxchg"]);
  const fetch = op !== "xchg" && op !== "cmpxchg" && rng.chance(0.5) ? "fetch " : "";
  const w = rng.chance(0.5) ? "32" : "";
  const src = rng.pick(REGS.filter((x) => x !== 0 || op !== "cmpxchg"));
  return [
    `stxdw [%r10-16], ${r()}`,
    `lock ${fetch}${op}${w} [%r10-16], %r${src}`,
    `ldxdw ${r()}, [%r10-16]`,
  ];
}

export function aluProgramSource(rng: Rng): string {
  const lines = ["mov %r6, %r1"];
  for (const reg of REGS) lines.push(`lddw %r${reg}, 0x${value(rng).toString(16)}`);
  const count = 5 + rng.int(30);
  for (let u = 0; u < count; u++) {
    lines.push(`u${u}:`);
    if (rng.chance(0.25)) {
      const target = `u${u + 1 + rng.int(count - u)}`; // forward only: no loops
      const w = rng.chance(0.5) ? "32" : "";
      const cmp = rng.chance(0.5) ? `%r${rng.pick(REGS)}` : `${imm(rng)}`;
      // Conditional only: the kernel refuses code an unconditional jump leaves unreachable.
      lines.push(`${rng.pick(JUMPS)}${w} %r${rng.pick(REGS)}, ${cmp}, ${target}`);
    }
    lines.push(...unit(rng));
  }
  lines.push(`u${count}:`);
  REGS.forEach((reg, i) => lines.push(`stxdw [%r6+${i * 8}], %r${reg}`));
  lines.push("mov %r0, 0", "exit");
  return lines.join("\n");
}
