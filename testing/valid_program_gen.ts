/**
 * Random *valid* programs for differential runs: every register
 * initialised, ALU/ALU64 ops of every kind, forward jumps of every
 * condition, sign-extending loads and atomics on initialised stack slots.
 * The program saves r6 = r1 (the context) first and ends by storing
 * r0-r5 and r7-r9 into the context's first 72 bytes.
 *
 * `kernel: true` keeps to what the kernel verifier accepts for a
 * BPF_PROG_TYPE_SYSCALL program; otherwise the programs also use bounded
 * loops, helper calls (id 1 mixes r1-r5; id 5 is unwind), bpf-to-bpf calls
 * and loads/stores in the context's scratch area.
 */
import { Rng } from "./program_gen.ts";

const REGS = [0, 1, 2, 3, 4, 5, 7, 8, 9];
export const SAVED_REGS = REGS;
/** Registers saved at the end, then a 64-byte scratch area the test fills. */
export const SCRATCH_OFFSET = REGS.length * 8;
export const CTX_SIZE = SCRATCH_OFFSET + 64;
export const MIX_HELPER = 1;
export const UNWIND_HELPER = 5;

/** The mixing helper both engines call (TypeScript reference). */
export function mixHelper(a: bigint, b: bigint, c: bigint, d: bigint, e: bigint): bigint {
  return BigInt.asUintN(64, a * 31n + (b ^ 0x5555n) + (c << 3n) - d + (e >> 2n));
}

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
const UNARY = [
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
const IMMS = [0, 1, -1, 2, 3, 7, 31, 32, 63, -2, 0x7fffffff, -0x80000000];

export interface GenOptions {
  kernel: boolean;
}

class Gen {
  lines: string[] = [];
  subs: string[][] = [];
  label = 0;
  constructor(readonly rng: Rng, readonly opts: GenOptions) {}

  reg(): string {
    return `%r${this.rng.pick(REGS)}`;
  }

  value(): bigint {
    if (this.rng.chance(0.6)) return this.rng.pick(VALUES);
    return (BigInt(this.rng.next()) << 32n) | BigInt(this.rng.next());
  }

  imm(): number {
    return this.rng.chance(0.5) ? this.rng.pick(IMMS) : (this.rng.next() | 0);
  }

  /** Straight-line code: no jumps, usable inside loops and subprograms. */
  straight(): string[] {
    const { rng } = this;
    const r = () => this.reg();
    const k = rng.int(this.opts.kernel ? 10 : 13);
    if (k < 6) {
      const op = rng.pick(BINARY);
      const w = rng.chance(0.5) ? "32" : "";
      if (rng.chance(0.5)) return [`${op}${w} ${r()}, ${r()}`];
      let v = this.imm();
      if (["div", "sdiv", "mod", "smod"].includes(op) && v === 0) v = 3; // kernel refuses /0 by imm
      if (["lsh", "rsh", "arsh"].includes(op)) v = rng.int(w ? 32 : 64);
      return [`${op}${w} ${r()}, ${v}`];
    }
    if (k === 6) return [`${rng.pick(UNARY)} ${r()}`];
    if (k === 7) {
      return [
        `${
          rng.pick(["movsx832", "movsx1632", "movsx864", "movsx1664", "movsx3264"])
        } ${r()}, ${r()}`,
      ];
    }
    if (k === 8) {
      const [suffix, size] = rng.pick([["b", 1], ["h", 2], ["w", 4], ["dw", 8]] as const);
      const signed = suffix !== "dw" && rng.chance(0.5) ? "s" : "";
      const off = -8 + rng.int(8 / size) * size;
      return [`stxdw [%r10-8], ${r()}`, `ldx${signed}${suffix} ${r()}, [%r10${off}]`];
    }
    if (k === 9) {
      const op = rng.pick(["add", "or", "and", "xor", "xchg", "cmpxchg"]);
      const fetch = op !== "xchg" && op !== "cmpxchg" && rng.chance(0.5) ? "fetch " : "";
      const w = rng.chance(0.5) ? "32" : "";
      return [
        `stxdw [%r10-16], ${r()}`,
        `lock ${fetch}${op}${w} [%r10-16], ${r()}`,
        `ldxdw ${r()}, [%r10-16]`,
      ];
    }
    if (k === 10) { // the context's scratch area
      const [suffix, size] = rng.pick([["b", 1], ["h", 2], ["w", 4], ["dw", 8]] as const);
      const off = SCRATCH_OFFSET + rng.int(64 / size) * size;
      return rng.chance(0.5)
        ? [`ldx${rng.chance(0.3) && suffix !== "dw" ? "s" : ""}${suffix} ${r()}, [%r6+${off}]`]
        : [`stx${suffix} [%r6+${off}], ${r()}`];
    }
    if (k === 11) { // helper call; r1-r5 are undefined afterwards, so set them again
      const id = rng.chance(0.85) ? MIX_HELPER : UNWIND_HELPER;
      const lines = [];
      if (id === UNWIND_HELPER) lines.push(`mov %r1, ${rng.chance(0.3) ? 0 : 1}`);
      // one helper call as callx, with the id in a register
      if (id === MIX_HELPER && rng.chance(0.2)) {
        return [`mov %r0, ${id}`, "call %r0", ...this.resetArgs()];
      }
      lines.push(`call ${id}`, ...this.resetArgs());
      return lines;
    }
    // store a stack slot into the scratch area so the stack is compared too
    return [`ldxdw ${r()}, [%r10-${rng.pick([8, 16])}]`];
  }

  resetArgs(): string[] {
    return [1, 2, 3, 4, 5].map((i) => `lddw %r${i}, 0x${this.value().toString(16)}`);
  }

  /** A bounded loop; its counter lives at [r10-24], which nothing else touches. */
  loop(): string[] {
    const l = `loop${this.label++}`;
    const body = Array.from({ length: 1 + this.rng.int(3) }, () => this.straight()).flat();
    const t = this.reg();
    return [
      `stdw [%r10-24], ${1 + this.rng.int(6)}`,
      `${l}:`,
      ...body,
      `mov ${t}, -1`,
      `lock add [%r10-24], ${t}`,
      `ldxdw ${t}, [%r10-24]`,
      `jne ${t}, 0, ${l}`,
    ];
  }

  /** A call to a new subprogram made of straight-line code (its own frame). */
  call(): string[] {
    const name = `sub${this.subs.length}`;
    const body = [
      `stxdw [%r10-8], ${this.reg()}`,
      `stxdw [%r10-16], ${this.reg()}`,
      ...Array.from({ length: 1 + this.rng.int(4) }, () => this.straight()).flat(),
      "exit",
    ];
    this.subs.push([`${name}:`, ...body]);
    // r1-r5 are undefined after a call (kernel semantics), so set them again.
    return [`call local ${name}`, ...this.resetArgs()];
  }

  program(): string {
    const { rng } = this;
    const lines = ["mov %r6, %r1", "stdw [%r10-8], 0x1234567", "stdw [%r10-16], -99"];
    for (const reg of REGS) lines.push(`lddw %r${reg}, 0x${this.value().toString(16)}`);
    const count = 5 + rng.int(30);
    for (let u = 0; u < count; u++) {
      lines.push(`u${u}:`);
      if (rng.chance(0.25)) {
        // Conditional only: the kernel refuses code an unconditional jump leaves unreachable.
        const target = `u${u + 1 + rng.int(count - u)}`;
        const w = rng.chance(0.5) ? "32" : "";
        const cmp = rng.chance(0.5) ? this.reg() : `${this.imm()}`;
        lines.push(`${rng.pick(JUMPS)}${w} ${this.reg()}, ${cmp}, ${target}`);
      }
      if (!this.opts.kernel && rng.chance(0.08)) lines.push(...this.loop());
      else if (!this.opts.kernel && rng.chance(0.05)) lines.push(...this.call());
      else lines.push(...this.straight());
    }
    lines.push(`u${count}:`);
    REGS.forEach((reg, i) => lines.push(`stxdw [%r6+${i * 8}], %r${reg}`));
    lines.push("mov %r0, 0", "exit");
    return [...lines, ...this.subs.flat()].join("\n");
  }
}

export function validProgramSource(rng: Rng, opts: GenOptions): string {
  return new Gen(rng, opts).program();
}
