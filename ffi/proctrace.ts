/**
 * Bindings of build/libbpftime-proctrace.so (csrc/proctrace/proctrace_loader.h): the process
 * tracer's kernel-mode loader, and the batch layout both modes write. Blocks are ArrayBuffers
 * the caller allocates; the C side gets their addresses here and nowhere else.
 */
import { libraryPath } from "./library_path.ts";
import { BpftimeError } from "./errors.ts";

const SYMBOLS = {
  proctrace_batch_layout: { parameters: ["u32", "u32", "buffer"], result: "u64" },
  proctrace_open: { parameters: ["buffer", "buffer", "u64"], result: "pointer" },
  proctrace_start: {
    parameters: ["pointer", "buffer", "u32", "u32", "u32", "buffer", "u64"],
    result: "i32",
  },
  proctrace_next_batch: { parameters: ["pointer", "i32"], result: "i32", nonblocking: true },
  proctrace_release_batch: { parameters: ["pointer", "u32"], result: "i32" },
  proctrace_stop: { parameters: ["pointer"], result: "void", nonblocking: true },
  proctrace_get_stats: { parameters: ["pointer", "buffer"], result: "void" },
  proctrace_close: { parameters: ["pointer"], result: "void" },
  proctrace_batch_begin: {
    parameters: ["buffer", "u32", "u32", "u64"],
    result: "void",
  },
  proctrace_batch_append: {
    parameters: ["buffer", "buffer", "buffer", "u32"],
    result: "i32",
  },
  proctrace_wall_offset_ns: { parameters: [], result: "i64" },
  tpc_open: { parameters: ["buffer", "buffer", "u64"], result: "pointer" },
  tpc_read: { parameters: ["pointer", "buffer", "u64", "i32"], result: "i64", nonblocking: true },
  tpc_close: { parameters: ["pointer"], result: "void" },
} as const satisfies Deno.ForeignLibraryInterface;

type ProctraceLib = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];
let lib: ProctraceLib | undefined;

function proctrace(): ProctraceLib {
  if (lib) return lib;
  const path = libraryPath("proctrace");
  try {
    lib = Deno.dlopen(path, SYMBOLS).symbols;
  } catch (e) {
    throw new ProcTraceError(
      `cannot load ${path}: ${(e as Error).message} (run 'make build' first)`,
    );
  }
  return lib;
}

/** The tracer could not be set up (the message says what and where). */
export class ProcTraceError extends BpftimeError {
  override name = "ProcTraceError";
  constructor(message: string) {
    super(message, 22);
  }
}

/** Columns of a batch block, in enum proctrace_column's order. */
export const BATCH_COLUMNS = [
  "tsNs",
  "durationNs",
  "pid",
  "ppid",
  "exitCode",
  "exitSignal",
  "argc",
  "flags",
  "commOff",
  "commLen",
  "argvOff",
  "argvLen",
  "eventType",
  "arena",
] as const;
export type BatchColumn = typeof BATCH_COLUMNS[number];

/** struct proctrace_batch_header: count, capacity, arena_size, arena_used (u32), sequence (u64), wall_offset_ns (i64). */
export const BATCH_HEADER = {
  count: 0,
  capacity: 4,
  arenaSize: 8,
  arenaUsed: 12,
  sequence: 16,
  wallOffsetNs: 24,
};

/** Byte size and column offsets of a block for `capacity` events and `arena` string bytes. */
export function batchLayout(
  capacity: number,
  arena: number,
): { size: number; offsets: Record<BatchColumn, number> } {
  const out = new BigUint64Array(BATCH_COLUMNS.length);
  const size = Number(
    proctrace().proctrace_batch_layout(capacity, arena, new Uint8Array(out.buffer)),
  );
  const offsets = Object.fromEntries(BATCH_COLUMNS.map((c, i) => [c, Number(out[i])]));
  return { size, offsets: offsets as Record<BatchColumn, number> };
}

export interface KernelTracerOptions {
  objectPath: string;
  btfPath?: string;
  tracefs?: string;
  minDurationNs?: bigint;
  targetPid?: number;
  targetComm?: string;
}

export interface TracerStats {
  events: bigint;
  dropped: bigint;
  argvLost: bigint;
  batches: bigint;
}

function cstr(s: string): Uint8Array<ArrayBuffer> {
  const b = new TextEncoder().encode(s);
  const out = new Uint8Array(b.length + 1);
  out.set(b);
  return out;
}

const ERR_SIZE = 1024;
function errText(buf: Uint8Array): string {
  const end = buf.indexOf(0);
  return new TextDecoder().decode(buf.subarray(0, end < 0 ? buf.length : end));
}

/** The kernel-mode tracer: programs loaded and attached, a C thread filling the caller's blocks. */
export class KernelProcTracer {
  #t: Deno.PointerValue;
  #blocks: ArrayBuffer[] = [];
  #stopping?: Promise<void>;
  #final?: TracerStats; // the counts when it closed

