/**
 * Disassembler producing the assembler's syntax. Every line it prints
 * reassembles to the same bytes: an instruction the syntax cannot express
 * (unknown opcode, reserved fields set) is printed as `.insn 0xWORD`.
 */
import { assembleInsns } from "./assembler.ts";
import {
  ATOMIC_FETCH,
  ATOMIC_OPS,
  CALL_SRC,
  decodeInsns,
  type Insn,
  LDDW,
  opcodeInfo,
  SRC_REG,
} from "./opcodes.ts";

const reg = (r: number) => `%r${r}`;

export function formatImm(v: number): string {
  if (v < 0) return `-${-v}`;
  return v > 9 ? `0x${v.toString(16)}` : `${v}`;
}

const rel = (v: number) => (v < 0 ? `${v}` : `+${v}`);
const mem = (r: number, off: number) => (off === 0 ? `[${reg(r)}]` : `[${reg(r)}${rel(off)}]`);

export function insnWord(i: Insn): bigint {
  return BigInt(i.opcode) | (BigInt(i.dst & 0xf) << 8n) | (BigInt(i.src & 0xf) << 12n) |
    (BigInt(i.off & 0xffff) << 16n) | (BigInt(i.imm >>> 0) << 32n);
}

const rawLine = (i: Insn) => `.insn 0x${insnWord(i).toString(16).padStart(16, "0")}`;

/** Text of one instruction in the assembler's syntax (may not round-trip; see disassemble). */
function formatInsn(i: Insn, next?: Insn): string {
  const info = opcodeInfo(i.opcode);
  if (!info) return rawLine(i);
  const byReg = (i.opcode & SRC_REG) !== 0;
  const is32 = info.name.endsWith("32");
  switch (info.form) {
    case "alu": {
      let name = info.name;
      if (name.startsWith("mov") && i.off !== 0) name = `movsx${i.off}${is32 ? 32 : 64}`;
      else if ((name.startsWith("div") || name.startsWith("mod")) && i.off === 1) name = `s${name}`;
      return `${name} ${reg(i.dst)}, ${byReg ? reg(i.src) : formatImm(i.imm)}`;
    }
    case "neg":
      return `${info.name} ${reg(i.dst)}`;
    case "end":
      return `${info.name}${i.imm} ${reg(i.dst)}`;
    case "ja":
      return info.name === "ja" ? `ja ${rel(i.off)}` : `ja32 ${rel(i.imm)}`;
    case "jcond":
      return `${info.name} ${reg(i.dst)}, ${byReg ? reg(i.src) : formatImm(i.imm)}, ${rel(i.off)}`;
    case "call":
      if (i.src === CALL_SRC.local) return `call local ${rel(i.imm)}`;
      if (i.src === CALL_SRC.runtime) return `call runtime ${i.imm}`;
      return `call ${i.imm}`;
    case "callx":
      return `call ${reg(i.dst)}`;
    case "exit":
      return "exit";
    case "lddw": {
      if (!next) return rawLine(i);
      if (i.src === 1) return `lddw ${reg(i.dst)}, map_fd ${i.imm}`;
      if (i.src === 2) return `lddw ${reg(i.dst)}, map_value ${i.imm}+${next.imm}`;
      if (i.src === 4) return `lddw ${reg(i.dst)}, callback ${rel(i.imm)}`;
      const v = (BigInt(next.imm >>> 0) << 32n) | BigInt(i.imm >>> 0);
      return `lddw ${reg(i.dst)}, 0x${v.toString(16)}`;
    }
    case "ldx":
      return `${info.name} ${reg(i.dst)}, ${mem(i.src, i.off)}`;
    case "st":
      return `${info.name} ${mem(i.dst, i.off)}, ${formatImm(i.imm)}`;
    case "stx":
      return `${info.name} ${mem(i.dst, i.off)}, ${reg(i.src)}`;
    case "atomic": {
      const op = Object.entries(ATOMIC_OPS).find(([, v]) => v === (i.imm & ~ATOMIC_FETCH)) ??
        Object.entries(ATOMIC_OPS).find(([, v]) => v === i.imm);
      if (!op) return rawLine(i);
      const fetch = (i.imm & ATOMIC_FETCH) && op[1] === (i.imm & ~ATOMIC_FETCH) ? "fetch " : "";
      return `lock ${fetch}${op[0]}${is32 ? "32" : ""} ${mem(i.dst, i.off)}, ${reg(i.src)}`;
    }
  }
}

function sameSlots(a: Insn[], b: Insn[]): boolean {
  return a.length === b.length && a.every((x, k) => insnWord(x) === insnWord(b[k]));
}

/** Lines of text, one per instruction (lddw takes two slots, one line). */
export function disassembleInsns(insns: readonly Insn[]): string[] {
  const lines: string[] = [];
  for (let pc = 0; pc < insns.length; pc++) {
    const i = insns[pc];
    const wide = i.opcode === LDDW && pc + 1 < insns.length;
    const slots = wide ? [i, insns[pc + 1]] : [i];
    const text = formatInsn(i, wide ? insns[pc + 1] : undefined);
    let ok = false;
    try {
      ok = sameSlots(assembleInsns(text), slots);
    } catch {
      ok = false;
    }
    if (ok) {
      lines.push(text);
      if (wide) pc++;
    } else {
      lines.push(rawLine(i));
    }
  }
  return lines;
}

export function disassemble(bytes: Uint8Array): string {
  return disassembleInsns(decodeInsns(bytes)).join("\n");
}
