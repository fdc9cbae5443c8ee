/**
 * The eBPF instruction set (RFC 9669 with the v4 additions): one table of
 * opcodes and base mnemonics, shared by the assembler, the disassembler and
 * the tests that check the C table (csrc/vm/opcodes.def) against it.
 */

export type OpcodeForm =
  | "alu" // op dst, src|imm
  | "neg" // op dst
  | "end" // le/be/bswap with width in imm
  | "ja" // unconditional jump (JMP: off, JMP32: imm)
  | "jcond" // op dst, src|imm, target
  | "call" // helper, local or kfunc call by imm
  | "callx" // call the helper whose id is in a register
  | "exit"
  | "lddw"
  | "ldx"
  | "st"
  | "stx"
  | "atomic";

export interface OpcodeInfo {
  opcode: number;
  /** Base mnemonic: "add32", "jeq", "ldxw", "lock32", ... (equal to the C table's name). */
  name: string;
  form: OpcodeForm;
}

export const CLASS = {
  LD: 0x00,
  LDX: 0x01,
  ST: 0x02,
  STX: 0x03,
  ALU: 0x04,
  JMP: 0x05,
  JMP32: 0x06,
  ALU64: 0x07,
} as const;
export const SRC_REG = 0x08;

export const ALU_OPS: Readonly<Record<string, number>> = {
  add: 0x00,
  sub: 0x10,
  mul: 0x20,
  div: 0x30,
  or: 0x40,
  and: 0x50,
  lsh: 0x60,
  rsh: 0x70,
  neg: 0x80,
  mod: 0x90,
  xor: 0xa0,
  mov: 0xb0,
  arsh: 0xc0,
};
export const END_OP = 0xd0;

export const JMP_OPS: Readonly<Record<string, number>> = {
  jeq: 0x10,
  jgt: 0x20,
  jge: 0x30,
  jset: 0x40,
  jne: 0x50,
  jsgt: 0x60,
  jsge: 0x70,
  jlt: 0xa0,
  jle: 0xb0,
  jslt: 0xc0,
  jsle: 0xd0,
};

/** Memory access sizes: suffix → size bits. */
export const SIZES: Readonly<Record<string, number>> = { w: 0x00, h: 0x08, b: 0x10, dw: 0x18 };
export const MODE_MEM = 0x60;
export const MODE_MEMSX = 0x80;
export const MODE_ATOMIC = 0xc0;

export const ATOMIC_FETCH = 0x01;
/** Atomic operations (imm field); xchg and cmpxchg always fetch. */
export const ATOMIC_OPS: Readonly<Record<string, number>> = {
  add: 0x00,
  or: 0x40,
  and: 0x50,
  xor: 0xa0,
  xchg: 0xe1,
  cmpxchg: 0xf1,
};

/** Pseudo sources of `call`. */
export const CALL_SRC = { helper: 0, local: 1, runtime: 2 } as const;

export const OP_JA = 0x00;
export const OP_CALL = 0x80;
export const OP_EXIT = 0x90;
export const LDDW = 0x18;