  constructor(opts: KernelTracerOptions) {
    // struct proctrace_options: 3 pointers, u64 min_duration_ns, i32 target_pid, char[16].
    const keep = [opts.objectPath, opts.btfPath, opts.tracefs].map((s) =>
      s === undefined ? null : cstr(s)
    );
    const raw = new Uint8Array(56);
    const view = new DataView(raw.buffer);
    keep.forEach((s, i) =>
      view.setBigUint64(
        i * 8,
        s ? BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(s))) : 0n,
        true,
      )
    );
    view.setBigUint64(24, opts.minDurationNs ?? 0n, true);
    view.setInt32(32, opts.targetPid ?? 0, true);
    const comm = new TextEncoder().encode(opts.targetComm ?? "");
    if (comm.length > 15) {
      throw new ProcTraceError(`comm filter '${opts.targetComm}' is longer than 15 bytes`);
    }
    raw.set(comm, 36);
    const err = new Uint8Array(ERR_SIZE);
    this.#t = proctrace().proctrace_open(raw, err, BigInt(ERR_SIZE));
    keep.length = 0;
    if (!this.#t) throw new ProcTraceError(errText(err));
  }

  /** Starts filling `blocks` (each of batchLayout(capacity, arena).size bytes). */
  start(blocks: ArrayBuffer[], capacity: number, arena: number): void {
    const ptrs = new BigUint64Array(blocks.length);
    blocks.forEach((b, i) => ptrs[i] = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(b))));
    this.#blocks = blocks; // the C side writes into them until close()
    const err = new Uint8Array(ERR_SIZE);
    const rc = proctrace().proctrace_start(
      this.#t,
      new Uint8Array(ptrs.buffer),
      blocks.length,
      capacity,
      arena,
      err,
      BigInt(ERR_SIZE),
    );
    if (rc !== 0) throw new ProcTraceError(errText(err));
  }

  /** Index of the next filled block; -1 on timeout, -2 when stopped and drained. */
  nextBatch(timeoutMs: number): Promise<number> {
    return proctrace().proctrace_next_batch(this.#t, timeoutMs);
  }

  release(index: number): void {
    proctrace().proctrace_release_batch(this.#t, index);
  }

  /** Stops the filling thread after it read what the ring holds (blocks may still come). */
  stop(): Promise<void> {
    return this.#stopping ??= proctrace().proctrace_stop(this.#t);
  }

  stats(): TracerStats {
    if (!this.#t) return this.#final!;
    const s = new BigUint64Array(4);
    proctrace().proctrace_get_stats(this.#t, new Uint8Array(s.buffer));
    return { events: s[0], dropped: s[1], argvLost: s[2], batches: s[3] };
  }

  async close(): Promise<void> {
    if (!this.#t) return;
    await this.stop();
    this.#final = this.stats();
    proctrace().proctrace_close(this.#t);
    this.#t = null;
    this.#blocks = [];
  }
}

/**
 * Fills a block from records read elsewhere (userspace mode: the segment's ring buffer and
 * page map), with the same C code as kernel mode.
 */
export class BatchFiller {
  #bytes: Uint8Array<ArrayBuffer>;
  constructor(readonly block: ArrayBuffer, readonly capacity: number, readonly arena: number) {
    this.#bytes = new Uint8Array(block);
  }

  begin(sequence: bigint): void {
    proctrace().proctrace_batch_begin(this.#bytes, this.capacity, this.arena, sequence);
  }

  /**
   * Appends the record at `record` with argv pages in `pages` (`pageCount` pages): 1 added,
   * 0 when the block is full, 2 added with argv lost.
   */
  append(record: Uint8Array, pages: Uint8Array, pageCount: number): number {
    return proctrace().proctrace_batch_append(this.#bytes, record, pages, pageCount);
  }
}

/** CLOCK_REALTIME - CLOCK_BOOTTIME now: boot-time stamps plus this are wall clock. */
export function wallClockOffsetNs(): bigint {
  return BigInt(proctrace().proctrace_wall_offset_ns());
}

/** A generated collector's object in the kernel (libbpf): its tracepoints attached, its ring read in batches. */
export class KernelTpCollector {
  #c: Deno.PointerValue;

  constructor(objectPath: string) {
    const err = new Uint8Array(ERR_SIZE);
    this.#c = proctrace().tpc_open(cstr(objectPath), err, BigInt(ERR_SIZE));
    if (!this.#c) throw new ProcTraceError(errText(err));
  }

  /**
   * Fills `buf` with records ([u32 length][u32 0][bytes padded to 8]), waiting up to timeoutMs
   * for the first; the bytes used.
   */
  async read(buf: Uint8Array<ArrayBuffer>, timeoutMs: number): Promise<number> {
    if (!this.#c) return 0;
    const n = Number(await proctrace().tpc_read(this.#c, buf, BigInt(buf.length), timeoutMs));
    if (n < 0) throw new ProcTraceError(`reading the ring buffer: errno ${-n}`);
    return n;
  }

  close(): void {
    if (this.#c) proctrace().tpc_close(this.#c);
    this.#c = null;
  }
}
