/** `.BTF.ext`: the CO-RE relocation records of an eBPF object (func and line info are skipped). */
import { Btf, BtfError } from "./btf.ts";

export const CORE_KIND = {
  FIELD_BYTE_OFFSET: 0,
  FIELD_BYTE_SIZE: 1,
  FIELD_EXISTS: 2,
  FIELD_SIGNED: 3,
  FIELD_LSHIFT_U64: 4,
  FIELD_RSHIFT_U64: 5,
  TYPE_ID_LOCAL: 6,
  TYPE_ID_TARGET: 7,
  TYPE_EXISTS: 8,
  TYPE_SIZE: 9,
  ENUMVAL_EXISTS: 10,
  ENUMVAL_VALUE: 11,
  TYPE_MATCHES: 12,
} as const;

export interface CoreRelo {
  section: string;
  /** Instruction index within the section. */
  insn: number;
  typeId: number;
  access: string;
  kind: number;
}

export function parseCoreRelos(ext: Uint8Array, btf: Btf, what = ".BTF.ext"): CoreRelo[] {
  if (ext.length < 8) throw new BtfError(`${what}: too short for a header`);
  const v = new DataView(ext.buffer, ext.byteOffset, ext.byteLength);
  if (v.getUint16(0, true) !== 0xeb9f) throw new BtfError(`${what}: bad magic`);
  const hdrLen = v.getUint32(4, true);
  if (hdrLen < 32) return []; // an older header without CO-RE relocations
  const off = v.getUint32(24, true), len = v.getUint32(28, true);
  if (len === 0) return [];
  let at = hdrLen + off;
  const end = at + len;
  if (end > ext.length) throw new BtfError(`${what}: CO-RE relocations run past the end`);
  const recSize = v.getUint32(at, true);
  at += 4;
  if (recSize < 16) throw new BtfError(`${what}: CO-RE record size ${recSize} is too small`);
  const out: CoreRelo[] = [];
  while (at < end) {
    const section = btf.str(v.getUint32(at, true));
    const n = v.getUint32(at + 4, true);
    at += 8;
    if (at + n * recSize > end) {
      throw new BtfError(`${what}: CO-RE records of ${section} run past the end`);
    }
    for (let i = 0; i < n; i++, at += recSize) {
      const insnOff = v.getUint32(at, true);
      out.push({
        section,
        insn: insnOff / 8,
        typeId: v.getUint32(at + 4, true),
        access: btf.str(v.getUint32(at + 8, true)),
        kind: v.getUint32(at + 12, true),
      });
    }
  }
  return out;
}
