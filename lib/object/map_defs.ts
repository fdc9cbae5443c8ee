/**
 * Map definitions of an eBPF object: BTF-defined maps in `.maps`, legacy
 * `struct bpf_map_def` in `maps`, and global data sections (.rodata, .data,
 * .bss), which libbpf turns into single-entry array maps.
 */
import { Btf, BTF_KIND, BtfType } from "../btf/btf.ts";
import { ElfError } from "../elf/sections.ts";
import type { RelocatableElf } from "./elf_relocatable.ts";

export interface MapDef {
  name: string;
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  mapExtra: number;
  /** Maps of maps: the inner map's definition. */
  inner?: MapDef;
  /** Offset of a struct bpf_spin_lock in the value, when it has one. */
  spinLockOffset?: number;
  /** Section index and offset of the definition (what relocations point at). */
  shndx: number;
  offset: number;
  /** Global data: the section's initial contents. */
  initial?: Uint8Array;
  /** Maps of maps and program arrays: slot -> symbol name from `.rel.maps` (`values = {...}`). */
  initialSlots?: Map<number, string>;
}

const ARRAY = 2, PROG_ARRAY = 3;

/** Where a struct bpf_spin_lock sits in a value type, if anywhere at its top level. */
function spinLockOffset(btf: Btf, typeId: number): number | undefined {
  const t = btf.skipModifiers(typeId);
  for (const m of t.members ?? []) {
    if (btf.skipModifiers(m.type).name === "bpf_spin_lock") return m.bitOffset / 8;
  }
  return undefined;
}

/** Parses one BTF map definition struct (`struct { __uint(type, ...); ... }`). */
function btfMapDef(
  btf: Btf,
  def: BtfType,
  name: string,
  what: string,
): Omit<MapDef, "shndx" | "offset"> {
  if (def.kind !== BTF_KIND.STRUCT) throw new ElfError(`${what}: map '${name}' is not a struct`);
  const out: Omit<MapDef, "shndx" | "offset"> = {
    name,
    type: 0,
    keySize: 0,
    valueSize: 0,
    maxEntries: 0,
    flags: 0,
    mapExtra: 0,
  };
  // __uint(x, N) is `int (*x)[N]`: N is the array's element count.
  const uintOf = (typeId: number, field: string) => {
    const p = btf.skipModifiers(typeId);
    const arr = p.kind === BTF_KIND.PTR ? btf.skipModifiers(p.sizeOrType) : undefined;
    if (!arr || arr.kind !== BTF_KIND.ARRAY) {
      throw new ElfError(`${what}: map '${name}': ${field} is not declared with __uint()`);
    }
    return arr.array!.nelems;
  };
  const pointee = (typeId: number, field: string) => {
    const p = btf.skipModifiers(typeId);
    if (p.kind !== BTF_KIND.PTR) {
      throw new ElfError(`${what}: map '${name}': ${field} is not declared with __type()`);
    }
    return p.sizeOrType;
  };
  for (const m of def.members!) {
    switch (m.name) {
      case "type":
        out.type = uintOf(m.type, m.name);
        break;
      case "max_entries":
        out.maxEntries = uintOf(m.type, m.name);
        break;
      case "map_flags":
        out.flags = uintOf(m.type, m.name);
        break;
      case "map_extra":
        out.mapExtra = uintOf(m.type, m.name);
        break;
      case "key_size":
        out.keySize = uintOf(m.type, m.name);
        break;
      case "value_size":
        out.valueSize = uintOf(m.type, m.name);
        break;
      case "key":
        out.keySize = btf.sizeOf(pointee(m.type, m.name));
        break;
      case "value": {
        const v = pointee(m.type, m.name);
        out.valueSize = btf.sizeOf(v);
        out.spinLockOffset = spinLockOffset(btf, v);
        break;
      }
      case "values": {
        // __array(values, struct inner) is an empty array of pointers to the inner definition.
        const arr = btf.skipModifiers(m.type);
        if (arr.kind !== BTF_KIND.ARRAY) {
          throw new ElfError(`${what}: map '${name}': values is not an array`);
        }
        const elem = btf.skipModifiers(arr.array!.type);
        const target = elem.kind === BTF_KIND.PTR ? btf.skipModifiers(elem.sizeOrType) : undefined;
        if (target?.kind === BTF_KIND.STRUCT) {
          out.inner = { ...btfMapDef(btf, target, `${name}.inner`, what), shndx: 0, offset: 0 };
        }
        break;
      }
      case "pinning":
      case "numa_node":
        break;
      default:
        throw new ElfError(`${what}: map '${name}': unknown attribute '${m.name}'`);
    }
  }
  // Maps of maps and program arrays hold ids; `__array(values, ...)` leaves the size to the loader.
  if (out.inner || (out.type === PROG_ARRAY && out.valueSize === 0)) out.valueSize = 4;
  return out;
}

