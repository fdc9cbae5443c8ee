/**
 * A ring buffer consumer that reads records in place in the shared segment
 * (zero copy) and sleeps in the kernel (futex) while the ring is empty.
 */
import { bpftime, lastError } from "./lib.ts";
import { RingBufferError } from "./errors.ts";
import { C_CONSTANTS, RINGBUF_INFO } from "./layout.ts";
import type { Segment } from "./shm.ts";

const BUSY = C_CONSTANTS.RB_BUSY_BIT;
const DISCARD = C_CONSTANTS.RB_DISCARD_BIT;
const HDR = C_CONSTANTS.RB_HDR;

export class RingBuffer {
  #consumer: BigUint64Array;
  #producer: BigUint64Array;
  #dropped: BigUint64Array;
  #data: Uint8Array;
  #view: DataView;
  #mask: bigint;

  constructor(readonly segment: Segment, readonly id: number) {
    const buf = new Uint8Array(RINGBUF_INFO.sizeof);
    if (bpftime().bpftime_ringbuf_info(segment.pointer, id, buf) < 0) {
      throw new RingBufferError(lastError(), 2);
    }
    const info = new DataView(buf.buffer);
    const field = (offset: number) => info.getBigUint64(offset, true);
    const view = (offset: number, bytes: number) =>
      Deno.UnsafePointerView.getArrayBuffer(Deno.UnsafePointer.create(field(offset))!, bytes);
    const size = Number(field(RINGBUF_INFO.size));
    this.#consumer = new BigUint64Array(view(RINGBUF_INFO.consumer_pos, 8));
    this.#producer = new BigUint64Array(view(RINGBUF_INFO.producer_pos, 8));
    this.#data = new Uint8Array(view(RINGBUF_INFO.data, size));
    this.#dropped = new BigUint64Array(view(RINGBUF_INFO.dropped, 8));
    this.#view = new DataView(this.#data.buffer);
    this.#mask = BigInt(size - 1);
  }

  /**
   * The ring in the kernel's mmap layout (consumer page, producer page, data
   * twice), as a libbpf consumer maps it; a fresh view of the same memory.
   */
  kernelLayout(): Uint8Array {
    const length = new BigUint64Array(1);
    const p = bpftime().bpftime_ringbuf_map(
      this.segment.pointer,
      this.id,
      new Uint8Array(length.buffer),
    );
    if (!p) throw new RingBufferError(lastError(), 12);
    return new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(p, Number(length[0])));
  }

  /** Records the producers could not reserve because the ring was full. */
  get dropped(): bigint {
    return this.#dropped[0];
  }

  /** Bytes produced and not yet consumed. */
  get available(): bigint {
    return this.#producer[0] - this.#consumer[0];
  }

  /**
   * Hands every complete record to `fn` as a view into the ring (valid only
   * during the call), in order; stops at a record still being written.
   */
  consume(fn: (record: Uint8Array) => void, max = Infinity): number {
    let cons = this.#consumer[0];
    const prod = this.#producer[0];
    let n = 0;
    while (cons < prod && n < max) {
      const at = Number(cons & this.#mask);
      const len = this.#view.getUint32(at, true);
      if (len & BUSY) break;
      const size = len & ~(BUSY | DISCARD) >>> 0;
      if (!(len & DISCARD)) {
        fn(this.#data.subarray(at + HDR, at + HDR + size));
        n++;
      }
      cons += BigInt((size + HDR + 7) & ~7);
      this.#consumer[0] = cons;
    }
    return n;
  }

  /** Waits (without spinning) up to timeoutMs for records; consumes nothing. */
  async wait(timeoutMs = -1): Promise<void> {
    await bpftime().bpftime_ringbuf_wait(this.segment.pointer, this.id, timeoutMs);
  }

  /** Waits (without spinning) up to timeoutMs for records, then consumes them. */
  async poll(fn: (record: Uint8Array) => void, timeoutMs = -1): Promise<number> {
    const n = this.consume(fn);
    if (n > 0) return n;
    await bpftime().bpftime_ringbuf_wait(this.segment.pointer, this.id, timeoutMs);
    return this.consume(fn);
  }
}
