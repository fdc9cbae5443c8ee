/**
 * What generated collectors (`bpftime gen tracepoint`) run on: their object loaded in the
 * kernel (ffi/proctrace.ts, libbpf) or, with `userspace`, into a segment with a command run
 * under the agent; every ring buffer record handed to a callback as a view (valid during the
 * call) with the offset that turns its boot-time stamp into wall clock.
 */
import { KernelTpCollector, wallClockOffsetNs } from "../ffi/proctrace.ts";
import { RingBuffer } from "../ffi/ringbuf.ts";
import { UserspaceSession } from "./userspace_session.ts";

export interface CollectorOptions {
  /** Run `command` under the agent and collect in userspace (no root). */
  userspace?: boolean;
  command?: string[];
  /** The command's stdout in userspace mode (default: inherit). */
  stdout?: "inherit" | "null" | "piped";
}

export type RecordCallback = (record: Uint8Array, wallOffsetNs: bigint) => void;

export class TracepointCollector {
  /** Resolves when stopped and every record was handed over. */
  readonly done: Promise<void>;
  /** Userspace mode: the command's exit status. */
  readonly exited?: Promise<Deno.CommandStatus>;
  #stopped = false;
  #session?: UserspaceSession;
  #kernel?: KernelTpCollector;

  constructor(objectPath: string, onRecord: RecordCallback, options: CollectorOptions = {}) {
    const offset = wallClockOffsetNs();
    if (options.userspace) {
      this.#session = new UserspaceSession({
        objectPath,
        command: options.command ?? [],
        stdout: options.stdout,
      });
      this.exited = this.#session.child.status;
      let ring: RingBuffer;
      try {
        ring = new RingBuffer(this.#session.segment, this.#session.object.map("events").id);
      } catch (e) {
        this.#session.child.kill("SIGKILL");
        this.#session.close();
        throw e;
      }
      this.done = this.#userspaceLoop(ring, (r) => onRecord(r, offset));
    } else {
      this.#kernel = new KernelTpCollector(objectPath);
      this.done = this.#kernelLoop(this.#kernel, (r) => onRecord(r, offset));
    }
  }

  async #kernelLoop(k: KernelTpCollector, fn: (r: Uint8Array) => void): Promise<void> {
    const buf = new Uint8Array(256 * 1024); // reused for every read
    const view = new DataView(buf.buffer);
    try {
      for (;;) {
        const stopping = this.#stopped;
        const n = await k.read(buf, stopping ? 0 : 100);
        for (let at = 0; at < n;) {
          const len = view.getUint32(at, true);
          fn(buf.subarray(at + 8, at + 8 + len));
          at += 8 + ((len + 7) & ~7);
        }
        if (stopping && n === 0) break;
      }
    } finally {
      k.close();
    }
  }

  async #userspaceLoop(ring: RingBuffer, fn: (r: Uint8Array) => void): Promise<void> {
    try {
      for (;;) {
        const stopping = this.#stopped;
        const n = ring.consume(fn);
        if (stopping && n === 0) break;
        if (n === 0) await ring.wait(100);
      }
    } finally {
      try {
        this.#session!.child.kill("SIGKILL");
      } catch { /* exited */ }
      await this.exited!.catch(() => {});
      this.#session!.close();
    }
  }

  /** Stops collecting; resolves when what was collected has been handed over. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.done;
  }
}

/** Starts collecting the records of a generated collector's object. */
export function collectTracepoints(
  objectPath: string,
  onRecord: RecordCallback,
  options: CollectorOptions = {},
): TracepointCollector {
  return new TracepointCollector(objectPath, onRecord, options);
}