/*
 * Where a variable sits in its section: clang leaves the offsets in an
 * object's DATASEC at 0 (libbpf fixes them up from the symbols too).
 */
export function symbolOffset(
  elf: RelocatableElf,
  shndx: number,
  name: string,
  what: string,
): number {
  const sym = elf.symbols.find((s) => s.shndx === shndx && s.name === name);
  if (!sym) throw new ElfError(`${what}: no symbol for '${name}' in ${elf.sections[shndx].name}`);
  return sym.value;
}

export function readMapDefs(
  elf: RelocatableElf,
  btf: Btf | undefined,
  objName: string,
  what: string,
): MapDef[] {
  const defs: MapDef[] = [];
  const maps = elf.byName(".maps");
  if (maps) {
    if (!btf) throw new ElfError(`${what}: .maps needs BTF (compile with -g)`);
    const sec = btf.types.find((t) => t.kind === BTF_KIND.DATASEC && t.name === ".maps");
    if (!sec) throw new ElfError(`${what}: .BTF has no DATASEC for .maps`);
    for (const v of sec.vars!) {
      const variable = btf.type(v.type);
      const def = btfMapDef(btf, btf.skipModifiers(variable.sizeOrType), variable.name, what);
      defs.push({
        ...def,
        shndx: maps.index,
        offset: symbolOffset(elf, maps.index, variable.name, what),
      });
    }
    // `.values = { [0] = &inner, ... }`: relocations at 8-byte slots after the definition.
    for (const r of elf.relocs.get(maps.index) ?? []) {
      const def = [...defs].reverse().find((d) => d.shndx === maps.index && d.offset <= r.offset);
      if (!def) continue;
      const v = sec.vars!.find((x) => btf.type(x.type).name === def.name)!;
      const size = btf.sizeOf(btf.type(v.type).sizeOrType);
      const slot = (r.offset - def.offset - size) / 8;
      (def.initialSlots ??= new Map()).set(slot, r.symbol.name);
    }
  }
  const legacy = elf.byName("maps");
  if (legacy) {
    for (const s of elf.symbols.filter((x) => x.shndx === legacy.index && x.name)) {
      if (s.value + 20 > legacy.data.length) {
        throw new ElfError(`${what}: legacy map '${s.name}' runs past 'maps'`);
      }
      const v = new DataView(legacy.data.buffer, legacy.data.byteOffset + s.value, 20);
      defs.push({
        name: s.name,
        type: v.getUint32(0, true),
        keySize: v.getUint32(4, true),
        valueSize: v.getUint32(8, true),
        maxEntries: v.getUint32(12, true),
        flags: v.getUint32(16, true),
        mapExtra: 0,
        shndx: legacy.index,
        offset: s.value,
      });
    }
  }
  for (const s of elf.sections) {
    if (!/^\.(rodata|data|bss)(\..*)?$/.test(s.name) || s.size === 0) continue;
    defs.push({
      // libbpf's naming: up to 8 characters of the object name, then the section.
      name: `${objName.slice(0, 8)}${s.name}`.slice(0, 15),
      type: ARRAY,
      keySize: 4,
      valueSize: s.size,
      maxEntries: 1,
      flags: 0,
      mapExtra: 0,
      shndx: s.index,
      offset: 0,
      initial: s.type === 8 ? new Uint8Array(s.size) : s.data,
    });
  }
  return defs;
}
