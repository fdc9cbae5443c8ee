/** Minimal ELF64 little-endian reader: section headers, names and contents. */

export const SHF_EXECINSTR = 0x4;
export const SHT_PROGBITS = 1;

export interface ElfSection {
  index: number;
  name: string;
  type: number;
  flags: bigint;
  offset: number;
  size: number;
  /** sh_link: for symbol tables, the index of their string table. */
  link: number;
  /** sh_info: for relocation sections, the index of the section they apply to. */
  info: number;
  data: Uint8Array;
}

export class ElfError extends Error {
  override name = "ElfError";
}

export function isElf(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c &&
    bytes[3] === 0x46;
}

/** Reads the section table of an ELF64 LE file; `what` names the file in errors. */
export function readSections(bytes: Uint8Array, what = "ELF file"): ElfSection[] {
  if (!isElf(bytes)) throw new ElfError(`${what}: not an ELF file (bad magic)`);
  if (bytes[4] !== 2 || bytes[5] !== 1) {
    throw new ElfError(`${what}: only 64-bit little-endian ELF is supported`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shoff = Number(view.getBigUint64(0x28, true));
  const shentsize = view.getUint16(0x3a, true);
  const shnum = view.getUint16(0x3c, true);
  const shstrndx = view.getUint16(0x3e, true);
  if (shentsize < 64 || shoff + shnum * shentsize > bytes.length) {
    throw new ElfError(`${what}: section header table at ${shoff} runs past the end of the file`);
  }
  const raw = [];
  for (let i = 0; i < shnum; i++) {
    const at = shoff + i * shentsize;
    const type = view.getUint32(at + 4, true);
    const offset = Number(view.getBigUint64(at + 0x18, true));
    const size = Number(view.getBigUint64(at + 0x20, true));
    const nobits = type === 8;
    if (!nobits && offset + size > bytes.length) {
      throw new ElfError(
        `${what}: section ${i} (offset ${offset}, size ${size}) runs past the end`,
      );
    }
    raw.push({
      nameOff: view.getUint32(at, true),
      type,
      flags: view.getBigUint64(at + 8, true),
      offset,
      size,
      link: view.getUint32(at + 40, true),
      info: view.getUint32(at + 44, true),
      data: nobits ? new Uint8Array(0) : bytes.subarray(offset, offset + size),
    });
  }
  const strtab = raw[shstrndx]?.data;
  if (!strtab) throw new ElfError(`${what}: section name table index ${shstrndx} is invalid`);
  const nameAt = (off: number) => {
    let end = off;
    while (end < strtab.length && strtab[end] !== 0) end++;
    return new TextDecoder().decode(strtab.subarray(off, end));
  };
  return raw.map((s, index) => ({ index, name: nameAt(s.nameOff), ...s }));
}

export const EM_BPF = 247;

const MACHINES: Readonly<Record<number, string>> = {
  2: "SPARC",
  3: "x86 (i386)",
  8: "MIPS",
  20: "PowerPC",
  21: "PowerPC64",
  22: "s390",
  40: "ARM",
  43: "SPARC V9",
  50: "IA-64",
  62: "x86-64",
  183: "aarch64",
  243: "RISC-V",
  247: "eBPF",
  258: "LoongArch",
};

/** A machine number (e_machine) as a person reads it: "aarch64 (EM 183)". */
export function machineName(machine: number): string {
  const name = MACHINES[machine];
  return name ? `${name} (e_machine ${machine})` : `e_machine ${machine}`;
}

/** Refuses an ELF file whose e_machine is not EM_BPF: its code is not eBPF instructions. */
export function requireBpfMachine(bytes: Uint8Array, what = "ELF file"): void {
  if (bytes.length < 0x14) throw new ElfError(`${what}: ELF header is truncated`);
  const machine = bytes[0x12] | (bytes[0x13] << 8);
  if (machine !== EM_BPF) {
    throw new ElfError(
      `${what}: machine is ${machineName(machine)}, not eBPF (e_machine ${EM_BPF}): ` +
        `its code is not eBPF instructions`,
    );
  }
}

/** Sections holding code (SHF_EXECINSTR) with at least one byte, of an eBPF ELF file. */
export function codeSections(bytes: Uint8Array, what?: string): ElfSection[] {
  const sections = readSections(bytes, what);
  requireBpfMachine(bytes, what);
  return sections.filter((s) =>
    (s.flags & BigInt(SHF_EXECINSTR)) !== 0n && s.size > 0 && s.type === SHT_PROGBITS
  );
}
