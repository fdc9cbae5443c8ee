/**
 * The shared-memory segment and its maps, over the C API: open a segment,
 * list its objects, create maps and read or change them like bpf(2) does.
 */
import { bpftime, cString, lastError } from "./lib.ts";
import { MAP_TYPES, type MapTypeName, mapTypeName } from "../lib/maps/types.ts";
import { BpftimeError, LinkError, MapError, ProgramError, SegmentError } from "./errors.ts";
import { C_CONSTANTS as C, LINK_SPEC, MAP_INFO, OBJECT_INFO, SHM_STATS } from "./layout.ts";

export const DEFAULT_SEGMENT = "bpftime_maps_shm";
const OBJECT_KINDS: Readonly<Record<number, ObjectInfo["kind"]>> = {
  [C.BPFTIME_OBJ_MAP]: "map",
  [C.BPFTIME_OBJ_PROG]: "prog",
  [C.BPFTIME_OBJ_LINK]: "link",
};

/** rc, or the C side's refusal as an `Err` (a negative rc is -errno). */
function check(rc: number, Err: typeof BpftimeError = MapError): number {
  if (rc < 0) throw new Err(lastError() || `errno ${-rc}`, -rc);
  return rc;
}

const decodeName = (bytes: Uint8Array) => {
  const end = bytes.indexOf(0);
  return new TextDecoder().decode(bytes.subarray(0, end < 0 ? bytes.length : end));
};

export interface ObjectInfo {
  id: number;
  kind: "map" | "prog" | "link";
  name: string;
}

export interface MapInfo {
  id: number;
  type: number;
  typeName: string;
  name: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  /** Values per key: the possible CPUs for per-CPU maps, else 1. */
  ncpus: number;
  valueStride: number;
  /** Maps of maps: the template's id (0 otherwise). */
  innerMapId: number;
}

export interface MapSpec {
  type: MapTypeName | number;
  name?: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags?: number;
  /** Bloom filters: the number of hash functions (bits 0-3). */
  mapExtra?: number;
  /** Maps of maps: id of the inner map every value must match. */
  innerMapId?: number;
}

export const LINK_TYPES = {
  uprobe: C.BPFTIME_LINK_UPROBE,
  uretprobe: C.BPFTIME_LINK_URETPROBE,
  syscall_tracepoint: C.BPFTIME_LINK_SYSCALL_TRACEPOINT,
  detach: C.BPFTIME_LINK_DETACH,
  /** A uprobe at a function's entry whose program's return value replaces the function. */
  ureplace: C.BPFTIME_LINK_UREPLACE,
} as const;
export type LinkType = keyof typeof LINK_TYPES;
/** BPFTIME_LINK_OVER_KERNEL_PROBE (include/bpftime.h), or'ed into a uprobe link's type. */
const LINK_OVER_KERNEL_PROBE = 0x100;

/** What a stored program is attached to (struct bpftime_link_spec). */
export interface LinkSpec {
  progId: number;
  type: LinkType;
  /** Uprobes: the file's path. Tracepoints: e.g. "syscalls/sys_enter_openat". */
  target: string;
  /** Uprobes: file offset of the probed instruction. */
  offset?: bigint;
  /** Only this process (default: any). */
  pid?: number;
  cookie?: bigint;
  /** Uprobes: bytes from the probe to the function's end, for the agent's patch checks (0: unknown). */
  funcSize?: number;
  /** Uprobes: file offset of a USDT semaphore the agents add 1 to while attached (0: none). */
  refCtrOffset?: bigint;
  /**
   * Uprobes: the probe is a function's first instruction, so its programs may return for the
   * function (bpf_override_return); required for `ureplace`.
   */
  funcEntry?: boolean;
  /**
   * Uprobes: a kernel tool's probe that `bpftime daemon` moved to userspace; agents remove the
   * kernel uprobe's breakpoint before hooking.
   */
  overKernelProbe?: boolean;
}

