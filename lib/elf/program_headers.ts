/** What an ELF executable's program headers say about how it is loaded. */
import { ElfError, isElf } from "./sections.ts";

const PT_DYNAMIC = 2, PT_INTERP = 3;

export interface ElfLinkage {
  /** The program interpreter (PT_INTERP), e.g. /lib64/ld-linux-x86-64.so.2; none when static. */
  interp?: string;
  /** Has a dynamic section (PT_DYNAMIC): a static-pie has one, but no interpreter. */
  dynamic: boolean;
  /** e_type: 2 executable, 3 shared object or PIE. */
  type: number;
}

/**
 * The linkage of a 64-bit little-endian ELF file from its header and program headers; `bytes`
 * may be a prefix of the file as long as it holds them (`programHeadersEnd` says how much).
 */
export function elfLinkage(bytes: Uint8Array, what = "ELF file"): ElfLinkage {
  const end = programHeadersEnd(bytes, what);
  if (end > bytes.length) throw new ElfError(`${what}: program headers run past the end`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const phoff = Number(v.getBigUint64(0x20, true));
  const phentsize = v.getUint16(0x36, true);
  const phnum = v.getUint16(0x38, true);
  let interp: string | undefined, dynamic = false;
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    const type = v.getUint32(at, true);
    if (type === PT_DYNAMIC) dynamic = true;
    if (type === PT_INTERP) {
      const off = Number(v.getBigUint64(at + 8, true));
      const size = Number(v.getBigUint64(at + 0x20, true));
      const raw = off + size <= bytes.length ? bytes.subarray(off, off + size) : new Uint8Array();
      interp = new TextDecoder().decode(raw).replace(/\0.*$/s, "") || "(unreadable)";
    }
  }
  return { interp, dynamic, type: v.getUint16(0x10, true) };
}

/** How many bytes from the start of the file hold the ELF header and the program headers. */
export function programHeadersEnd(bytes: Uint8Array, what = "ELF file"): number {
  if (!isElf(bytes)) throw new ElfError(`${what}: not an ELF file (bad magic)`);
  if (bytes.length < 64) throw new ElfError(`${what}: ELF header is truncated`);
  if (bytes[4] !== 2 || bytes[5] !== 1) {
    throw new ElfError(`${what}: only 64-bit little-endian ELF is supported`);
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const phoff = Number(v.getBigUint64(0x20, true));
  return phoff + v.getUint16(0x36, true) * v.getUint16(0x38, true);
}