function buildTable(): OpcodeInfo[] {
  const rows: OpcodeInfo[] = [];
  for (const [name, op] of Object.entries(ALU_OPS)) {
    const form = name === "neg" ? "neg" : "alu";
    for (const src of name === "neg" ? [0] : [0, SRC_REG]) {
      rows.push({ opcode: CLASS.ALU | op | src, name: `${name}32`, form });
      rows.push({ opcode: CLASS.ALU64 | op | src, name, form });
    }
  }
  rows.push({ opcode: CLASS.ALU | END_OP, name: "le", form: "end" });
  rows.push({ opcode: CLASS.ALU | END_OP | SRC_REG, name: "be", form: "end" });
  rows.push({ opcode: CLASS.ALU64 | END_OP, name: "bswap", form: "end" });
  rows.push({ opcode: CLASS.JMP | OP_JA, name: "ja", form: "ja" });
  rows.push({ opcode: CLASS.JMP32 | OP_JA, name: "ja32", form: "ja" });
  rows.push({ opcode: CLASS.JMP | OP_CALL, name: "call", form: "call" });
  rows.push({ opcode: CLASS.JMP | OP_CALL | SRC_REG, name: "callx", form: "callx" });
  rows.push({ opcode: CLASS.JMP | OP_EXIT, name: "exit", form: "exit" });
  for (const [name, op] of Object.entries(JMP_OPS)) {
    for (const src of [0, SRC_REG]) {
      rows.push({ opcode: CLASS.JMP | op | src, name, form: "jcond" });
      rows.push({ opcode: CLASS.JMP32 | op | src, name: `${name}32`, form: "jcond" });
    }
  }
  rows.push({ opcode: LDDW, name: "lddw", form: "lddw" });
  for (const [suffix, size] of Object.entries(SIZES)) {
    rows.push({ opcode: CLASS.LDX | MODE_MEM | size, name: `ldx${suffix}`, form: "ldx" });
    if (suffix !== "dw") {
      rows.push({ opcode: CLASS.LDX | MODE_MEMSX | size, name: `ldxs${suffix}`, form: "ldx" });
    }
    rows.push({ opcode: CLASS.ST | MODE_MEM | size, name: `st${suffix}`, form: "st" });
    rows.push({ opcode: CLASS.STX | MODE_MEM | size, name: `stx${suffix}`, form: "stx" });
  }
  rows.push({ opcode: CLASS.STX | MODE_ATOMIC | SIZES.w, name: "lock32", form: "atomic" });
  rows.push({ opcode: CLASS.STX | MODE_ATOMIC | SIZES.dw, name: "lock", form: "atomic" });
  return rows.sort((a, b) => a.opcode - b.opcode);
}

export const OPCODES: readonly OpcodeInfo[] = buildTable();
const BY_OPCODE = new Map(OPCODES.map((o) => [o.opcode, o]));

export function opcodeInfo(opcode: number): OpcodeInfo | undefined {
  return BY_OPCODE.get(opcode);
}

/** One decoded instruction slot (struct bpf_insn). */
export interface Insn {
  opcode: number;
  dst: number;
  src: number;
  off: number; // signed 16-bit
  imm: number; // signed 32-bit
}

export const INSN_SIZE = 8;

export function encodeInsns(insns: readonly Insn[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(insns.length * INSN_SIZE);
  const view = new DataView(out.buffer);
  insns.forEach((insn, i) => {
    const at = i * INSN_SIZE;
    view.setUint8(at, insn.opcode);
    view.setUint8(at + 1, (insn.dst & 0xf) | ((insn.src & 0xf) << 4));
    view.setInt16(at + 2, insn.off, true);
    view.setInt32(at + 4, insn.imm, true);
  });
  return out;
}

export function decodeInsns(bytes: Uint8Array): Insn[] {
  if (bytes.length % INSN_SIZE !== 0) {
    throw new Error(`program length ${bytes.length} is not a multiple of 8 bytes`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const insns: Insn[] = [];
  for (let at = 0; at < bytes.length; at += INSN_SIZE) {
    const regs = view.getUint8(at + 1);
    insns.push({
      opcode: view.getUint8(at),
      dst: regs & 0xf,
      src: regs >> 4,
      off: view.getInt16(at + 2, true),
      imm: view.getInt32(at + 4, true),
    });
  }
  return insns;
}

/** The 64-bit little-endian words of a program (the `-- raw` format). */
export function toWords(bytes: Uint8Array): bigint[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const words: bigint[] = [];
  for (let at = 0; at + 8 <= bytes.length; at += 8) words.push(view.getBigUint64(at, true));
  return words;
}

export function fromWords(words: readonly bigint[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(words.length * 8);
  const view = new DataView(out.buffer);
  words.forEach((w, i) => view.setBigUint64(i * 8, BigInt.asUintN(64, w), true));
  return out;
}
