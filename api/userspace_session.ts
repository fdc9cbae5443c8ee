/**
 * Userspace mode of the tracers (ProcessTracer, generated collectors): a segment of our own, an
 * object loaded and attached in it, and a command run under the agent (LD_PRELOAD, the segment
 * by name), so the programs run in that command and every process it starts. The segment is
 * removed on close.
 */
import { BpfObject } from "./bpf_object.ts";
import { Segment } from "../ffi/shm.ts";
import { libraryPath } from "../ffi/library_path.ts";

let sessions = 0;

export interface UserspaceSessionOptions {
  objectPath: string;
  command: string[];
  /** Before load: set globals, size maps. */
  prepare?: (obj: BpfObject) => void;
  segmentMb?: number;
  /** The command's stdout (default: inherit). */
  stdout?: "inherit" | "null" | "piped";
}

export class UserspaceSession {
  readonly segment: Segment;
  readonly object: BpfObject;
  readonly child: Deno.ChildProcess;
  readonly segmentName: string;

  constructor(opts: UserspaceSessionOptions) {
    if (opts.command.length === 0) throw new Error("userspace mode needs a command to run");
    this.segmentName = `proctrace_${Deno.pid}_${sessions++}`;
    this.segment = Segment.open(this.segmentName, { create: true, sizeMb: opts.segmentMb ?? 64 });
    try {
      this.object = BpfObject.open(opts.objectPath);
      opts.prepare?.(this.object);
      this.object.load(this.segment);
      this.object.attach();
      const preload = [libraryPath("agent"), Deno.env.get("LD_PRELOAD")].filter(Boolean).join(":");
      this.child = new Deno.Command(opts.command[0], {
        args: opts.command.slice(1),
        env: { LD_PRELOAD: preload, BPFTIME_GLOBAL_SHM_NAME: this.segmentName },
        stdin: "inherit",
        stdout: opts.stdout ?? "inherit",
      }).spawn();
    } catch (e) {
      this.#removeSegment();
      throw e;
    }
  }

  #removeSegment(): void {
    try {
      this.segment.close();
    } catch { /* closed */ }
    try {
      Segment.remove(this.segmentName);
    } catch { /* gone */ }
  }

  close(): void {
    try {
      this.object?.close();
    } finally {
      this.#removeSegment();
    }
  }
}
