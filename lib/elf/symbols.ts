/**
 * Function symbols of an ELF64 file (executable or shared library) and their
 * file offsets, which is what a uprobe attaches to: `.symtab` when present,
 * else `.dynsym`, with symbol versions (`malloc@@GLIBC_2.2.5`) matched by
 * base name. An IFUNC symbol is reported as such: which implementation it
 * picks is decided in the process at run time.
 */
import { ElfError, readSections } from "./sections.ts";

export const STT_FUNC = 2;
export const STT_GNU_IFUNC = 10;
const SHT_SYMTAB = 2, SHT_DYNSYM = 11, SHT_GNU_VERSYM = 0x6fffffff, SHT_GNU_VERDEF = 0x6ffffffd;
const PT_LOAD = 1;

export interface ElfSymbol {
  name: string;
  /** Version from .gnu.version_d, e.g. GLIBC_2.2.5 (dynamic symbols only). */
  version?: string;
  value: bigint;
  size: bigint;
  type: number;
  /** Where the code is in the file: the offset a uprobe names. */
  fileOffset: bigint;
}

interface Segment {
  vaddr: bigint;
  offset: bigint;
  filesz: bigint;
}

function loadSegments(bytes: Uint8Array, what: string): Segment[] {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const phoff = Number(v.getBigUint64(0x20, true));
  const phentsize = v.getUint16(0x36, true), phnum = v.getUint16(0x38, true);
  if (phoff + phnum * phentsize > bytes.length) {
    throw new ElfError(`${what}: program header table runs past the end of the file`);
  }
  const out: Segment[] = [];
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    if (v.getUint32(at, true) !== PT_LOAD) continue;
    out.push({
      offset: v.getBigUint64(at + 8, true),
      vaddr: v.getBigUint64(at + 16, true),
      filesz: v.getBigUint64(at + 32, true),
    });
  }
  return out;
}

/** The file offset of a virtual address, through the PT_LOAD segment holding it. */
export function fileOffsetOf(segments: readonly Segment[], vaddr: bigint): bigint | undefined {
  const s = segments.find((s) => vaddr >= s.vaddr && vaddr < s.vaddr + s.filesz);
  return s ? vaddr - s.vaddr + s.offset : undefined;
}

function cstr(bytes: Uint8Array, at: number): string {
  let end = at;
  while (end < bytes.length && bytes[end] !== 0) end++;
  return new TextDecoder().decode(bytes.subarray(at, end));
}

/** Version names by index, from .gnu.version_d. */
function versionNames(verdef: Uint8Array, strtab: Uint8Array): Map<number, string> {
  const names = new Map<number, string>();
  const v = new DataView(verdef.buffer, verdef.byteOffset, verdef.byteLength);
  for (let at = 0; at + 20 <= verdef.length;) {
    const index = v.getUint16(at + 4, true), aux = v.getUint32(at + 12, true);
    const next = v.getUint32(at + 16, true);
    if (at + aux + 8 <= verdef.length) names.set(index, cstr(strtab, v.getUint32(at + aux, true)));
    if (!next) break;
    at += next;
  }
  return names;
}

/** Every function (and IFUNC) symbol with a definition in this file. */
export function functionSymbols(bytes: Uint8Array, what = "ELF file"): ElfSymbol[] {
  const sections = readSections(bytes, what);
  const segments = loadSegments(bytes, what);
  const table = sections.find((s) => s.type === SHT_SYMTAB) ??
    sections.find((s) => s.type === SHT_DYNSYM);
  if (!table) throw new ElfError(`${what}: no symbol table (.symtab or .dynsym)`);
  const strtab = sections[table.link]?.data;
  if (!strtab) throw new ElfError(`${what}: symbol table ${table.name} has no string table`);
  const dynamic = table.type === SHT_DYNSYM;
  const versym = dynamic ? sections.find((s) => s.type === SHT_GNU_VERSYM)?.data : undefined;
  const verdef = dynamic ? sections.find((s) => s.type === SHT_GNU_VERDEF)?.data : undefined;
  const versions = verdef ? versionNames(verdef, strtab) : new Map<number, string>();
  const out: ElfSymbol[] = [];
  const t = new DataView(table.data.buffer, table.data.byteOffset, table.data.byteLength);
  for (let i = 1; i * 24 + 24 <= table.data.length; i++) {
    const at = i * 24;
    const info = t.getUint8(at + 4), shndx = t.getUint16(at + 6, true);
    const type = info & 0xf;
    if ((type !== STT_FUNC && type !== STT_GNU_IFUNC) || shndx === 0) continue;
    const value = t.getBigUint64(at + 8, true);
    const fileOffset = fileOffsetOf(segments, value);
    if (fileOffset === undefined) continue;
    const ver = versym
      ? new DataView(versym.buffer, versym.byteOffset).getUint16(i * 2, true) & 0x7fff
      : 0;
    out.push({
      name: cstr(strtab, t.getUint32(at, true)),
      version: ver > 1 ? versions.get(ver) : undefined,
      value,
      size: t.getBigUint64(at + 16, true),
      type,
      fileOffset,
    });
  }
  return out;
}

/**
 * The file offset of function `name` (a plain name, or `name@VERSION`), as
 * libbpf resolves uprobe targets. Errors name the file and the symbol.
 */
export function resolveFunction(bytes: Uint8Array, name: string, what = "ELF file"): ElfSymbol {
  const [base, version] = name.split(/@@?/);
  const found = functionSymbols(bytes, what).filter((s) =>
    s.name === base && (version === undefined || s.version === version)
  );
  if (found.length === 0) throw new ElfError(`${what}: no function '${name}'`);
  // Several versions of one name at different addresses: which one is meant is ambiguous,
  // so, like libbpf, refuse unless the caller names the version.
  const offsets = new Set(found.map((s) => s.fileOffset));
  if (offsets.size > 1 && version === undefined) {
    const versions = found.map((s) => s.version ?? "(none)").join(", ");
    throw new ElfError(
      `${what}: '${name}' has several versions (${versions}); name one as ${base}@VERSION`,
    );
  }
  return found[0];
}

/** The file offset of virtual address `vaddr` in an ELF file's loaded segments. */
export function fileOffsetOfAddress(bytes: Uint8Array, vaddr: bigint, what = "ELF file"): bigint {
  const off = fileOffsetOf(loadSegments(bytes, what), vaddr);
  if (off === undefined) {
    throw new ElfError(`${what}: address 0x${vaddr.toString(16)} is in no loaded segment`);
  }
  return off;
}
