/**
 * Assembler for the eBPF syntax of the bpf_conformance suite:
 *   mov %r0, 1 · add32 %r1, %r2 · ldxw %r0, [%r1+4] · stb [%r10-1], 0x7f
 *   lock fetch add [%r10-8], %r1 · jne %r0, 5, label · ja +2 · call 5
 *   call %r2 · call local func · lddw %r0, 0x1122334455667788 · exit
 * plus `.insn 0xWORD` for any raw 64-bit instruction word. Labels end with
 * ':'; `exit` names the first exit instruction unless a label says otherwise.
 */
import {
  ALU_OPS,
  ATOMIC_FETCH,
  ATOMIC_OPS,
  CALL_SRC,
  CLASS,
  encodeInsns,
  END_OP,
  type Insn,
  JMP_OPS,
  LDDW,
  MODE_ATOMIC,
  MODE_MEM,
  MODE_MEMSX,
  OP_CALL,
  OP_EXIT,
  OP_JA,
  SIZES,
  SRC_REG,
} from "./opcodes.ts";

export class AsmError extends Error {
  override name = "AsmError";
}

interface Fixup {
  slot: number;
  field: "off" | "imm";
  label: string;
  line: number;
}

const insn = (opcode: number, fields: Partial<Omit<Insn, "opcode">> = {}): Insn => ({
  opcode,
  dst: 0,
  src: 0,
  off: 0,
  imm: 0,
  ...fields,
});

/** Parses a signed or unsigned decimal/hex integer. */
export function parseInteger(text: string): bigint | undefined {
  const m = /^([+-]?)(0x[0-9a-f]+|\d+)$/i.exec(text.trim());
  if (!m) return undefined;
  const v = BigInt(m[2]);
  return m[1] === "-" ? -v : v;
}

class LineAssembler {
  readonly insns: Insn[] = [];
  readonly labels = new Map<string, number>();
  readonly fixups: Fixup[] = [];
  firstExit = -1;
  line = 0;

  fail(message: string): never {
    throw new AsmError(`line ${this.line}: ${message}`);
  }

  number(text: string | undefined, what: string, min: bigint, max: bigint): bigint {
    const v = text === undefined ? undefined : parseInteger(text);
    if (v === undefined) this.fail(`expected ${what}, got '${text ?? ""}'`);
    if (v < min || v > max) this.fail(`${what} ${text} out of range`);
    return v;
  }

  imm32(text: string | undefined): number {
    return Number(
      BigInt.asIntN(32, this.number(text, "immediate", -(1n << 31n), (1n << 32n) - 1n)),
    );
  }

  off16(text: string | undefined): number {
    return Number(BigInt.asIntN(16, this.number(text, "offset", -(1n << 15n), (1n << 16n) - 1n)));
  }

  reg(text: string | undefined): number {
    const m = /^%?r(\d+)$/.exec(text?.trim() ?? "");
    if (!m || Number(m[1]) > 15) this.fail(`expected a register, got '${text ?? ""}'`);
    return Number(m[1]);
  }

  isReg(text: string | undefined): boolean {
    return /^%?r\d+$/.test(text?.trim() ?? "");
  }

  memory(text: string | undefined): { reg: number; off: number } {
    const m = /^\[\s*(%?r\d+)\s*(?:([+-])\s*([0-9a-fx]+))?\s*\]$/i.exec(text?.trim() ?? "");
    if (!m) this.fail(`expected a memory operand like [%r1+8], got '${text ?? ""}'`);
    const off = m[2] ? this.off16(`${m[2]}${m[3]}`) : 0;
    return { reg: this.reg(m[1]), off };
  }

  /** A jump target: +N/-N, or a label resolved at the end. */
  target(text: string | undefined, field: "off" | "imm"): number {
    const t = text?.trim() ?? "";
    if (/^[+-]/.test(t)) return field === "off" ? this.off16(t) : this.imm32(t);
    if (!/^[A-Za-z_.$][\w.$]*$/.test(t)) this.fail(`expected a jump target, got '${t}'`);
    this.fixups.push({ slot: this.insns.length, field, label: t, line: this.line });
    return 0;
  }

  expect(operands: string[], count: number, mnemonic: string): void {
    if (operands.length !== count) {
      this.fail(`${mnemonic} takes ${count} operand(s), got ${operands.length}`);
    }
  }

  emit(...slots: Insn[]): void {
    this.insns.push(...slots);
  }