const TARGET_MAX = LINK_SPEC.ref_ctr_offset - LINK_SPEC.target - 1;

function encodeLink(spec: LinkSpec): Uint8Array<ArrayBuffer> {
  const buf = new Uint8Array(LINK_SPEC.sizeof);
  const v = new DataView(buf.buffer);
  v.setUint32(LINK_SPEC.prog_id, spec.progId, true);
  v.setUint32(
    LINK_SPEC.type,
    LINK_TYPES[spec.type] | (spec.overKernelProbe ? LINK_OVER_KERNEL_PROBE : 0),
    true,
  );
  v.setInt32(LINK_SPEC.pid, spec.pid ?? -1, true);
  v.setUint32(LINK_SPEC.func_size, spec.funcSize ?? 0, true);
  v.setBigUint64(LINK_SPEC.offset, spec.offset ?? 0n, true);
  v.setBigUint64(LINK_SPEC.cookie, spec.cookie ?? 0n, true);
  const target = new TextEncoder().encode(spec.target);
  if (target.length > TARGET_MAX) {
    throw new LinkError(`link target is longer than ${TARGET_MAX} bytes`, 22);
  }
  buf.set(target, LINK_SPEC.target);
  v.setBigUint64(LINK_SPEC.ref_ctr_offset, spec.refCtrOffset ?? 0n, true);
  v.setUint32(LINK_SPEC.flags, spec.funcEntry ? C.BPFTIME_LINK_F_FUNC_ENTRY : 0, true);
  return buf;
}

function decodeLink(buf: Uint8Array): LinkSpec {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const raw = v.getUint32(LINK_SPEC.type, true);
  const type = Object.entries(LINK_TYPES).find(([, n]) => n === (raw & ~LINK_OVER_KERNEL_PROBE))
    ?.[0] as LinkType;
  return {
    ...(raw & LINK_OVER_KERNEL_PROBE ? { overKernelProbe: true } : {}),
    progId: v.getUint32(LINK_SPEC.prog_id, true),
    type,
    pid: v.getInt32(LINK_SPEC.pid, true),
    funcSize: v.getUint32(LINK_SPEC.func_size, true),
    offset: v.getBigUint64(LINK_SPEC.offset, true),
    cookie: v.getBigUint64(LINK_SPEC.cookie, true),
    target: decodeName(buf.subarray(LINK_SPEC.target, LINK_SPEC.ref_ctr_offset)),
    refCtrOffset: v.getBigUint64(LINK_SPEC.ref_ctr_offset, true),
    funcEntry: (v.getUint32(LINK_SPEC.flags, true) & C.BPFTIME_LINK_F_FUNC_ENTRY) !== 0,
  };
}

export interface OpenOptions {
  /** Create the segment when it does not exist. */
  create?: boolean;
  /** Size of a new segment; default $BPFTIME_SHM_MEMORY_MB or 32. */
  sizeMb?: number;
  /**
   * File mode of a new segment (default 0o600), and the widest an existing one may have: a segment
   * anyone else can write is refused, since whoever writes it runs code in traced processes.
   */
  mode?: number;
  /**
   * Share the segment with this group (a name or a number; default $BPFTIME_SHM_GROUP): a new
   * segment gets that group and mode 0o660, an existing one may have group bits for it only.
   */
  group?: string;
  /** Also trust a segment this user owns (by default only yours or root's are used). */
  trustUid?: number;
}

/** The largest segment this side creates, in MiB (64 GiB). */
export const MAX_SEGMENT_MB = 65536;

/**
 * The size of a new segment in MiB: `sizeMb`, else $BPFTIME_SHM_MEMORY_MB, else 32; an integer
 * 1..MAX_SEGMENT_MB, checked before anything is created (the C side would wrap or truncate it).
 */
