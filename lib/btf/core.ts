/**
 * CO-RE: rewrites the field offsets, sizes and type facts a program was
 * compiled with (its own BTF) into those of the running kernel's BTF, the way
 * libbpf does before loading. Types are matched by name (ignoring a
 * `___flavor` suffix) and fields by name along the access path.
 */
import { Btf, BTF_KIND, BtfError, BtfType } from "./btf.ts";
import { CORE_KIND, CoreRelo } from "./btf_ext.ts";

interface FieldSpec {
  /** Type of the accessed field (or the root type for type relocations). */
  typeId: number;
  bitOffset: number;
  bitSize: number;
}

const essentialName = (name: string) => {
  const i = name.indexOf("___");
  return i > 0 ? name.slice(0, i) : name;
};

const isComposite = (t: BtfType) => t.kind === BTF_KIND.STRUCT || t.kind === BTF_KIND.UNION;
const isEnum = (t: BtfType) => t.kind === BTF_KIND.ENUM || t.kind === BTF_KIND.ENUM64;

/** Walks `access` ("0:2:1") from `rootId` in the local BTF and records member names. */
function localSpec(btf: Btf, rootId: number, access: number[]) {
  let t = btf.skipModifiers(rootId);
  let bitOffset = access[0] * btf.sizeOf(rootId) * 8;
  const path: ({ member: string } | { index: number })[] = [];
  let typeId = rootId, bitSize = 0;
  for (const idx of access.slice(1)) {
    if (isComposite(t)) {
      const m = t.members![idx];
      if (!m) throw new BtfError(`member ${idx} of ${t.name || "anonymous struct"} does not exist`);
      path.push({ member: m.name });
      bitOffset += m.bitOffset;
      bitSize = m.bitSize;
      typeId = m.type;
    } else if (t.kind === BTF_KIND.ARRAY) {
      path.push({ index: idx });
      typeId = t.array!.type;
      bitOffset += idx * btf.sizeOf(typeId) * 8;
      bitSize = 0;
    } else {
      throw new BtfError(`access ${access.join(":")} goes into a ${btf.kindName(t.kind)}`);
    }
    t = btf.skipModifiers(typeId);
  }
  return { path, spec: { typeId, bitOffset, bitSize } as FieldSpec };
}

/** Finds member `name` in a struct or union, looking inside anonymous members too. */
function findMember(btf: Btf, t: BtfType, name: string): FieldSpec | undefined {
  for (const m of t.members ?? []) {
    if (m.name === name) return { typeId: m.type, bitOffset: m.bitOffset, bitSize: m.bitSize };
    if (m.name === "") {
      const inner = btf.skipModifiers(m.type);
      if (!isComposite(inner)) continue;
      const found = findMember(btf, inner, name);
      if (found) return { ...found, bitOffset: found.bitOffset + m.bitOffset };
    }
  }
  return undefined;
}

/** Follows the local path in a candidate target type; undefined when it does not fit. */
function targetSpec(
  btf: Btf,
  rootId: number,
  first: number,
  path: ({ member: string } | { index: number })[],
): FieldSpec | undefined {
  let typeId = rootId, bitOffset = first * btf.sizeOf(rootId) * 8, bitSize = 0;
  for (const step of path) {
    const t = btf.skipModifiers(typeId);
    if ("member" in step) {
      if (!isComposite(t)) return undefined;
      const m = findMember(btf, t, step.member);
      if (!m) return undefined;
      typeId = m.typeId;
      bitOffset += m.bitOffset;
      bitSize = m.bitSize;
    } else {
      if (t.kind !== BTF_KIND.ARRAY) return undefined;
      if (t.array!.nelems !== 0 && step.index >= t.array!.nelems) return undefined;
      typeId = t.array!.type;
      bitOffset += step.index * btf.sizeOf(typeId) * 8;
      bitSize = 0;
    }
  }
  return { typeId, bitOffset, bitSize };
}

