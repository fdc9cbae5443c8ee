/**
 * What the runtime refuses, by what failed. Each carries the errno the C side
 * (or bpf(2), for the same request) gives, and its name as `code`.
 */
import { ERRNO } from "../lib/maps/types.ts";

/** Any refusal from the runtime. */
export class BpftimeError extends Error {
  override name = "BpftimeError";
  constructor(message: string, readonly errno: number) {
    super(message);
  }
  get code(): string {
    return ERRNO[this.errno] ?? `errno ${this.errno}`;
  }
}

/** The segment itself: opening, removing, a closed segment, its object table. */
export class SegmentError extends BpftimeError {
  override name = "SegmentError";
}

/** A map: creating it, or a lookup, update, delete or iteration. */
export class MapError extends BpftimeError {
  override name = "MapError";
}

/** A program stored in the segment. */
export class ProgramError extends BpftimeError {
  override name = "ProgramError";
}

/** A link (an attachment of a stored program). */
export class LinkError extends BpftimeError {
  override name = "LinkError";
}

/** A ring buffer consumer. */
export class RingBufferError extends BpftimeError {
  override name = "RingBufferError";
}

/** A perf buffer consumer. */
export class PerfBufferError extends BpftimeError {
  override name = "PerfBufferError";
}
