/**
 * Export and import of a whole segment as JSON: maps with their contents,
 * programs with their instructions (map references renumbered on import).
 */
import type { BpfMap, LinkType, Segment } from "../ffi/shm.ts";
import { decodeInsns, encodeInsns, LDDW } from "../lib/isa/opcodes.ts";
import { MAP_TYPES } from "../lib/maps/types.ts";
import { fromHex, toHex } from "../lib/encoding/hex.ts";

export interface ExportedMap {
  id: number;
  name: string;
  type: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  /** Maps of maps: the template map's id. */
  innerMapId?: number;
  /** Hex strings; per-CPU maps have one value per CPU. Queues and stacks: values, oldest first. */
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

const KEYLESS = new Set<number>([MAP_TYPES.queue, MAP_TYPES.stack]);
const NOT_EXPORTED = new Set<number>([
  MAP_TYPES.ringbuf,
  MAP_TYPES.perf_event_array,
  MAP_TYPES.bloom_filter,
  MAP_TYPES.stack_trace,
]);

export function exportMap(m: BpfMap): ExportedMap {
  const entries: ExportedMap["entries"] = [];
  if (KEYLESS.has(m.info.type)) {
    for (const v of m.values()) entries.push({ key: "", value: toHex(v) });
  }
  // Streams and sketches hold no entries to carry over; the rest iterate by key.
  const keys = KEYLESS.has(m.info.type) || NOT_EXPORTED.has(m.info.type) ? [] : m.keys();
  for (const key of keys) {
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
    ...(i.innerMapId ? { innerMapId: i.innerMapId } : {}),
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
  const programArrays: [BpfMap, ExportedMap][] = []; // filled once the programs exist
  for (const m of data.maps) {
    const type = MAP_TYPES[m.type as keyof typeof MAP_TYPES];
    if (type === undefined) throw new Error(`map '${m.name}': unknown type '${m.type}'`);
    const inner = m.innerMapId === undefined ? undefined : ids.get(m.innerMapId);
    if (m.innerMapId !== undefined && inner === undefined) {
      throw new Error(`map '${m.name}': its template map ${m.innerMapId} was not exported`);
    }
    const map = seg.createMap({
      type,
      name: m.name,
      keySize: m.keySize,
      valueSize: m.valueSize,
      maxEntries: m.maxEntries,
      flags: m.flags,
      innerMapId: inner,
    });
    ids.set(m.id, map.id);
    if (type === MAP_TYPES.prog_array) {
      programArrays.push([map, m]);
      continue;
    }
    for (const e of m.entries) {
      let value = Array.isArray(e.value) ? e.value.map(fromHex) : fromHex(e.value);
      if (inner !== undefined && !Array.isArray(value)) { // an inner map id: renumber it
        const to = ids.get(new DataView(value.buffer).getUint32(0, true));
        if (to === undefined) throw new Error(`map '${m.name}': an entry names a map not exported`);
        value = new Uint8Array(new Uint32Array([to]).buffer);
      }
      if (KEYLESS.has(type)) map.push(value as Uint8Array);
      else map.update(fromHex(e.key), value);
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
  for (const [map, m] of programArrays) {
    for (const e of m.entries) {
      const to = ids.get(new DataView(fromHex(e.value as string).buffer).getUint32(0, true));
      if (to === undefined) {
        throw new Error(`map '${m.name}': an entry names a program not exported`);
      }
      map.update(fromHex(e.key), new Uint8Array(new Uint32Array([to]).buffer));
    }
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
