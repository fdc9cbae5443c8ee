/**
 * Random eBPF programs for fuzzing the validator and the interpreter:
 * mostly well-formed instruction streams (so that many pass the validator
 * and run) mixed with raw random words.
 */
import { type Insn, LDDW, OPCODES } from "../lib/isa/opcodes.ts";

/** Small deterministic PRNG (xorshift32), so failures reproduce from a seed. */
export class Rng {
  #s: number;
  constructor(seed: number) {
    this.#s = (seed >>> 0) || 1;
  }
  next(): number {
    let x = this.#s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#s = x >>> 0;
    return this.#s;
  }
  int(n: number): number {
    return this.next() % n;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  chance(p: number): boolean {
    return this.next() / 0x100000000 < p;
  }
}

const INTERESTING_IMMS = [
  0,
  1,
  -1,
  2,
  7,
  8,
  16,
  31,
  32,
  63,
  64,
  0x7fffffff,
  -0x80000000,
  255,
  0x1000,
];
export const FUZZ_HELPERS = [1, 2, 3, 5]; // 5 is the unwind helper

function randomImm(rng: Rng): number {
  return rng.chance(0.7) ? rng.pick(INTERESTING_IMMS) : (rng.next() | 0);
}

function randomInsn(rng: Rng, pc: number, length: number): Insn {
  const info = rng.pick(OPCODES);
  const reg = () => (rng.chance(0.98) ? rng.int(10) : rng.int(16));
  const insn: Insn = { opcode: info.opcode, dst: reg(), src: 0, off: 0, imm: 0 };
  const jumpOff = () => rng.int(length + 2) - pc - 1;
  switch (info.form) {
    case "alu":
      if (info.opcode & 0x08) insn.src = reg();
      else insn.imm = randomImm(rng);
      if (info.name.startsWith("mov") && insn.src && rng.chance(0.3)) {
        insn.off = rng.pick([8, 16, 32]);
      }
      if ((info.name.startsWith("div") || info.name.startsWith("mod")) && rng.chance(0.5)) {
        insn.off = 1;
      }
      break;
    case "end":
      insn.imm = rng.pick([16, 32, 64]);
      break;
    case "ja":
      insn.dst = 0;
      if (info.name === "ja") insn.off = jumpOff();
      else insn.imm = jumpOff();
      break;
    case "jcond":
      if (info.opcode & 0x08) insn.src = reg();
      else insn.imm = randomImm(rng);
      insn.off = jumpOff();
      break;
    case "call":
      insn.dst = 0;
      if (rng.chance(0.3)) {
        insn.src = 1;
        insn.imm = jumpOff();
      } else insn.imm = rng.chance(0.9) ? rng.pick(FUZZ_HELPERS) : rng.int(300);
      break;
    case "exit":
      insn.dst = 0;
      break;
    case "lddw":
      insn.imm = randomImm(rng);
      break;
    case "ldx":
    case "st":
    case "stx":
    case "atomic": {
      // Base mostly r10 (stack) or r1 (the 64-byte context), offsets near them.
      const base = rng.chance(0.45) ? 10 : rng.chance(0.8) ? 1 : reg();
      const off = base === 10 ? -rng.int(520) : rng.int(80) - 8;
      if (info.form === "ldx") {
        insn.src = base;
      } else {
        insn.dst = base;
        if (info.form !== "st") insn.src = reg();
      }
      insn.off = off;
      if (info.form === "st") insn.imm = randomImm(rng);
      if (info.form === "atomic") {
        insn.imm = rng.pick([0x00, 0x01, 0x40, 0x41, 0x50, 0x51, 0xa0, 0xa1, 0xe1, 0xf1]);
        insn.off &= ~(info.name === "lock" ? 7 : 3);
      }
      break;
    }
    default:
      break;
  }
  return insn;
}

/** A random program: mostly plausible instructions, ending in exit. */
export function randomProgram(rng: Rng): Insn[] {
  if (rng.chance(0.05)) {
    return Array.from({ length: 1 + rng.int(8) }, () => ({
      opcode: rng.int(256),
      dst: rng.int(16),
      src: rng.int(16),
      off: (rng.next() << 16) >> 16,
      imm: rng.next() | 0,
    }));
  }
  const length = 2 + rng.int(40);
  const insns: Insn[] = [];
  while (insns.length < length - 1) {
    const insn = randomInsn(rng, insns.length, length);
    insns.push(insn);
    if (insn.opcode === LDDW) {
      insns.push({ opcode: 0, dst: 0, src: 0, off: 0, imm: randomImm(rng) });
    }
  }
  insns.push({ opcode: 0x95, dst: 0, src: 0, off: 0, imm: 0 });
  return insns;
}
