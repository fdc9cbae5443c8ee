/**
 * A batch of process events in column layout, over one block of memory the C side fills
 * (ffi/proctrace.ts: batchLayout). The typed arrays are made once per block and reused for
 * every batch that block carries; strings (comm, argv) are decoded only when asked for.
 */
import { BATCH_HEADER, type BatchColumn } from "../ffi/proctrace.ts";
import { rfc3339Nanos } from "../lib/time/rfc3339.ts";

export const EVENT_EXEC = 1;
export const EVENT_EXIT = 2;
/** flags: argv longer than the 32 KiB limit (kept up to it). */
export const FLAG_ARGV_TRUNCATED = 1;
/** flags: argv could not be read, or its pages were rewritten before they were read. */
export const FLAG_ARGV_MISSING = 2 | 4;

const decoder = new TextDecoder();

export class ProcessBatch {
  /** Columns, valid for indexes below `length` (their own length is the block's capacity). */
  readonly timestampNs: BigUint64Array<ArrayBuffer>;
  readonly durationNs: BigUint64Array<ArrayBuffer>;
  readonly pid: Int32Array<ArrayBuffer>;
  readonly ppid: Int32Array<ArrayBuffer>;
  readonly exitCode: Int32Array<ArrayBuffer>;
  readonly exitSignal: Int32Array<ArrayBuffer>;
  readonly argc: Uint32Array<ArrayBuffer>;
  readonly flags: Uint32Array<ArrayBuffer>;
  /** EVENT_EXEC or EVENT_EXIT. */
  readonly eventType: Uint8Array<ArrayBuffer>;
  readonly #commOff: Uint32Array;
  readonly #commLen: Uint32Array;
  readonly #argvOff: Uint32Array;
  readonly #argvLen: Uint32Array;
  readonly #arena: Uint8Array;
  readonly #header: DataView;

  constructor(
    readonly block: ArrayBuffer,
    offsets: Record<BatchColumn, number>,
    capacity: number,
    arena: number,
  ) {
    const at = (c: BatchColumn) => offsets[c];
    this.timestampNs = new BigUint64Array(block, at("tsNs"), capacity);
    this.durationNs = new BigUint64Array(block, at("durationNs"), capacity);
    this.pid = new Int32Array(block, at("pid"), capacity);
    this.ppid = new Int32Array(block, at("ppid"), capacity);
    this.exitCode = new Int32Array(block, at("exitCode"), capacity);
    this.exitSignal = new Int32Array(block, at("exitSignal"), capacity);
    this.argc = new Uint32Array(block, at("argc"), capacity);
    this.flags = new Uint32Array(block, at("flags"), capacity);
    this.#commOff = new Uint32Array(block, at("commOff"), capacity);
    this.#commLen = new Uint32Array(block, at("commLen"), capacity);
    this.#argvOff = new Uint32Array(block, at("argvOff"), capacity);
    this.#argvLen = new Uint32Array(block, at("argvLen"), capacity);
    this.eventType = new Uint8Array(block, at("eventType"), capacity);
    this.#arena = new Uint8Array(block, at("arena"), arena);
    this.#header = new DataView(block, 0, 64);
  }

  /** Events in this batch. */
  get length(): number {
    return this.#header.getUint32(BATCH_HEADER.count, true);
  }

  /** Batches filled before this one. */
  get sequence(): bigint {
    return this.#header.getBigUint64(BATCH_HEADER.sequence, true);
  }

  isExec(i: number): boolean {
    return this.eventType[i] === EVENT_EXEC;
  }

  /** The process's comm (up to 15 bytes), decoded now. */
  comm(i: number): string {
    const off = this.#commOff[i];
    return decoder.decode(this.#arena.subarray(off, off + this.#commLen[i]));
  }

  /** argv's bytes as the process has them (NUL after each argument), a view: no copy. */
  argvBytes(i: number): Uint8Array {
    const off = this.#argvOff[i];
    return this.#arena.subarray(off, off + this.#argvLen[i]);
  }

  /** argv, decoded now (exec events; [] for exits). */
  argv(i: number): string[] {
    const bytes = this.argvBytes(i);
    const out: string[] = [];
    let start = 0;
    for (let j = 0; j < bytes.length; j++) {
      if (bytes[j] === 0) {
        out.push(decoder.decode(bytes.subarray(start, j)));
        start = j + 1;
      }
    }
    if (start < bytes.length) out.push(decoder.decode(bytes.subarray(start)));
    return out;
  }

  /** RFC 3339 wall-clock time with nanoseconds. */
  timestamp(i: number): string {
    return rfc3339Nanos(this.timestampNs[i]);
  }

  /** The event as `bpftime proctrace` prints it (one JSON line, no newline). */
  jsonLine(i: number): string {
    const head = `"timestamp":${JSON.stringify(this.timestamp(i))},"pid":${this.pid[i]},"ppid":${
      this.ppid[i]
    },"comm":${JSON.stringify(this.comm(i))}`;
    if (this.isExec(i)) {
      return `{"event_type":"process_exec",${head},"argc":${this.argc[i]},"argv":${
        JSON.stringify(this.argv(i))
      }}`;
    }
    return `{"event_type":"process_exit",${head},"exit_code":${this.exitCode[i]},"duration_ns":${
      this.durationNs[i]
    }}`;
  }
}
