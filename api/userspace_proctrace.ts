/**
 * The process tracer's userspace mode: bpf/proctrace.bpf.o in a UserspaceSession, its ring
 * buffer (ffi/ringbuf.ts, read in place) and data pages (the mmapable array in the segment)
 * turned into the same batches as kernel mode by the same C writer (ffi/proctrace.ts).
 */
import { BatchFiller, type TracerStats } from "../ffi/proctrace.ts";
import { RingBuffer } from "../ffi/ringbuf.ts";
import { BATCH_HEADER } from "../ffi/proctrace.ts";
import type { BatchSource } from "./process_tracer.ts";
import { UserspaceSession } from "./userspace_session.ts";
import { possibleCpus } from "./possible_cpus.ts";

const PAGES_PER_CPU = 256; // bpf/proctrace.h
const PAGE_SIZE = 4096;
const POLL_MS = 50; // PROCTRACE_POLL_MS
const ARGV_RECORD_MAX = 32 * 1024 + 16; // the most one event puts in the arena

export interface UserspaceProcTraceOptions {
  objectPath: string;
  command: string[];
  minDurationNs: bigint;
  targetComm: string;
}

export class UserspaceProcTraceSource implements BatchSource {
  readonly session: UserspaceSession;
  readonly exited: Promise<Deno.CommandStatus>;
  #ring: RingBuffer;
  #pages: Uint8Array<ArrayBuffer>;
  #pageCount: number;
  #fillers: BatchFiller[] = [];
  #headers: DataView[] = [];
  #held = new Set<number>();
  #stopped = false;
  #closed = false;
  #stats: TracerStats = { events: 0n, dropped: 0n, argvLost: 0n, batches: 0n };

  constructor(opts: UserspaceProcTraceOptions) {
    this.session = new UserspaceSession({
      objectPath: opts.objectPath,
      command: opts.command,
      prepare: (obj) => {
        const u64 = new Uint8Array(8);
        new DataView(u64.buffer).setBigUint64(0, opts.minDurationNs, true);
        obj.setGlobal("min_duration_ns", u64);
        const comm = new Uint8Array(16);
        comm.set(new TextEncoder().encode(opts.targetComm));
        obj.setGlobal("target_comm", comm);
        const pages = obj.mapDefs.find((d) => d.name === "data_pages");
        if (pages) pages.maxEntries = possibleCpus() * PAGES_PER_CPU;
      },
    });
    try {
      this.#ring = new RingBuffer(this.session.segment, this.session.object.map("events").id);
      this.#pages = this.session.object.map("data_pages").mmapData();
      this.#pageCount = Math.floor(this.#pages.length / PAGE_SIZE);
    } catch (e) {
      this.session.child.kill("SIGKILL");
      this.session.close();
      throw e;
    }
    this.exited = this.session.child.status;
  }

  start(blocks: ArrayBuffer[], capacity: number, arena: number): void {
    this.#fillers = blocks.map((b) => new BatchFiller(b, capacity, arena));
    this.#headers = blocks.map((b) => new DataView(b, 0, 64));
  }

  /** Fills block `i` from what the ring holds; the events it took. */
  #fill(i: number): number {
    const h = this.#headers[i];
    const filler = this.#fillers[i];
    const room = () =>
      h.getUint32(BATCH_HEADER.count, true) < filler.capacity &&
      filler.arena - h.getUint32(BATCH_HEADER.arenaUsed, true) >= ARGV_RECORD_MAX;
    while (room()) {
      const n = this.#ring.consume((record) => {
        const rc = filler.append(record, this.#pages, this.#pageCount);
        if (rc === 2) this.#stats.argvLost++;
      }, 1);
      if (n === 0) break;
    }
    return h.getUint32(BATCH_HEADER.count, true);
  }

  async nextBatch(timeoutMs: number): Promise<number> {
    const i = this.#fillers.findIndex((_, j) => !this.#held.has(j));
    if (i < 0) throw new Error("every batch is held: release one first");
    this.#fillers[i].begin(this.#stats.batches);
    let n = this.#fill(i);
    if (n === 0) {
      if (this.#stopped) return -2;
      // The program submits without waking (bpf/proctrace.h): look again after POLL_MS at most.
      await this.#ring.wait(Math.min(timeoutMs, POLL_MS));
      n = this.#fill(i);
    }
    if (n === 0) return -1;
    this.#held.add(i);
    this.#stats.events += BigInt(n);
    this.#stats.batches++;
    return i;
  }

  release(index: number): void {
    this.#held.delete(index);
  }

  stop(): Promise<void> {
    this.#stopped = true;
    return Promise.resolve();
  }

  stats(): TracerStats {
    if (!this.#closed) {
      const v = this.session.object.map("dropped").lookup(new Uint8Array(4));
      const dropped = v ? new DataView(v.buffer, v.byteOffset).getBigUint64(0, true) : 0n;
      this.#stats.dropped = dropped + this.#ring.dropped;
    }
    return { ...this.#stats };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.stats();
    try {
      this.session.child.kill("SIGKILL");
    } catch { /* exited */ }
    await this.exited.catch(() => {});
    this.#closed = true;
    this.session.close();
  }
}
