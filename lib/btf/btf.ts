/**
 * BTF (BPF Type Format) reader: the type graph of an eBPF object's `.BTF`
 * section or of the kernel's /sys/kernel/btf/vmlinux. Type ids start at 1;
 * id 0 is void.
 */

export const BTF_KIND = {
  INT: 1,
  PTR: 2,
  ARRAY: 3,
  STRUCT: 4,
  UNION: 5,
  ENUM: 6,
  FWD: 7,
  TYPEDEF: 8,
  VOLATILE: 9,
  CONST: 10,
  RESTRICT: 11,
  FUNC: 12,
  FUNC_PROTO: 13,
  VAR: 14,
  DATASEC: 15,
  FLOAT: 16,
  DECL_TAG: 17,
  TYPE_TAG: 18,
  ENUM64: 19,
} as const;

const KIND_NAMES = Object.fromEntries(Object.entries(BTF_KIND).map(([k, v]) => [v, k]));

export interface BtfMember {
  name: string;
  type: number;
  /** Offset in bits from the start of the struct. */
  bitOffset: number;
  /** Width of a bitfield in bits; 0 for an ordinary member. */
  bitSize: number;
}

export interface BtfType {
  id: number;
  kind: number;
  name: string;
  /** size (INT, STRUCT, UNION, ENUM, DATASEC, FLOAT) or referenced type id (PTR, TYPEDEF, ...). */
  sizeOrType: number;
  kindFlag: boolean;
  /** INT: encoding bits (1 signed, 2 char, 4 bool), bit offset and width. */
  intEncoding?: number;
  intBits?: number;
  intOffset?: number;
  /** ARRAY */
  array?: { type: number; indexType: number; nelems: number };
  /** STRUCT, UNION */
  members?: BtfMember[];
  /** ENUM, ENUM64 */
  enumValues?: { name: string; value: bigint }[];
  /** FUNC_PROTO */
  params?: { name: string; type: number }[];
  /** VAR: linkage */
  linkage?: number;
  /** DATASEC */
  vars?: { type: number; offset: number; size: number }[];
}

export class BtfError extends Error {
  override name = "BtfError";
}

export class Btf {
  /** types[id]; types[0] is void. */
  readonly types: BtfType[] = [];
  private byName?: Map<string, number[]>;

  constructor(readonly strings: Uint8Array, what: string, typeData: Uint8Array) {
    this.types.push({ id: 0, kind: 0, name: "void", sizeOrType: 0, kindFlag: false });
    const v = new DataView(typeData.buffer, typeData.byteOffset, typeData.byteLength);
    let at = 0;
    const need = (n: number) => {
      if (at + n > typeData.length) {
        throw new BtfError(
          `${what}: type ${this.types.length} runs past the end of the type section`,
        );
      }
    };
    while (at < typeData.length) {
      need(12);
      const nameOff = v.getUint32(at, true), info = v.getUint32(at + 4, true);
      const sizeOrType = v.getUint32(at + 8, true);
      at += 12;
      const vlen = info & 0xffff, kind = (info >>> 24) & 0x1f, kindFlag = (info >>> 31) !== 0;
      const t: BtfType = {
        id: this.types.length,
        kind,
        name: this.str(nameOff),
        sizeOrType,
        kindFlag,
      };
      switch (kind) {
        case BTF_KIND.INT: {
          need(4);
          const e = v.getUint32(at, true);
          at += 4;
          t.intEncoding = (e >>> 24) & 0xf;
          t.intOffset = (e >>> 16) & 0xff;
          t.intBits = e & 0xff;
          break;
        }
        case BTF_KIND.ARRAY:
          need(12);
          t.array = {
            type: v.getUint32(at, true),
            indexType: v.getUint32(at + 4, true),
            nelems: v.getUint32(at + 8, true),
          };
          at += 12;
          break;
        case BTF_KIND.STRUCT:
        case BTF_KIND.UNION:
          need(12 * vlen);
          t.members = [];
          for (let i = 0; i < vlen; i++, at += 12) {
            const off = v.getUint32(at + 8, true);
            t.members.push({
              name: this.str(v.getUint32(at, true)),
              type: v.getUint32(at + 4, true),
              bitOffset: kindFlag ? off & 0xffffff : off,
              bitSize: kindFlag ? off >>> 24 : 0,
            });
          }
          break;
        case BTF_KIND.ENUM:
          need(8 * vlen);
          t.enumValues = [];
          for (let i = 0; i < vlen; i++, at += 8) {
            const raw = kindFlag ? v.getInt32(at + 4, true) : v.getUint32(at + 4, true);
            t.enumValues.push({ name: this.str(v.getUint32(at, true)), value: BigInt(raw) });
          }
          break;
        case BTF_KIND.ENUM64:
          need(12 * vlen);
          t.enumValues = [];
          for (let i = 0; i < vlen; i++, at += 12) {
            const lo = BigInt(v.getUint32(at + 4, true)), hi = BigInt(v.getUint32(at + 8, true));
            const u = (hi << 32n) | lo;
            t.enumValues.push({
              name: this.str(v.getUint32(at, true)),
              value: kindFlag ? BigInt.asIntN(64, u) : u,
            });
          }
          break;
        case BTF_KIND.FUNC_PROTO:
          need(8 * vlen);
          t.params = [];
          for (let i = 0; i < vlen; i++, at += 8) {
            t.params.push({
              name: this.str(v.getUint32(at, true)),
              type: v.getUint32(at + 4, true),
            });
          }
          break;
        case BTF_KIND.VAR:
          need(4);
          t.linkage = v.getUint32(at, true);
          at += 4;
          break;
        case BTF_KIND.DATASEC:
          need(12 * vlen);
          t.vars = [];
          for (let i = 0; i < vlen; i++, at += 12) {
            t.vars.push({
              type: v.getUint32(at, true),
              offset: v.getUint32(at + 4, true),
              size: v.getUint32(at + 8, true),
            });
          }
          break;
        case BTF_KIND.DECL_TAG:
          need(4);
          at += 4;
          break;
        case BTF_KIND.PTR:
        case BTF_KIND.FWD:
        case BTF_KIND.TYPEDEF:
        case BTF_KIND.VOLATILE:
        case BTF_KIND.CONST:
        case BTF_KIND.RESTRICT:
        case BTF_KIND.FUNC:
        case BTF_KIND.FLOAT:
        case BTF_KIND.TYPE_TAG:
          break;
        default:
          throw new BtfError(`${what}: type ${t.id} has unknown kind ${kind}`);
      }
      this.types.push(t);
    }
  }