  statement(mnemonic: string, rest: string): void {
    const operands = rest === "" ? [] : rest.split(",").map((s) => s.trim());
    const m = mnemonic.toLowerCase();
    if (m === ".insn") return this.rawWord(operands);
    if (m === "lddw") return this.lddw(operands);
    if (m === "exit") {
      this.expect(operands, 0, m);
      if (this.firstExit < 0) this.firstExit = this.insns.length;
      return this.emit(insn(CLASS.JMP | OP_EXIT));
    }
    if (m === "call") return this.call(rest.trim().split(/\s+/).filter((s) => s !== ""));
    if (m === "ja" || m === "ja32") {
      this.expect(operands, 1, m);
      return m === "ja"
        ? this.emit(insn(CLASS.JMP | OP_JA, { off: this.target(operands[0], "off") }))
        : this.emit(insn(CLASS.JMP32 | OP_JA, { imm: this.target(operands[0], "imm") }));
    }
    if (m === "lock") return this.atomic(rest);
    const jcond = /^(j[a-z]+?)(32)?$/.exec(m);
    if (jcond && jcond[1] in JMP_OPS) return this.jump(m, JMP_OPS[jcond[1]], !!jcond[2], operands);
    const mem = /^(ldxs?|stx?)(dw|b|h|w)$/.exec(m);
    if (mem && !(mem[1] === "ldxs" && mem[2] === "dw")) {
      return this.memoryOp(m, mem[1], SIZES[mem[2]], operands);
    }
    const end = /^(le|be|bswap|swap)(16|32|64)$/.exec(m);
    if (end) {
      this.expect(operands, 1, m);
      const opcode = end[1] === "le"
        ? CLASS.ALU | END_OP
        : end[1] === "be"
        ? CLASS.ALU | END_OP | SRC_REG
        : CLASS.ALU64 | END_OP;
      return this.emit(insn(opcode, { dst: this.reg(operands[0]), imm: Number(end[2]) }));
    }
    return this.alu(m, operands);
  }

  rawWord(operands: string[]): void {
    this.expect(operands, 1, ".insn");
    const w = BigInt.asUintN(
      64,
      this.number(operands[0], "64-bit word", -(1n << 63n), (1n << 64n) - 1n),
    );
    this.emit({
      opcode: Number(w & 0xffn),
      dst: Number((w >> 8n) & 0xfn),
      src: Number((w >> 12n) & 0xfn),
      off: Number(BigInt.asIntN(16, w >> 16n)),
      imm: Number(BigInt.asIntN(32, w >> 32n)),
    });
  }

  lddw(operands: string[]): void {
    this.expect(operands, 2, "lddw");
    // A callback function: `callback LABEL` or `callback +N` (src 4, imm = offset).
    const cb = /^callback\s+(\S+)$/.exec(operands[1]);
    if (cb) {
      return this.emit(
        insn(LDDW, { dst: this.reg(operands[0]), src: 4, imm: this.target(cb[1], "imm") }),
        insn(0),
      );
    }
    // Map references: `map_fd ID` (src 1) and `map_value ID+OFF` (src 2).
    const ref = /^map_(fd|value)\s+(\S+?)(?:\s*\+\s*(\S+))?$/.exec(operands[1]);
    if (ref) {
      const src = ref[1] === "fd" ? 1 : 2;
      const off = ref[3] === undefined ? 0 : this.imm32(ref[3]);
      if (src === 1 && ref[3] !== undefined) this.fail("map_fd takes no offset");
      return this.emit(
        insn(LDDW, { dst: this.reg(operands[0]), src, imm: this.imm32(ref[2]) }),
        insn(0, { imm: off }),
      );
    }
    const v = BigInt.asUintN(
      64,
      this.number(operands[1], "64-bit immediate", -(1n << 63n), (1n << 64n) - 1n),
    );
    this.emit(
      insn(LDDW, { dst: this.reg(operands[0]), imm: Number(BigInt.asIntN(32, v)) }),
      insn(0, { imm: Number(BigInt.asIntN(32, v >> 32n)) }),
    );
  }

  call(words: string[]): void {
    let mode = "helper";
    if (words.length === 2) mode = words.shift()!;
    if (words.length !== 1) this.fail("call takes one target: N, %rN, local LABEL or runtime N");
    const target = words[0];
    if (mode === "helper" && this.isReg(target)) {
      return this.emit(insn(CLASS.JMP | OP_CALL | SRC_REG, { dst: this.reg(target) }));
    }
    if (mode === "helper" || mode === "runtime") {
      const src = mode === "helper" ? CALL_SRC.helper : CALL_SRC.runtime;
      return this.emit(insn(CLASS.JMP | OP_CALL, { src, imm: this.imm32(target) }));
    }
    if (mode === "local") {
      return this.emit(
        insn(CLASS.JMP | OP_CALL, { src: CALL_SRC.local, imm: this.target(target, "imm") }),
      );
    }
    this.fail(`unknown call mode '${mode}' (helper, local or runtime)`);
  }

  jump(m: string, op: number, is32: boolean, operands: string[]): void {
    this.expect(operands, 3, m);
    const cls = is32 ? CLASS.JMP32 : CLASS.JMP;
    const dst = this.reg(operands[0]);
    const byReg = this.isReg(operands[1]);
    const fields = byReg
      ? { dst, src: this.reg(operands[1]) }
      : { dst, imm: this.imm32(operands[1]) };
    const off = this.target(operands[2], "off");
    this.emit(insn(cls | op | (byReg ? SRC_REG : 0), { ...fields, off }));
  }

