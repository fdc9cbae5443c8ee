/**
 * ProcessTracer: exec and exit events of processes, delivered in column batches
 * (api/process_batch.ts) to a callback. Kernel mode loads build/bpf/proctrace.bpf.o through
 * the C loader (ffi/proctrace.ts, libbpf); userspace mode runs a command under the agent with
 * the same object loaded into a segment (api/userspace_proctrace.ts). Either way a small pool
 * of blocks is allocated once and reused: a steady stream of events allocates nothing per event.
 */
import {
  batchLayout,
  KernelProcTracer,
  ProcTraceError,
  type TracerStats,
} from "../ffi/proctrace.ts";
import { ProcessBatch } from "./process_batch.ts";
import { UserspaceProcTraceSource } from "./userspace_proctrace.ts";

export interface ProcessTracerOptions {
  /** Only this process and its children. */
  pid?: number;
  /** Only processes with this comm (up to 15 bytes). */
  comm?: string;
  /** Drop exits of processes that ran less than this. */
  minDurationMs?: number;
  /** Events per batch (default 256). */
  batchCapacity?: number;
  /** Blocks in the pool (default 4). */
  poolSize?: number;
  /** String bytes per batch (default 256 KiB; at least 32 KiB + 16). */
  arenaBytes?: number;
  /** Default: build/bpf/proctrace.bpf.o of this checkout. */
  objectPath?: string;
  /** Kernel BTF (default /sys/kernel/btf/vmlinux). */
  btfPath?: string;
  /** tracefs root (default /sys/kernel/tracing, mounted when missing). */
  tracefs?: string;
}

export type BatchCallback = (batch: ProcessBatch) => void | Promise<void>;

/** Where filled blocks come from: the kernel loader's thread, or the userspace consumer. */
export interface BatchSource {
  start(blocks: ArrayBuffer[], capacity: number, arena: number): void;
  nextBatch(timeoutMs: number): Promise<number>;
  release(index: number): void;
  stop(): Promise<void>;
  stats(): TracerStats;
  close(): Promise<void>;
}

export const DEFAULT_OBJECT = new URL("../build/bpf/proctrace.bpf.o", import.meta.url).pathname;

export class ProcessTracer {
  /** The pool: one ProcessBatch per block, handed to the callback again and again. */
  readonly pool: readonly ProcessBatch[];
  /** Resolves once the tracer stopped and every filled batch was delivered. */
  readonly done: Promise<void>;
  /** Userspace mode: the traced command's exit status. */
  exited?: Promise<Deno.CommandStatus>;
  /** Userspace mode: the traced command's pid. */
  commandPid?: number;
  #source: BatchSource;
  #onBatch: BatchCallback;

  /** Starts tracing on `source` (see kernel() and userspace constructors). */
  constructor(source: BatchSource, onBatch: BatchCallback, options: ProcessTracerOptions = {}) {
    const capacity = options.batchCapacity ?? 256;
    const arena = options.arenaBytes ?? 256 * 1024;
    const { size, offsets } = batchLayout(capacity, arena);
    const blocks = Array.from({ length: options.poolSize ?? 4 }, () => new ArrayBuffer(size));
    this.pool = blocks.map((b) => new ProcessBatch(b, offsets, capacity, arena));
    this.#source = source;
    this.#onBatch = onBatch;
    source.start(blocks, capacity, arena);
    this.done = this.#deliver();
  }

  /** Kernel mode (root): the eBPF programs on sched_process_exec/exit, loaded through libbpf. */
  static kernel(onBatch: BatchCallback, options: ProcessTracerOptions = {}): ProcessTracer {
    const source = new KernelProcTracer({
      objectPath: options.objectPath ?? DEFAULT_OBJECT,
      btfPath: options.btfPath,
      tracefs: options.tracefs,
      minDurationNs: BigInt(Math.round((options.minDurationMs ?? 0) * 1e6)),
      targetPid: options.pid ?? 0,
      targetComm: options.comm ?? "",
    });
    try {
      return new ProcessTracer(source, onBatch, options);
    } catch (e) {
      source.close();
      throw e;
    }
  }

  /**
   * Userspace mode (no root): runs `command` under the agent with the same eBPF object loaded
   * into a segment of its own; events of the command and every process it starts. `exited`
   * resolves with the command's status; stop() after it to deliver the rest.
   */
  static userspace(
    command: string[],
    onBatch: BatchCallback,
    options: ProcessTracerOptions = {},
  ): ProcessTracer {
    if (options.pid !== undefined) {
      throw new ProcTraceError(
        "a pid filter is for kernel mode: userspace mode traces its command's tree",
      );
    }
    const source = new UserspaceProcTraceSource({
      objectPath: options.objectPath ?? DEFAULT_OBJECT,
      command,
      minDurationNs: BigInt(Math.round((options.minDurationMs ?? 0) * 1e6)),
      targetComm: options.comm ?? "",
    });
    let tracer: ProcessTracer;
    try {
      tracer = new ProcessTracer(source, onBatch, options);
    } catch (e) {
      source.close();
      throw e;
    }
    tracer.exited = source.exited;
    tracer.commandPid = source.session.child.pid;
    return tracer;
  }

  async #deliver(): Promise<void> {
    try {
      for (;;) {
        const i = await this.#source.nextBatch(1000);
        if (i === -2) break;
        if (i < 0) continue;
        try {
          await this.#onBatch(this.pool[i]);
        } finally {
          this.#source.release(i);
        }
      }
    } finally {
      await this.#source.close();
    }
  }

  /** Events delivered, records dropped (ring full), argv lost (pages lapped), batches. */
  stats(): TracerStats {
    return this.#source.stats();
  }

  /** Stops tracing; resolves when what was traced has been delivered. */
  async stop(): Promise<void> {
    await this.#source.stop();
    await this.done;
  }
}

export { ProcTraceError };