export function segmentSizeMb(sizeMb?: number): number {
  const env = Deno.env.get("BPFTIME_SHM_MEMORY_MB");
  const [what, value] = sizeMb !== undefined
    ? ["segment size (sizeMb)", String(sizeMb)]
    : env !== undefined
    ? ["BPFTIME_SHM_MEMORY_MB", env]
    : ["", "32"];
  const n = /^\s*\d+\s*$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < 1 || n > MAX_SEGMENT_MB) {
    throw new SegmentError(
      `${what}: expected a size in MiB, an integer 1..${MAX_SEGMENT_MB}, got '${value}'`,
      22,
    );
  }
  return n;
}

export class Segment {
  #ptr: Deno.PointerValue;
  readonly name: string;

  private constructor(ptr: Deno.PointerObject, name: string) {
    this.#ptr = ptr;
    this.name = name;
  }

  /** Opens the segment $BPFTIME_GLOBAL_SHM_NAME (default bpftime_maps_shm) or `name`. */
  static open(name?: string, options: OpenOptions = {}): Segment {
    const n = name ?? Deno.env.get("BPFTIME_GLOBAL_SHM_NAME") ?? DEFAULT_SEGMENT;
    const sizeMb = segmentSizeMb(options.sizeMb);
    const flags = (options.create ? C.BPFTIME_SHM_CREATE : 0) | ((options.mode ?? 0o600) & 0o777);
    const group = options.group ?? Deno.env.get("BPFTIME_SHM_GROUP") ?? "";
    const ptr = bpftime().bpftime_shm_open_as(
      cString(n),
      BigInt(sizeMb),
      flags,
      cString(group),
      options.trustUid ?? -1,
    );
    if (!ptr) throw new SegmentError(lastError(), 2);
    return new Segment(ptr, n);
  }

  /** Deletes the segment's file; processes that have it mapped keep their mapping. */
  static remove(name?: string): void {
    const n = name ?? Deno.env.get("BPFTIME_GLOBAL_SHM_NAME") ?? DEFAULT_SEGMENT;
    check(bpftime().bpftime_shm_remove(cString(n)), SegmentError);
  }

