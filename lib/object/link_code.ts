/**
 * Builds a program's final instructions, as libbpf does before BPF_PROG_LOAD:
 * the entry function, then every subprogram it reaches (bpf-to-bpf calls and
 * callbacks, usually in .text) appended once; map and global data references
 * rewritten to `lddw src 1/2` with segment map ids; CO-RE relocations applied.
 */
import { CORE_KIND, CoreRelo } from "../btf/btf_ext.ts";
import { CoreResolver, patchCoreInsn } from "../btf/core.ts";
import { ElfError } from "../elf/sections.ts";
import { ObjReloc, RelocatableElf, STT_FUNC } from "./elf_relocatable.ts";

const R_BPF_64_64 = 1, R_BPF_64_32 = 10;
const LDDW = 0x18, CALL = 0x85;
const PSEUDO_MAP_FD = 1, PSEUDO_MAP_VALUE = 2, PSEUDO_CALL = 1, PSEUDO_FUNC = 4;

export interface ProgramRange {
  name: string;
  shndx: number;
  /** Instruction indices within the section: [start, end). */
  start: number;
  end: number;
}

export interface LinkInputs {
  elf: RelocatableElf;
  what: string;
  /** The segment map a symbol (section index, value) names: a map, or a global data section. */
  mapAt(shndx: number, offset: number): { id: number; isData: boolean } | undefined;
  coreRelos: CoreRelo[];
  core?: CoreResolver;
  /** Where an extern variable (`__kconfig`) lives: a map and the offset in its value. */
  externAt?(name: string): { id: number; offset: number } | undefined;
}

interface Chunk {
  shndx: number;
  start: number;
  end: number;
  at: number;
}

/** The function symbol of code section `shndx` that contains instruction `insn`. */
function functionAt(
  elf: RelocatableElf,
  shndx: number,
  insn: number,
): { start: number; end: number } | undefined {
  for (const s of elf.symbols) {
    if (s.shndx !== shndx || s.type !== STT_FUNC) continue;
    const start = s.value / 8, end = (s.value + s.size) / 8;
    if (insn >= start && insn < end) return { start, end };
  }
  return undefined;
}

