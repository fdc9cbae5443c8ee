/**
 * USDT probes as <sys/sdt.h> records them: one ELF note per probe site in
 * `.note.stapsdt` (owner "stapsdt", type 3), holding the site's address, the
 * link-time address of `.stapsdt.base`, the semaphore's address (0: none),
 * then "provider\0name\0arguments\0". Addresses are the link-time ones; a
 * prelinked file moved its sections, which `.stapsdt.base`'s actual address
 * reveals (SystemTap's rule, which libbpf follows too).
 */
import { ElfError, readSections } from "./sections.ts";
import { fileOffsetOfAddress } from "./symbols.ts";

const NT_STAPSDT = 3;

export interface UsdtNote {
  provider: string;
  name: string;
  /** The probe site's virtual address (adjusted for prelinking). */
  address: bigint;
  /** The semaphore's virtual address, 0n when the probe has none. */
  semaphore: bigint;
  /** The argument specs as the compiler wrote them, e.g. "-4@%edi 8@-16(%rbp) 4@$5". */
  args: string;
}

function cstrAt(bytes: Uint8Array, at: number, end: number): { s: string; next: number } {
  let e = at;
  while (e < end && bytes[e] !== 0) e++;
  if (e >= end) throw new Error("unterminated string");
  return { s: new TextDecoder().decode(bytes.subarray(at, e)), next: e + 1 };
}

/** Every USDT probe site of an ELF file (none when it has no `.note.stapsdt`). */
export function readUsdtNotes(bytes: Uint8Array, what = "ELF file"): UsdtNote[] {
  const sections = readSections(bytes, what);
  const notes = sections.find((s) => s.name === ".note.stapsdt");
  if (!notes) return [];
  const baseSec = sections.find((s) => s.name === ".stapsdt.base");
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const baseAddr = baseSec ? v.getBigUint64(sectionAddrAt(bytes, baseSec.index), true) : 0n;
  const out: UsdtNote[] = [];
  const d = notes.data;
  const nv = new DataView(d.buffer, d.byteOffset, d.byteLength);
  const align4 = (n: number) => (n + 3) & ~3;
  for (let at = 0; at + 12 <= d.length;) {
    const namesz = nv.getUint32(at, true), descsz = nv.getUint32(at + 4, true);
    const type = nv.getUint32(at + 8, true);
    const nameAt = at + 12, descAt = nameAt + align4(namesz), next = descAt + align4(descsz);
    if (next > d.length) {
      throw new ElfError(`${what}: .note.stapsdt: note at offset ${at} runs past the section`);
    }
    const owner = new TextDecoder().decode(d.subarray(nameAt, nameAt + namesz)).replace(
      /\0.*$/s,
      "",
    );
    if (owner === "stapsdt" && type === NT_STAPSDT) {
      if (descsz < 24 + 3) throw new ElfError(`${what}: .note.stapsdt: note at ${at} is too short`);
      let address = nv.getBigUint64(descAt, true);
      const base = nv.getBigUint64(descAt + 8, true);
      let semaphore = nv.getBigUint64(descAt + 16, true);
      try {
        const end = descAt + descsz;
        const p = cstrAt(d, descAt + 24, end);
        const n = cstrAt(d, p.next, end);
        const a = cstrAt(d, n.next, end);
        if (baseSec && base) {
          // Prelinked: everything moved by what .stapsdt.base moved.
          address += baseAddr - base;
          if (semaphore) semaphore += baseAddr - base;
        }
        out.push({ provider: p.s, name: n.s, address, semaphore, args: a.s });
      } catch (e) {
        throw new ElfError(`${what}: .note.stapsdt: note at ${at}: ${(e as Error).message}`);
      }
    }
    at = next;
  }
  return out;
}

/** Where section `index`'s sh_addr field is in the file. */
function sectionAddrAt(bytes: Uint8Array, index: number): number {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shoff = Number(v.getBigUint64(0x28, true));
  const shentsize = v.getUint16(0x3a, true);
  return shoff + index * shentsize + 0x10;
}

export interface UsdtSite extends UsdtNote {
  /** File offset of the probe site (what a uprobe attaches to). */
  fileOffset: bigint;
  /** File offset of the semaphore (perf_event_attr's ref_ctr_offset), 0n for none. */
  semaphoreOffset: bigint;
}

/** The sites of probe PROVIDER:NAME in a file, with file offsets; an error names what exists. */
export function findUsdtSites(
  bytes: Uint8Array,
  provider: string,
  name: string,
  what = "ELF file",
): UsdtSite[] {
  const notes = readUsdtNotes(bytes, what);
  const sites = notes.filter((n) => n.provider === provider && n.name === name);
  if (!sites.length) {
    const have = [...new Set(notes.map((n) => `${n.provider}:${n.name}`))];
    throw new ElfError(
      `${what}: no USDT probe ${provider}:${name} (${
        have.length ? `it has ${have.slice(0, 20).join(", ")}` : "it has no USDT probes"
      })`,
    );
  }
  return sites.map((n) => ({
    ...n,
    fileOffset: fileOffsetOfAddress(bytes, n.address, what),
    semaphoreOffset: n.semaphore ? fileOffsetOfAddress(bytes, n.semaphore, what) : 0n,
  }));
}