  get pointer(): Deno.PointerObject {
    if (!this.#ptr) throw new SegmentError(`segment '${this.name}' is closed`, 9);
    return this.#ptr;
  }

  stats(): { size: number; heapUsed: number; generation: number; objects: number } {
    const buf = new Uint8Array(SHM_STATS.sizeof);
    check(bpftime().bpftime_shm_stats(this.pointer, buf), SegmentError);
    const v = new DataView(buf.buffer);
    return {
      size: Number(v.getBigUint64(SHM_STATS.size, true)),
      heapUsed: Number(v.getBigUint64(SHM_STATS.heap_used, true)),
      generation: v.getUint32(SHM_STATS.generation, true),
      objects: v.getUint32(SHM_STATS.objects, true),
    };
  }

  objects(): ObjectInfo[] {
    const out: ObjectInfo[] = [];
    const buf = new Uint8Array(OBJECT_INFO.sizeof);
    const view = new DataView(buf.buffer);
    for (let i = 0;; i++) {
      const rc = bpftime().bpftime_object_at(this.pointer, i, buf);
      if (rc < 0) break;
      if (rc === 0) continue;
      const kind = OBJECT_KINDS[view.getUint32(OBJECT_INFO.kind, true)];
      if (!kind) continue;
      out.push({
        id: view.getUint32(OBJECT_INFO.id, true),
        kind,
        name: decodeName(buf.subarray(OBJECT_INFO.name, OBJECT_INFO.sizeof)),
      });
    }
    return out;
  }

  createMap(spec: MapSpec): BpfMap {
    const type = typeof spec.type === "number" ? spec.type : MAP_TYPES[spec.type];
    if (type === undefined) throw new MapError(`unknown map type '${spec.type}'`, 22);
    const id = check(
      bpftime().bpftime_map_create(
        this.pointer,
        type,
        cString(spec.name ?? ""),
        spec.keySize,
        spec.valueSize,
        spec.maxEntries,
        spec.flags ?? 0,
        BigInt(spec.mapExtra ?? 0),
        spec.innerMapId ?? 0,
      ),
    );
    return this.map(id);
  }

  /**
   * A map fronting kernel map `kernelMapId` (hash, array, per-CPU and LRU hash, per-CPU array):
   * its operations, and those of programs in any process, reach the kernel map.
   */
  createKernelMap(kernelMapId: number): BpfMap {
    return this.map(check(bpftime().bpftime_kernel_map_create(this.pointer, kernelMapId)));
  }

  map(id: number): BpfMap {
    return new BpfMap(this, id);
  }

  maps(): BpfMap[] {
    return this.objects().filter((o) => o.kind === "map").map((o) => this.map(o.id));
  }

  /** Stores a program (instruction bytes) in the segment; returns its id. */
  createProgram(name: string, code: Uint8Array, type = 0): number {
    return check(
      bpftime().bpftime_prog_create(
        this.pointer,
        cString(name),
        type,
        new Uint8Array(code),
        BigInt(code.length),
      ),
      ProgramError,
    );
  }

  /** A stored program's instructions and type. */
  program(id: number): { id: number; type: number; code: Uint8Array } {
    const type = new Uint32Array(1);
    const len = Number(
      bpftime().bpftime_prog_code(this.pointer, id, null, 0n, new Uint8Array(type.buffer)),
    );
    check(len, ProgramError);
    const code = new Uint8Array(len);
    check(
      Number(bpftime().bpftime_prog_code(this.pointer, id, code, BigInt(len), null)),
      ProgramError,
    );
    return { id, type: type[0], code };
  }

  /** Attaches a stored program (see LinkSpec); returns the link's id. */
  createLink(name: string, spec: LinkSpec): number {
    return check(
      bpftime().bpftime_link_create(this.pointer, cString(name), encodeLink(spec)),
      LinkError,
    );
  }

  link(id: number): LinkSpec {
    const buf = new Uint8Array(LINK_SPEC.sizeof);
    check(bpftime().bpftime_link_info(this.pointer, id, buf), LinkError);
    return decodeLink(buf);
  }

  deleteObject(id: number): void {
    check(bpftime().bpftime_object_delete(this.pointer, id), SegmentError);
  }

  /** A pinned object outlives the process that created it (BPF_OBJ_PIN). */
  setPinned(id: number, pinned: boolean): void {
    check(bpftime().bpftime_object_set_pinned(this.pointer, id, pinned ? 1 : 0), SegmentError);
  }

  /**
   * Deletes the unpinned objects process `pid` created (links, then programs, then maps), as the
   * kernel does when a process's last fds close. Returns how many went.
   */
  releaseObjectsOf(pid: number): number {
    return check(bpftime().bpftime_objects_release(this.pointer, pid), SegmentError);
  }

  /**
   * Throws a SegmentError when the segment's file shrank under us or its header was overwritten:
   * nothing in it may be touched any more (only `close`).
   */
  check(): void {
    check(bpftime().bpftime_shm_check(this.pointer), SegmentError);
  }

  /**
   * Deletes the unpinned objects of every owner that no longer runs (a loader killed before it
   * could clean up). Returns how many went.
   */
  releaseDeadOwners(): number {
    return check(bpftime().bpftime_objects_release_dead(this.pointer), SegmentError);
  }

  close(): void {
    if (this.#ptr) bpftime().bpftime_shm_close(this.#ptr);
    this.#ptr = null;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** A map in a segment. Per-CPU maps take and give one value per possible CPU, like libbpf. */
export class BpfMap {
  readonly info: MapInfo;

  constructor(readonly segment: Segment, readonly id: number) {
    const buf = new Uint8Array(MAP_INFO.sizeof);
    check(bpftime().bpftime_map_info(segment.pointer, id, buf));
    const v = new DataView(buf.buffer);
    const u32 = (offset: number) => v.getUint32(offset, true);
    const type = u32(MAP_INFO.type);
    this.info = {
      id,
      type,
      typeName: mapTypeName(type),
      keySize: u32(MAP_INFO.key_size),
      valueSize: u32(MAP_INFO.value_size),
      maxEntries: u32(MAP_INFO.max_entries),
      flags: u32(MAP_INFO.map_flags),
      ncpus: u32(MAP_INFO.ncpus),
      valueStride: u32(MAP_INFO.value_stride),
      name: decodeName(buf.subarray(MAP_INFO.name, MAP_INFO.inner_map_id)),
      innerMapId: u32(MAP_INFO.inner_map_id),
    };
  }

  /**
   * A BPF_F_MMAPABLE array's values, read and written in place in the segment (what mmap of
   * the map's fd shows a libbpf application).
   */
  mmapData(): Uint8Array<ArrayBuffer> {
    const length = new BigUint64Array(1);
    const p = bpftime().bpftime_map_mmap_data(
      this.segment.pointer,
      this.id,
      new Uint8Array(length.buffer),
    );
    if (!p) throw new MapError(lastError(), 22);
    return new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(p, Number(length[0])));
  }

  get perCpu(): boolean {
    return this.info.type === MAP_TYPES.percpu_hash || this.info.type === MAP_TYPES.percpu_array ||
      this.info.type === MAP_TYPES.lru_percpu_hash;
  }

  #key(key: Uint8Array): Uint8Array<ArrayBuffer> {
    if (key.length !== this.info.keySize) {
      throw new MapError(
        `map '${this.info.name}' (id ${this.id}): key is ${key.length} bytes, expected ${this.info.keySize}`,
        22,
      );
    }
    return new Uint8Array(key);
  }

  #valueBuffer(): Uint8Array<ArrayBuffer> {
    return new Uint8Array(
      this.perCpu ? this.info.valueStride * this.info.ncpus : this.info.valueSize,
    );
  }

  /**
   * Declares a struct bpf_spin_lock at `offset` in the values (a loader reads
   * this from BTF): updates keep it, and BPF_F_LOCK takes it.
   */
  setSpinLock(offset: number): void {
    check(bpftime().bpftime_map_set_spin_lock(this.segment.pointer, this.id, offset));
  }

  /**
   * The value, or undefined when the key is absent (per-CPU maps: every CPU's,
   * valueStride apart). flags BPF_F_LOCK: copied under the value's spin lock.
   */
  lookup(key: Uint8Array, flags = 0n): Uint8Array | undefined {
    const out = this.#valueBuffer();
    const rc = bpftime().bpftime_map_lookup_flags(
      this.segment.pointer,
      this.id,
      this.#key(key),
      out,
      flags,
    );
    if (rc === -2) return undefined;
    check(rc);
    return out;
  }

  /** Per-CPU maps: the values of every possible CPU. */
  lookupPerCpu(key: Uint8Array): Uint8Array[] | undefined {
    const all = this.lookup(key);
    if (!all) return undefined;
    const { valueStride, valueSize, ncpus } = this.info;
    return Array.from(
      { length: ncpus },
      (_, c) => all.slice(c * valueStride, c * valueStride + valueSize),
    );
  }

  /** flags: BPF_ANY, BPF_NOEXIST or BPF_EXIST. Per-CPU maps take one value per CPU. */
  update(key: Uint8Array, value: Uint8Array | Uint8Array[], flags = 0n): void {
    let buf: Uint8Array<ArrayBuffer>;
    const { valueSize, valueStride, ncpus, name } = this.info;
    const values = Array.isArray(value) ? value : this.perCpu ? Array(ncpus).fill(value) : [value];
    if (values.length !== (this.perCpu ? ncpus : 1)) {
      throw new MapError(`map '${name}': expected ${this.perCpu ? ncpus : 1} values`, 22);
    }
    for (const v of values) {
      if (v.length !== valueSize) {
        throw new MapError(
          `map '${name}' (id ${this.id}): value is ${v.length} bytes, expected ${valueSize}`,
          22,
        );
      }
    }
    if (this.perCpu) {
      buf = new Uint8Array(valueStride * ncpus);
      values.forEach((v, c) => buf.set(v, c * valueStride));
    } else {
      buf = new Uint8Array(values[0]);
    }
    check(bpftime().bpftime_map_update(this.segment.pointer, this.id, this.#key(key), buf, flags));
  }

  /** true when the key was there. */
  delete(key: Uint8Array): boolean {
    const rc = bpftime().bpftime_map_delete(this.segment.pointer, this.id, this.#key(key));
    if (rc === -2) return false;
    check(rc);
    return true;
  }

  /** The key after `key` (the first with none); undefined at the end. */
  nextKey(key?: Uint8Array): Uint8Array | undefined {
    const out = new Uint8Array(this.info.keySize);
    const rc = bpftime().bpftime_map_get_next_key(
      this.segment.pointer,
      this.id,
      key ? this.#key(key) : null,
      out,
    );
    if (rc === -2) return undefined;
    check(rc);
    return out;
  }

  *keys(): Generator<Uint8Array> {
    for (let k = this.nextKey(); k; k = this.nextKey(k)) yield k;
  }

  *entries(): Generator<[Uint8Array, Uint8Array]> {
    for (const k of this.keys()) {
      const v = this.lookup(k);
      if (v) yield [k, v];
    }
  }

  /** Queues, stacks and bloom filters: add a value (flags BPF_EXIST: overwrite the oldest). */
  push(value: Uint8Array, flags = 0n): void {
    check(
      bpftime().bpftime_map_update(this.segment.pointer, this.id, null, this.#value(value), flags),
    );
  }

  /** Queues and stacks: take the next value; undefined when empty. */
  pop(): Uint8Array | undefined {
    const out = new Uint8Array(this.info.valueSize);
    const rc = bpftime().bpftime_map_lookup_and_delete(this.segment.pointer, this.id, null, out);
    if (rc === -2) return undefined;
    check(rc);
    return out;
  }

  /** Queues and stacks: the next value without taking it; undefined when empty. */
  peek(): Uint8Array | undefined {
    const out = new Uint8Array(this.info.valueSize);
    const rc = bpftime().bpftime_map_lookup(this.segment.pointer, this.id, null, out);
    if (rc === -2) return undefined;
    check(rc);
    return out;
  }

  /** Queues and stacks: every value, oldest first, without taking them. */
  values(): Uint8Array[] {
    const { valueSize, maxEntries } = this.info;
    const out = new Uint8Array(valueSize * maxEntries);
    const n = check(bpftime().bpftime_map_values(this.segment.pointer, this.id, out, maxEntries));
    return Array.from({ length: n }, (_, i) => out.slice(i * valueSize, (i + 1) * valueSize));
  }

  /** Bloom filters: false when the value was certainly never pushed. */
  mayContain(value: Uint8Array): boolean {
    const rc = bpftime().bpftime_map_lookup(
      this.segment.pointer,
      this.id,
      null,
      this.#value(value),
    );
    if (rc === -2) return false;
    check(rc);
    return true;
  }

  #value(value: Uint8Array): Uint8Array<ArrayBuffer> {
    if (value.length !== this.info.valueSize) {
      throw new MapError(
        `map '${this.info.name}' (id ${this.id}): value is ${value.length} bytes, expected ${this.info.valueSize}`,
        22,
      );
    }
    return new Uint8Array(value);
  }

  /** Deletes every key (arrays: sets every value to zero). */
  clear(): void {
    if (this.info.type === MAP_TYPES.array || this.info.type === MAP_TYPES.percpu_array) {
      const zero = new Uint8Array(this.info.valueSize);
      for (const k of [...this.keys()]) this.update(k, zero);
      return;
    }
    for (let k = this.nextKey(); k; k = this.nextKey()) this.delete(k);
  }
}
