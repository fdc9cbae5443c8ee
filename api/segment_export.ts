/**
 * Export and import of a whole segment as JSON: maps with their contents,
 * programs with their instructions (map references renumbered on import).
 */
import { type BpfMap, LINK_TYPES, type LinkType, type Segment } from "../ffi/shm.ts";
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
  /** A USDT semaphore's file offset (absent: none). */
  refCtrOffset?: string;
  /** At a function's entry: its programs may return for it (absent: false). */
  funcEntry?: boolean;
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
        ...(l.refCtrOffset ? { refCtrOffset: String(l.refCtrOffset) } : {}),
        ...(l.funcEntry ? { funcEntry: true } : {}),
      };
    }),
  };
}

/**
 * Recreates the exported objects; returns old id -> new id for maps and programs. The whole
 * document is checked first (validateExport); the import is all or nothing: if creating an
 * object fails, the objects this import created are removed before the error is thrown.
 */
export function importSegment(seg: Segment, document: unknown): Map<number, number> {
  const data = validateExport(document);
  const created: number[] = [];
  try {
    return createObjects(seg, data, created);
  } catch (e) {
    for (const id of created.reverse()) {
      try {
        seg.deleteObject(id);
      } catch { /* gone already */ }
    }
    const undone = created.length
      ? ` (nothing imported: the ${created.length} object(s) created before were removed)`
      : "";
    throw new Error(`${(e as Error).message}${undone}`);
  }
}

function createObjects(
  seg: Segment,
  data: ExportedSegment,
  created: number[],
): Map<number, number> {
  const ids = new Map<number, number>();
  const programArrays: [BpfMap, ExportedMap][] = []; // filled once the programs exist
  for (const [index, m] of data.maps.entries()) {
    try {
      importMap(m);
    } catch (e) {
      throw new Error(`maps[${index}] ('${m.name}'): ${(e as Error).message}`);
    }
  }
  function importMap(m: ExportedMap) {
    const type = MAP_TYPES[m.type as keyof typeof MAP_TYPES];
    const inner = m.innerMapId === undefined ? undefined : ids.get(m.innerMapId);
    const map = seg.createMap({
      type,
      name: m.name,
      keySize: m.keySize,
      valueSize: m.valueSize,
      maxEntries: m.maxEntries,
      flags: m.flags,
      innerMapId: inner,
    });
    created.push(map.id);
    ids.set(m.id, map.id);
    if (type === MAP_TYPES.prog_array) {
      programArrays.push([map, m]);
      return;
    }
    for (const e of m.entries) {
      let value = Array.isArray(e.value) ? e.value.map(fromHex) : fromHex(e.value);
      if (inner !== undefined && !Array.isArray(value)) { // an inner map id: renumber it
        const to = ids.get(new DataView(value.buffer).getUint32(0, true));
        if (to === undefined) throw new Error(`an entry names a map not exported`);
        value = new Uint8Array(new Uint32Array([to]).buffer);
      }
      if (KEYLESS.has(type)) map.push(value as Uint8Array);
      else map.update(fromHex(e.key), value);
    }
  }
  for (const [index, p] of data.programs.entries()) {
    const where = `programs[${index}] ('${p.name}')`;
    const insns = decodeInsns(fromHex(p.insns));
    for (const insn of insns) {
      if (insn.opcode === LDDW && (insn.src === 1 || insn.src === 2)) {
        const to = ids.get(insn.imm);
        if (to === undefined) {
          throw new Error(`${where}: refers to map ${insn.imm}, not exported`);
        }
        insn.imm = to;
      }
    }
    let id: number;
    try {
      id = seg.createProgram(p.name, encodeInsns(insns), p.type);
    } catch (e) {
      throw new Error(`${where}: ${(e as Error).message}`);
    }
    created.push(id);
    ids.set(p.id, id);
  }
  for (const [map, m] of programArrays) {
    const where = `maps[${data.maps.indexOf(m)}] ('${m.name}')`;
    for (const [j, e] of m.entries.entries()) {
      const to = ids.get(new DataView(fromHex(e.value as string).buffer).getUint32(0, true));
      if (to === undefined) {
        throw new Error(`${where}.entries[${j}]: names a program not exported`);
      }
      try {
        map.update(fromHex(e.key), new Uint8Array(new Uint32Array([to]).buffer));
      } catch (err) {
        throw new Error(`${where}.entries[${j}]: ${(err as Error).message}`);
      }
    }
  }
  for (const [index, l] of (data.links ?? []).entries()) {
    const where = `links[${index}] ('${l.name}')`;
    const prog = ids.get(l.prog);
    if (prog === undefined) {
      throw new Error(`${where}: refers to program ${l.prog}, not exported`);
    }
    let id: number;
    try {
      id = seg.createLink(l.name, {
        progId: prog,
        type: l.type as LinkType,
        target: l.target,
        offset: BigInt(l.offset),
        pid: l.pid,
        cookie: BigInt(l.cookie),
        refCtrOffset: BigInt(l.refCtrOffset ?? "0"),
        funcEntry: l.funcEntry ?? false,
      });
    } catch (e) {
      throw new Error(`${where}: ${(e as Error).message}`);
    }
    created.push(id);
    ids.set(l.id, id);
  }
  return ids;
}

const U32_MAX = 0xffffffff;
const U64_MAX = (1n << 64n) - 1n;