export function linkProgram(prog: ProgramRange, inp: LinkInputs): Uint8Array {
  const { elf, what } = inp;
  const where = (c: Chunk, i: number) =>
    `${what}: program '${prog.name}' (${elf.sections[c.shndx].name}, insn ${i})`;
  const chunks: Chunk[] = [];
  const parts: Uint8Array[] = [];
  let total = 0;
  const add = (shndx: number, start: number, end: number): Chunk => {
    const sec = elf.sections[shndx];
    const c = { shndx, start, end, at: total };
    parts.push(sec.data.slice(start * 8, end * 8));
    total += end - start;
    chunks.push(c);
    return c;
  };
  const locate = (shndx: number, insn: number, from: Chunk, i: number): number => {
    let c = chunks.find((x) => x.shndx === shndx && insn >= x.start && insn < x.end);
    if (!c) {
      const fn = functionAt(elf, shndx, insn);
      if (!fn) {
        throw new ElfError(
          `${where(from, i)}: call target ${insn} in ${
            elf.sections[shndx]?.name
          } is not in a function`,
        );
      }
      c = add(shndx, fn.start, fn.end);
    }
    return c.at + (insn - c.start);
  };

  add(prog.shndx, prog.start, prog.end);
  // Chunks are appended while this loop runs; each is processed once.
  for (let ci = 0; ci < chunks.length; ci++) {
    const c = chunks[ci];
    const code = parts[ci];
    const v = new DataView(code.buffer, code.byteOffset, code.byteLength);
    const relocs = new Map<number, ObjReloc>();
    for (const r of elf.relocs.get(c.shndx) ?? []) {
      const i = r.offset / 8;
      if (i >= c.start && i < c.end) relocs.set(i, r);
    }
    for (let i = c.start; i < c.end; i++) {
      const at = (i - c.start) * 8;
      const op = code[at], src = code[at + 1] >> 4;
      const r = relocs.get(i);
      if (r) {
        const sym = r.symbol;
        if (r.type !== R_BPF_64_64 && r.type !== R_BPF_64_32) {
          throw new ElfError(
            `${where(c, i)}: relocation type ${r.type} against '${sym.name}' is not supported`,
          );
        }
        if (sym.shndx === 0) {
          const ext = op === LDDW ? inp.externAt?.(sym.name) : undefined;
          if (!ext) {
            throw new ElfError(
              `${where(c, i)}: extern '${sym.name}' (kconfig/ksym) is not supported in userspace`,
            );
          }
          code[at + 1] = (code[at + 1] & 0x0f) | (PSEUDO_MAP_VALUE << 4);
          v.setUint32(at + 12, ext.offset + v.getInt32(at + 4, true), true);
          v.setUint32(at + 4, ext.id, true);
          continue;
        }
        const target = elf.sections[sym.shndx];
        const isCode = target && (target.flags & 4n) !== 0n;
        if (op === CALL) {
          if (!isCode) {
            throw new ElfError(`${where(c, i)}: call relocation against non-code '${sym.name}'`);
          }
          const dest = sym.value / 8 + v.getInt32(at + 4, true) + 1;
          const pos = locate(sym.shndx, dest, c, i);
          code[at + 1] = (code[at + 1] & 0x0f) | (PSEUDO_CALL << 4);
          v.setInt32(at + 4, pos - (c.at + i - c.start) - 1, true);
          continue;
        }
        if (op !== LDDW) {
          throw new ElfError(
            `${where(c, i)}: relocation against '${sym.name}' on a non-lddw instruction`,
          );
        }
        if (isCode) { // a callback's address
          const dest = sym.value / 8 + v.getInt32(at + 4, true) / 8;
          const pos = locate(sym.shndx, dest, c, i);
          code[at + 1] = (code[at + 1] & 0x0f) | (PSEUDO_FUNC << 4);
          v.setInt32(at + 4, pos - (c.at + i - c.start) - 1, true);
          continue;
        }
        const map = inp.mapAt(sym.shndx, sym.value);
        if (!map) {
          throw new ElfError(`${where(c, i)}: '${sym.name}' is not a map or global variable`);
        }
        if (map.isData) { // section symbols have value 0 and carry the offset in imm
          code[at + 1] = (code[at + 1] & 0x0f) | (PSEUDO_MAP_VALUE << 4);
          v.setUint32(at + 12, sym.value + v.getInt32(at + 4, true), true);
          v.setUint32(at + 4, map.id, true);
        } else {
          code[at + 1] = (code[at + 1] & 0x0f) | (PSEUDO_MAP_FD << 4);
          v.setUint32(at + 4, map.id, true);
        }
        continue;
      }
      // A call within the same section that the compiler resolved itself.
      if (op === CALL && src === PSEUDO_CALL) {
        const dest = i + v.getInt32(at + 4, true) + 1;
        const pos = locate(c.shndx, dest, c, i);
        v.setInt32(at + 4, pos - (c.at + i - c.start) - 1, true);
      }
    }
  }

  const out = new Uint8Array(total * 8);
  parts.forEach((p, i) => out.set(p, chunks[i].at * 8));
  applyCore(out, chunks, inp, prog);
  return out;
}

function applyCore(out: Uint8Array, chunks: Chunk[], inp: LinkInputs, prog: ProgramRange) {
  for (const c of chunks) {
    const secName = inp.elf.sections[c.shndx].name;
    for (const r of inp.coreRelos) {
      if (r.section !== secName || r.insn < c.start || r.insn >= c.end) continue;
      const idx = c.at + r.insn - c.start;
      if (!inp.core) {
        throw new ElfError(
          `${inp.what}: program '${prog.name}' has CO-RE relocations but no target BTF is available`,
        );
      }
      try {
        const value = inp.core.resolve(r);
        let newSize: number | undefined;
        if (r.kind === CORE_KIND.FIELD_BYTE_OFFSET) {
          const size = inp.core.resolve({ ...r, kind: CORE_KIND.FIELD_BYTE_SIZE });
          if (size.local !== size.target) newSize = Number(size.target);
        }
        patchCoreInsn(out, idx, r, value, newSize);
      } catch (e) {
        throw new ElfError(
          `${inp.what}: program '${prog.name}' (${secName}, insn ${r.insn}): CO-RE relocation ` +
            `(kind ${r.kind}, type ${r.typeId}, access ${r.access}): ${(e as Error).message}`,
        );
      }
    }
  }
}