  /** Parses a whole BTF blob (header, types, strings). */
  static parse(bytes: Uint8Array, what = "BTF"): Btf {
    if (bytes.length < 24) {
      throw new BtfError(`${what}: ${bytes.length} bytes is too short for a header`);
    }
    const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (v.getUint16(0, true) !== 0xeb9f) throw new BtfError(`${what}: bad magic (not BTF)`);
    const hdrLen = v.getUint32(4, true);
    const typeOff = v.getUint32(8, true), typeLen = v.getUint32(12, true);
    const strOff = v.getUint32(16, true), strLen = v.getUint32(20, true);
    const end = (off: number, len: number) => hdrLen + off + len;
    if (end(typeOff, typeLen) > bytes.length || end(strOff, strLen) > bytes.length) {
      throw new BtfError(
        `${what}: type or string section runs past the end (${bytes.length} bytes)`,
      );
    }
    const strings = bytes.subarray(hdrLen + strOff, hdrLen + strOff + strLen);
    return new Btf(strings, what, bytes.subarray(hdrLen + typeOff, hdrLen + typeOff + typeLen));
  }

  str(off: number): string {
    let end = off;
    while (end < this.strings.length && this.strings[end] !== 0) end++;
    return new TextDecoder().decode(this.strings.subarray(off, end));
  }

  type(id: number, what = "type"): BtfType {
    const t = this.types[id];
    if (!t) throw new BtfError(`${what}: BTF type id ${id} does not exist`);
    return t;
  }

  kindName(kind: number): string {
    return KIND_NAMES[kind]?.toLowerCase() ?? `kind ${kind}`;
  }

  /** Follows typedefs and const/volatile/restrict/type tags. */
  skipModifiers(id: number): BtfType {
    let t = this.type(id);
    for (let hops = 0; hops < 64; hops++) {
      if (
        t.kind !== BTF_KIND.TYPEDEF && t.kind !== BTF_KIND.CONST && t.kind !== BTF_KIND.VOLATILE &&
        t.kind !== BTF_KIND.RESTRICT && t.kind !== BTF_KIND.TYPE_TAG
      ) return t;
      t = this.type(t.sizeOrType);
    }
    throw new BtfError(`BTF type ${id}: modifier chain too long`);
  }

  /** Size in bytes of a type, as sizeof would give. */
  sizeOf(id: number): number {
    const t = this.skipModifiers(id);
    switch (t.kind) {
      case BTF_KIND.INT:
      case BTF_KIND.STRUCT:
      case BTF_KIND.UNION:
      case BTF_KIND.ENUM:
      case BTF_KIND.ENUM64:
      case BTF_KIND.FLOAT:
      case BTF_KIND.DATASEC:
        return t.sizeOrType;
      case BTF_KIND.PTR:
        return 8;
      case BTF_KIND.ARRAY:
        return t.array!.nelems * this.sizeOf(t.array!.type);
      default:
        throw new BtfError(`BTF type ${id} (${this.kindName(t.kind)}) has no size`);
    }
  }

  /** Ids of the named types (any kind). */
  findByName(name: string): number[] {
    if (!this.byName) {
      this.byName = new Map();
      for (const t of this.types) {
        if (!t.name) continue;
        const list = this.byName.get(t.name);
        if (list) list.push(t.id);
        else this.byName.set(t.name, [t.id]);
      }
    }
    return this.byName.get(name) ?? [];
  }
}