/** The value a relocation kind asks for, computed on one side (local or target). */
function fieldValue(btf: Btf, kind: number, f: FieldSpec): bigint {
  const t = btf.skipModifiers(f.typeId);
  let byteSize = btf.sizeOf(f.typeId);
  let byteOff = Math.floor(f.bitOffset / 8);
  if (f.bitSize) {
    // The smallest naturally aligned load that covers the whole bitfield.
    byteOff = Math.floor(f.bitOffset / 8 / byteSize) * byteSize;
    while (f.bitOffset + f.bitSize - byteOff * 8 > byteSize * 8) {
      if (byteSize >= 8) throw new BtfError("bitfield cannot be read in one load");
      byteSize *= 2;
      byteOff = Math.floor(f.bitOffset / 8 / byteSize) * byteSize;
    }
  }
  switch (kind) {
    case CORE_KIND.FIELD_BYTE_OFFSET:
      return BigInt(byteOff);
    case CORE_KIND.FIELD_BYTE_SIZE:
      return BigInt(byteSize);
    case CORE_KIND.FIELD_EXISTS:
      return 1n;
    case CORE_KIND.FIELD_SIGNED:
      return (isEnum(t) && t.kindFlag) || (t.kind === BTF_KIND.INT && (t.intEncoding! & 1))
        ? 1n
        : 0n;
    case CORE_KIND.FIELD_LSHIFT_U64:
      return BigInt(f.bitSize ? 64 - (f.bitOffset + f.bitSize - byteOff * 8) : 64 - byteSize * 8);
    case CORE_KIND.FIELD_RSHIFT_U64:
      return BigInt(f.bitSize ? 64 - f.bitSize : 64 - byteSize * 8);
  }
  throw new BtfError(`relocation kind ${kind} is not a field relocation`);
}

/** Resolves CO-RE relocations against a target BTF (usually the kernel's). */
export class CoreResolver {
  constructor(readonly local: Btf, readonly target: Btf) {}

  private candidates(localRoot: BtfType): BtfType[] {
    const name = essentialName(localRoot.name);
    if (!name) throw new BtfError("CO-RE relocation on an anonymous type");
    const out: BtfType[] = [];
    for (const t of this.target.types) {
      if (!t.name || essentialName(t.name) !== name) continue;
      const same = t.kind === localRoot.kind ||
        (isEnum(t) && isEnum(localRoot)) ||
        (localRoot.kind === BTF_KIND.FWD || t.kind === BTF_KIND.FWD);
      if (same) out.push(t);
    }
    return out;
  }

