/** The parts of a relocatable eBPF ELF (clang -target bpf -c) a loader needs: symbols and relocations. */
import {
  ElfError,
  ElfSection,
  readSections,
  requireBpfMachine,
  SHF_EXECINSTR,
} from "../elf/sections.ts";

const SHT_SYMTAB = 2, SHT_REL = 9;
const ET_REL = 1;
/** R_BPF_64_64: the 64-bit immediate of an lddw, which spans two instruction slots. */
const R_BPF_64_64 = 1;

export const STT_OBJECT = 1, STT_FUNC = 2, STT_SECTION = 3;

export interface ObjSymbol {
  name: string;
  type: number;
  /** 0 local, 1 global, 2 weak */
  bind: number;
  shndx: number;
  value: number;
  size: number;
}

export interface ObjReloc {
  /** Byte offset within the section the relocation applies to. */
  offset: number;
  type: number;
  symbol: ObjSymbol;
}

export interface RelocatableElf {
  sections: ElfSection[];
  symbols: ObjSymbol[];
  /** Relocations by the index of the section they apply to. */
  relocs: Map<number, ObjReloc[]>;
  byName(name: string): ElfSection | undefined;
}

export function readRelocatable(bytes: Uint8Array, what: string): RelocatableElf {
  const sections = readSections(bytes, what);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  requireBpfMachine(bytes, what);
  if (v.getUint16(0x10, true) !== ET_REL) {
    throw new ElfError(`${what}: not a relocatable object (ET_REL)`);
  }
  const isCode = (s: ElfSection) => (s.flags & BigInt(SHF_EXECINSTR)) !== 0n;
  for (const s of sections) {
    if (isCode(s) && s.size % 8 !== 0) {
      throw new ElfError(
        `${what}: code section '${s.name}' is ${s.size} bytes long, ` +
          `not a whole number of 8-byte instructions`,
      );
    }
  }
  const symtab = sections.find((s) => s.type === SHT_SYMTAB);
  if (!symtab) throw new ElfError(`${what}: no symbol table`);
  const strtab = sections[symtab.link];
  if (!strtab) throw new ElfError(`${what}: symbol table has no string table`);
  const cstr = (off: number) => {
    let end = off;
    while (end < strtab.data.length && strtab.data[end] !== 0) end++;
    return new TextDecoder().decode(strtab.data.subarray(off, end));
  };
  const symbols: ObjSymbol[] = [];
  const sv = new DataView(symtab.data.buffer, symtab.data.byteOffset, symtab.data.byteLength);
  for (let at = 0; at + 24 <= symtab.data.length; at += 24) {
    const info = sv.getUint8(at + 4);
    const shndx = sv.getUint16(at + 6, true);
    const type = info & 0xf;
    symbols.push({
      name: type === STT_SECTION ? (sections[shndx]?.name ?? "") : cstr(sv.getUint32(at, true)),
      type,
      bind: info >> 4,
      shndx,
      value: Number(sv.getBigUint64(at + 8, true)),
      size: Number(sv.getBigUint64(at + 16, true)),
    });
  }
  const relocs = new Map<number, ObjReloc[]>();
  for (const s of sections) {
    if (s.type !== SHT_REL) continue;
    const rv = new DataView(s.data.buffer, s.data.byteOffset, s.data.byteLength);
    const list: ObjReloc[] = [];
    const applied = sections[s.info];
    for (let at = 0; at + 16 <= s.data.length; at += 16) {
      const rinfo = rv.getBigUint64(at + 8, true);
      const symIdx = Number(rinfo >> 32n);
      const symbol = symbols[symIdx];
      if (!symbol) {
        throw new ElfError(
          `${what}: ${s.name}: relocation names symbol ${symIdx}, which does not exist`,
        );
      }
      const reloc = {
        offset: Number(rv.getBigUint64(at, true)),
        type: Number(rinfo & 0xffffffffn),
        symbol,
      };
      if (applied) checkRelocPlace(what, s, at / 16, reloc, applied, isCode(applied));
      list.push(reloc);
    }
    relocs.set(s.info, list);
  }
  return { sections, symbols, relocs, byName: (name) => sections.find((s) => s.name === name) };
}

/**
 * Refuses a relocation that does not land on a whole instruction of the section it applies to:
 * past the section's end, not on an 8-byte instruction boundary, or an lddw (R_BPF_64_64, 16
 * bytes) starting in the last instruction slot. Such a relocation would otherwise be skipped and
 * leave the instruction unpatched (an lddw of a map as `r1 = 0`).
 */
function checkRelocPlace(
  what: string,
  relSec: ElfSection,
  index: number,
  r: ObjReloc,
  target: ElfSection,
  code: boolean,
): void {
  const why = r.offset >= target.size
    ? `is past the end of '${target.name}' (${target.size} bytes)`
    : !code
    ? undefined
    : r.offset % 8 !== 0
    ? `is not on an instruction boundary (a multiple of 8) in '${target.name}'`
    : r.type === R_BPF_64_64 && r.offset + 16 > target.size
    ? `is in the last instruction of '${target.name}' (${target.size} bytes), ` +
      `but an lddw needs 16 bytes`
    : undefined;
  if (why === undefined) return;
  throw new ElfError(
    `${what}: ${relSec.name}: relocation ${index} (offset ${r.offset}, type ${r.type}, ` +
      `symbol '${r.symbol.name}') ${why}`,
  );
}