/** What a value is, for messages: its JSON, shortened. */
function shown(value: unknown): string {
  const text = value === undefined ? "nothing" : JSON.stringify(value) ?? String(value);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

/**
 * Checks a parsed `tool export` document, every field of every object, before anything is
 * created; a problem is reported with its path, e.g. `maps[2].keySize: expected an integer
 * 0..4294967295, got "x"`. Returns the document, typed.
 */
export function validateExport(doc: unknown): ExportedSegment {
  const bad = (path: string, expected: string, got: unknown): never => {
    throw new Error(`${path}: expected ${expected}, got ${shown(got)}`);
  };
  const object = (path: string, v: unknown): Record<string, unknown> =>
    typeof v === "object" && v !== null && !Array.isArray(v)
      ? v as Record<string, unknown>
      : bad(path, "an object", v);
  const array = (path: string, v: unknown): unknown[] =>
    Array.isArray(v) ? v : bad(path, "an array", v);
  const integer = (path: string, v: unknown, min: number, max: number): number =>
    typeof v === "number" && Number.isInteger(v) && v >= min && v <= max
      ? v
      : bad(path, `an integer ${min}..${max}`, v);
  const string = (path: string, v: unknown): string =>
    typeof v === "string" ? v : bad(path, "a string", v);
  const hex = (path: string, v: unknown, bytes?: number): string => {
    if (typeof v !== "string" || !/^([0-9a-f]{2})*$/i.test(v)) {
      bad(path, "a string of hex byte pairs", v);
    }
    const s = v as string;
    if (bytes !== undefined && s.length !== bytes * 2) {
      throw new Error(
        `${path}: expected ${bytes} byte(s) as hex, got ${s.length / 2} byte(s): ${shown(s)}`,
      );
    }
    return s;
  };
  const u64 = (path: string, v: unknown): string =>
    typeof v === "string" && /^\d+$/.test(v) && BigInt(v) <= U64_MAX
      ? v
      : bad(path, "a decimal integer 0..2^64-1 as a string", v);

  const root = object("document", doc);
  if (root.format !== "bpftime-segment") bad("format", '"bpftime-segment"', root.format);
  if (root.version !== 1) bad("version", "1", root.version);
  const ids = new Map<number, string>();
  const id = (path: string, v: unknown): number => {
    const n = integer(path, v, 1, 0x7fffffff);
    if (ids.has(n)) throw new Error(`${path}: id ${n} is also ${ids.get(n)}'s`);
    ids.set(n, path.replace(/\.id$/, ""));
    return n;
  };

  const mapIds = new Set<number>();
  for (const [i, raw] of array("maps", root.maps).entries()) {
    const at = `maps[${i}]`;
    const m = object(at, raw);
    id(`${at}.id`, m.id);
    string(`${at}.name`, m.name);
    const typeName = string(`${at}.type`, m.type);
    const type = MAP_TYPES[typeName as keyof typeof MAP_TYPES];
    if (type === undefined) {
      bad(`${at}.type`, `a map type (${Object.keys(MAP_TYPES).join(", ")})`, m.type);
    }
    const keySize = integer(`${at}.keySize`, m.keySize, 0, U32_MAX);
    const valueSize = integer(`${at}.valueSize`, m.valueSize, 0, U32_MAX);
    integer(`${at}.maxEntries`, m.maxEntries, 0, U32_MAX);
    if (m.flags !== undefined) integer(`${at}.flags`, m.flags, 0, U32_MAX);
    if (m.innerMapId !== undefined) {
      const inner = integer(`${at}.innerMapId`, m.innerMapId, 1, 0x7fffffff);
      if (!mapIds.has(inner)) {
        throw new Error(`${at}.innerMapId: map ${inner} is not among the maps exported before it`);
      }
    }
    const perCpu = typeName.startsWith("percpu_") || typeName.startsWith("lru_percpu_");
    for (const [j, rawEntry] of array(`${at}.entries`, m.entries).entries()) {
      const e = object(`${at}.entries[${j}]`, rawEntry);
      hex(`${at}.entries[${j}].key`, e.key, KEYLESS.has(type) ? 0 : keySize);
      if (perCpu) {
        for (const [k, v] of array(`${at}.entries[${j}].value`, e.value).entries()) {
          hex(`${at}.entries[${j}].value[${k}]`, v, valueSize);
        }
      } else {
        hex(`${at}.entries[${j}].value`, e.value, valueSize);
      }
    }
    mapIds.add(m.id as number);
  }
  for (const [i, raw] of array("programs", root.programs).entries()) {
    const at = `programs[${i}]`;
    const p = object(at, raw);
    id(`${at}.id`, p.id);
    string(`${at}.name`, p.name);
    integer(`${at}.type`, p.type, 0, U32_MAX);
    const insns = hex(`${at}.insns`, p.insns);
    if (insns.length === 0 || insns.length % 16 !== 0) {
      throw new Error(
        `${at}.insns: expected whole 8-byte instructions as hex, got ${insns.length / 2} byte(s)`,
      );
    }
  }
  if (root.links !== undefined) {
    for (const [i, raw] of array("links", root.links).entries()) {
      const at = `links[${i}]`;
      const l = object(at, raw);
      id(`${at}.id`, l.id);
      string(`${at}.name`, l.name);
      integer(`${at}.prog`, l.prog, 0, 0x7fffffff);
      if (typeof l.type !== "string" || !(l.type in LINK_TYPES)) {
        bad(`${at}.type`, `a link type (${Object.keys(LINK_TYPES).join(", ")})`, l.type);
      }
      string(`${at}.target`, l.target);
      u64(`${at}.offset`, l.offset);
      integer(`${at}.pid`, l.pid, -1, 0x7fffffff);
      u64(`${at}.cookie`, l.cookie);
      if (l.refCtrOffset !== undefined) u64(`${at}.refCtrOffset`, l.refCtrOffset);
      if (l.funcEntry !== undefined && typeof l.funcEntry !== "boolean") {
        bad(`${at}.funcEntry`, "true or false", l.funcEntry);
      }
    }
  }
  return root as unknown as ExportedSegment;
}