  memoryOp(m: string, kind: string, size: number, operands: string[]): void {
    this.expect(operands, 2, m);
    if (kind === "ldx" || kind === "ldxs") {
      const { reg, off } = this.memory(operands[1]);
      const mode = kind === "ldx" ? MODE_MEM : MODE_MEMSX;
      return this.emit(
        insn(CLASS.LDX | mode | size, { dst: this.reg(operands[0]), src: reg, off }),
      );
    }
    const { reg, off } = this.memory(operands[0]);
    if (kind === "st") {
      return this.emit(
        insn(CLASS.ST | MODE_MEM | size, { dst: reg, off, imm: this.imm32(operands[1]) }),
      );
    }
    this.emit(insn(CLASS.STX | MODE_MEM | size, { dst: reg, off, src: this.reg(operands[1]) }));
  }

  /** lock [fetch] OP[32] [%rD+off], %rS */
  atomic(rest: string): void {
    const m = /^(fetch\s+)?([a-z]+?)(32)?\s+(\[[^\]]*\])\s*,\s*(\S+)$/.exec(rest.trim());
    if (!m || !(m[2] in ATOMIC_OPS)) {
      this.fail(`expected 'lock [fetch] add|or|and|xor|xchg|cmpxchg[32] [reg+off], reg'`);
    }
    const { reg, off } = this.memory(m[4]);
    const imm = ATOMIC_OPS[m[2]] | (m[1] ? ATOMIC_FETCH : 0);
    const size = m[3] ? SIZES.w : SIZES.dw;
    this.emit(insn(CLASS.STX | MODE_ATOMIC | size, { dst: reg, off, src: this.reg(m[5]), imm }));
  }

  alu(m: string, operands: string[]): void {
    const parsed = /^(movsx)(8|16|32)(32|64)$/.exec(m) ??
      /^([a-z]+?)(32|64)?$/.exec(m);
    if (!parsed) this.fail(`unknown mnemonic '${m}'`);
    let name = parsed[1];
    let off = 0;
    let is32: boolean;
    if (name === "movsx") {
      off = Number(parsed[2]);
      is32 = parsed[3] === "32";
      name = "mov";
    } else {
      is32 = parsed[2] === "32";
      if (name === "sdiv" || name === "smod") {
        off = 1;
        name = name.slice(1);
      }
    }
    if (!(name in ALU_OPS)) this.fail(`unknown mnemonic '${m}'`);
    const cls = is32 ? CLASS.ALU : CLASS.ALU64;
    if (name === "neg") {
      this.expect(operands, 1, m);
      return this.emit(insn(cls | ALU_OPS.neg, { dst: this.reg(operands[0]) }));
    }
    this.expect(operands, 2, m);
    const dst = this.reg(operands[0]);
    if (this.isReg(operands[1])) {
      return this.emit(
        insn(cls | ALU_OPS[name] | SRC_REG, { dst, src: this.reg(operands[1]), off }),
      );
    }
    this.emit(insn(cls | ALU_OPS[name], { dst, off, imm: this.imm32(operands[1]) }));
  }

  resolve(): void {
    if (this.firstExit >= 0 && !this.labels.has("exit")) this.labels.set("exit", this.firstExit);
    for (const f of this.fixups) {
      const at = this.labels.get(f.label);
      if (at === undefined) {
        this.line = f.line;
        this.fail(`undefined label '${f.label}'`);
      }
      const rel = at - (f.slot + 1);
      if (f.field === "off") {
        if (rel < -32768 || rel > 32767) {
          this.line = f.line;
          this.fail(`label '${f.label}' is too far for a 16-bit jump offset`);
        }
        this.insns[f.slot].off = rel;
      } else {
        this.insns[f.slot].imm = rel;
      }
    }
  }
}

/** Assembles source text into instruction slots. Throws AsmError naming the line. */
export function assembleInsns(source: string): Insn[] {
  const asm = new LineAssembler();
  for (const [i, raw] of source.split("\n").entries()) {
    asm.line = i + 1;
    let text = raw.replace(/#.*$/, "").trim();
    const label = /^([A-Za-z_.$][\w.$]*):\s*(.*)$/.exec(text);
    if (label) {
      if (asm.labels.has(label[1])) asm.fail(`duplicate label '${label[1]}'`);
      asm.labels.set(label[1], asm.insns.length);
      text = label[2].trim();
    }
    if (text === "") continue;
    const sp = /^(\S+)\s*(.*)$/.exec(text)!;
    asm.statement(sp[1], sp[2]);
  }
  asm.resolve();
  return asm.insns;
}

/** Assembles source text into program bytes. */
export function assemble(source: string): Uint8Array<ArrayBuffer> {
  return encodeInsns(assembleInsns(source));
}