  /** Returns the local (compiled-in) and target values of one relocation. */
  resolve(r: CoreRelo): { local: bigint; target: bigint } {
    const { local, target } = this;
    const kind = r.kind;
    if (kind === CORE_KIND.TYPE_ID_LOCAL) {
      return { local: BigInt(r.typeId), target: BigInt(r.typeId) };
    }
    const root = local.type(r.typeId);
    // libbpf's convention: the root is named even when accessed through a typedef.
    const named = root.name ? root : local.skipModifiers(r.typeId);
    const cands = this.candidates(named);
    const access = r.access.split(":").map(Number);

    if (kind <= CORE_KIND.FIELD_RSHIFT_U64) {
      const { path, spec } = localSpec(local, r.typeId, access);
      const localValue = fieldValue(local, kind, spec);
      for (const c of cands) {
        const found = targetSpec(target, c.id, access[0], path);
        if (found) return { local: localValue, target: fieldValue(target, kind, found) };
      }
      if (kind === CORE_KIND.FIELD_EXISTS) return { local: localValue, target: 0n };
      const where = path.map((s) => ("member" in s ? s.member : `[${s.index}]`)).join(".");
      throw new BtfError(`field ${named.name}.${where} not found in the target BTF`);
    }
    if (kind <= CORE_KIND.TYPE_SIZE || kind === CORE_KIND.TYPE_MATCHES) {
      const c = cands[0];
      const localValue = kind === CORE_KIND.TYPE_SIZE
        ? BigInt(local.sizeOf(r.typeId))
        : kind === CORE_KIND.TYPE_ID_TARGET
        ? BigInt(r.typeId)
        : 1n;
      if (!c) {
        if (kind === CORE_KIND.TYPE_EXISTS || kind === CORE_KIND.TYPE_MATCHES) {
          return { local: localValue, target: 0n };
        }
        throw new BtfError(`type ${named.name} not found in the target BTF`);
      }
      const value = kind === CORE_KIND.TYPE_SIZE
        ? BigInt(target.sizeOf(c.id))
        : kind === CORE_KIND.TYPE_ID_TARGET
        ? BigInt(c.id)
        : 1n;
      return { local: localValue, target: value };
    }
    // Enumerator relocations: access[0] is the enumerator's index in the local enum.
    const lt = local.skipModifiers(r.typeId);
    const enumerator = lt.enumValues?.[access[0]];
    if (!enumerator) throw new BtfError(`enumerator ${access[0]} of ${named.name} does not exist`);
    const localValue = kind === CORE_KIND.ENUMVAL_EXISTS ? 1n : enumerator.value;
    for (const c of cands) {
      const e = target.skipModifiers(c.id).enumValues?.find((x) => x.name === enumerator.name);
      if (e) return { local: localValue, target: kind === CORE_KIND.ENUMVAL_EXISTS ? 1n : e.value };
    }
    if (kind === CORE_KIND.ENUMVAL_EXISTS) return { local: localValue, target: 0n };
    throw new BtfError(
      `enumerator ${enumerator.name} of ${named.name} not found in the target BTF`,
    );
  }
}

const SIZE_BITS: Record<number, number> = { 1: 0x10, 2: 0x08, 4: 0x00, 8: 0x18 };

/**
 * Patches instruction `idx` of `code` (8-byte instructions) with a resolved
 * value: the immediate of an ALU op or lddw, or the offset of a load/store
 * (whose width follows the field when its size changed).
 */
export function patchCoreInsn(
  code: Uint8Array,
  idx: number,
  r: CoreRelo,
  value: { local: bigint; target: bigint },
  newFieldSize?: number,
): void {
  const v = new DataView(code.buffer, code.byteOffset, code.byteLength);
  const at = idx * 8;
  if (at + 8 > code.length) throw new BtfError(`instruction ${idx} is past the end`);
  const op = code[at], cls = op & 7;
  if (cls === 4 || cls === 7) { // ALU, ALU64 with an immediate
    if (op & 0x08) throw new BtfError(`instruction ${idx}: CO-RE on a register ALU op`);
    v.setInt32(at + 4, Number(BigInt.asIntN(32, value.target)), true);
  } else if (cls === 1 || cls === 2 || cls === 3) { // LDX, ST, STX
    if (r.kind === CORE_KIND.FIELD_BYTE_OFFSET) {
      if (value.target > 32767n) {
        throw new BtfError(`instruction ${idx}: offset ${value.target} does not fit`);
      }
      v.setInt16(at + 2, Number(value.target), true);
      if (newFieldSize !== undefined && SIZE_BITS[newFieldSize] !== undefined && cls === 1) {
        code[at] = (op & ~0x18) | SIZE_BITS[newFieldSize];
      }
    } else {
      v.setInt32(at + 4, Number(BigInt.asIntN(32, value.target)), true);
    }
  } else if (op === 0x18) { // lddw
    v.setUint32(at + 4, Number(value.target & 0xffffffffn), true);
    v.setUint32(at + 12, Number((value.target >> 32n) & 0xffffffffn), true);
  } else {
    throw new BtfError(
      `instruction ${idx} (opcode 0x${op.toString(16)}) cannot take a CO-RE relocation`,
    );
  }
}
