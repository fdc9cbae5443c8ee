/**
 * Export and import of a whole segment as JSON: maps with their contents,
 * programs with their instructions (map references renumbered on import).
 */
import type { BpfMap, LinkType, Segment } from "../../ffi/shm.ts";
import { decodeInsns, encodeInsns, LDDW } from "../isa/opcodes.ts";
import { MAP_TYPES } from "./types.ts";

export interface ExportedMap {
  id: number;
  name: string;
  type: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  /** Hex strings; per-CPU maps have one value per CPU. */
  entries: { key: string; value: string | string[] }[];
}

export interface ExportedProgram {
  id: number;
  name: string;
  type: number;
  /** Instruction bytes as hex. */
  insns: string;
}

export interface ExportedLink {
  id: number;
  name: string;
  prog: number;
  type: string;
  target: string;
  offset: string;
  pid: number;
  cookie: string;
}

export interface ExportedSegment {
  format: "bpftime-segment";
  version: 1;
  maps: ExportedMap[];
  programs: ExportedProgram[];
  links: ExportedLink[];
}

export const toHex = (b: Uint8Array) =>
  Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
export function fromHex(s: string): Uint8Array<ArrayBuffer> {
  if (!/^([0-9a-f]{2})*$/i.test(s)) throw new Error(`not hex: '${s.slice(0, 40)}'`);
  return Uint8Array.from(
    { length: s.length / 2 },
    (_, i) => parseInt(s.slice(2 * i, 2 * i + 2), 16),
  );
}

export function exportMap(m: BpfMap): ExportedMap {
  const entries: ExportedMap["entries"] = [];
  for (const key of m.keys()) {
    if (m.perCpu) {
      const values = m.lookupPerCpu(key);
      if (values) entries.push({ key: toHex(key), value: values.map(toHex) });
    } else {
      const value = m.lookup(key);
      if (value) entries.push({ key: toHex(key), value: toHex(value) });
    }
  }
  const i = m.info;
  return {
    id: m.id,
    name: i.name,
    type: i.typeName,
    keySize: i.keySize,
    valueSize: i.valueSize,
    maxEntries: i.maxEntries,
    flags: i.flags,
    entries,
  };
}

export function exportSegment(seg: Segment): ExportedSegment {
  const objects = seg.objects();
  return {
    format: "bpftime-segment",
    version: 1,
    maps: objects.filter((o) => o.kind === "map").map((o) => exportMap(seg.map(o.id))),
    programs: objects.filter((o) => o.kind === "prog").map((o) => {
      const p = seg.program(o.id);
      return { id: o.id, name: o.name, type: p.type, insns: toHex(p.code) };
    }),
    links: objects.filter((o) => o.kind === "link").map((o) => {
      const l = seg.link(o.id);
      return {
        id: o.id,
        name: o.name,
        prog: l.progId,
        type: l.type,
        target: l.target,
        offset: String(l.offset ?? 0n),
        pid: l.pid ?? -1,
        cookie: String(l.cookie ?? 0n),
      };
    }),
  };
}

/** Recreates the exported objects; returns old id -> new id for maps and programs. */
export function importSegment(seg: Segment, data: ExportedSegment): Map<number, number> {
  if (data.format !== "bpftime-segment" || data.version !== 1) {
    throw new Error(
      `not a bpftime segment export (format ${data.format}, version ${data.version})`,
    );
  }
  const ids = new Map<number, number>();
  for (const m of data.maps) {
    const type = MAP_TYPES[m.type as keyof typeof MAP_TYPES];
    if (type === undefined) throw new Error(`map '${m.name}': unknown type '${m.type}'`);
    const map = seg.createMap({
      type,
      name: m.name,
      keySize: m.keySize,
      valueSize: m.valueSize,
      maxEntries: m.maxEntries,
      flags: m.flags,
    });
    ids.set(m.id, map.id);
    for (const e of m.entries) {
      const value = Array.isArray(e.value) ? e.value.map(fromHex) : fromHex(e.value);
      map.update(fromHex(e.key), value);
    }
  }
  for (const p of data.programs) {
    const insns = decodeInsns(fromHex(p.insns));
    for (const insn of insns) {
      if (insn.opcode === LDDW && (insn.src === 1 || insn.src === 2)) {
        const to = ids.get(insn.imm);
        if (to === undefined) {
          throw new Error(`program '${p.name}': refers to map ${insn.imm}, not exported`);
        }
        insn.imm = to;
      }
    }
    ids.set(p.id, seg.createProgram(p.name, encodeInsns(insns), p.type));
  }
  for (const l of data.links ?? []) {
    const prog = ids.get(l.prog);
    if (prog === undefined) {
      throw new Error(`link '${l.name}': refers to program ${l.prog}, not exported`);
    }
    ids.set(
      l.id,
      seg.createLink(l.name, {
        progId: prog,
        type: l.type as LinkType,
        target: l.target,
        offset: BigInt(l.offset),
        pid: l.pid,
        cookie: BigInt(l.cookie),
      }),
    );
  }
  return ids;
}
