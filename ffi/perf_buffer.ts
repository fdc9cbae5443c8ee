/**
 * A perf buffer consumer for perf event arrays, like libbpf's perf_buffer:
 * it enables every entry, then reads PERF_RECORD_SAMPLE and PERF_RECORD_LOST
 * records from each entry's ring (perf_event_mmap_page layout).
 */
import { bpftime, lastError } from "./lib.ts";
import { PerfBufferError } from "./errors.ts";
import { C_CONSTANTS, PERF_HEADER, PERF_RING_PAGE } from "./layout.ts";
import type { Segment } from "./shm.ts";

const {
  data_head: DATA_HEAD,
  data_tail: DATA_TAIL,
  data_offset: DATA_OFFSET,
  data_size: DATA_SIZE,
} = PERF_RING_PAGE;
const { PERF_RECORD_LOST: RECORD_LOST, PERF_RECORD_SAMPLE: RECORD_SAMPLE } = C_CONSTANTS;

interface Ring {
  view: DataView;
  bytes: Uint8Array;
  offset: number;
  size: number;
}

export interface PerfCallbacks {
  /** A sample's raw data (a copy when it wrapped, else a view valid during the call). */
  onSample: (index: number, data: Uint8Array) => void;
  onLost?: (index: number, count: bigint) => void;
}

export class PerfBuffer {
  #rings: Ring[] = [];

  constructor(
    readonly segment: Segment,
    readonly mapId: number,
    readonly callbacks: PerfCallbacks,
  ) {
    const map = segment.map(mapId);
    for (let i = 0; i < map.info.maxEntries; i++) {
      const page = new BigUint64Array(1), size = new BigUint64Array(1);
      const rc = bpftime().bpftime_perf_ring(
        segment.pointer,
        mapId,
        i,
        new Uint8Array(page.buffer),
        new Uint8Array(size.buffer),
      );
      if (rc < 0) throw new PerfBufferError(lastError(), -rc);
      const buf = Deno.UnsafePointerView.getArrayBuffer(
        Deno.UnsafePointer.create(page[0])!,
        Number(size[0]),
      );
      const view = new DataView(buf);
      this.#rings.push({
        view,
        bytes: new Uint8Array(buf),
        offset: Number(view.getBigUint64(DATA_OFFSET, true)),
        size: Number(view.getBigUint64(DATA_SIZE, true)),
      });
      // Enable the entry, as libbpf stores a perf event fd in it.
      const key = new Uint8Array(new Uint32Array([i]).buffer);
      map.update(key, key);
    }
  }

  /** Reads every ring once; returns the number of samples delivered. */
  consume(): number {
    let n = 0;
    this.#rings.forEach((r, index) => {
      let tail = r.view.getBigUint64(DATA_TAIL, true);
      const head = r.view.getBigUint64(DATA_HEAD, true);
      while (tail < head) {
        const at = Number(tail % BigInt(r.size));
        const record = this.#read(r, at, PERF_HEADER.sizeof);
        const hv = new DataView(record.buffer, record.byteOffset, PERF_HEADER.sizeof);
        const type = hv.getUint32(PERF_HEADER.type, true);
        const size = hv.getUint16(PERF_HEADER.size, true);
        const body = this.#read(r, (at + PERF_HEADER.sizeof) % r.size, size - PERF_HEADER.sizeof);
        const bv = new DataView(body.buffer, body.byteOffset, body.byteLength);
        if (type === RECORD_SAMPLE) {
          const raw = bv.getUint32(0, true);
          this.callbacks.onSample(index, body.subarray(4, 4 + raw));
          n++;
        } else if (type === RECORD_LOST) {
          this.callbacks.onLost?.(index, bv.getBigUint64(8, true));
        }
        tail += BigInt(size);
        r.view.setBigUint64(DATA_TAIL, tail, true);
      }
    });
    return n;
  }

  /** `len` bytes at ring offset `at`: a view, or a copy when they wrap. */
  #read(r: Ring, at: number, len: number): Uint8Array {
    if (at + len <= r.size) return r.bytes.subarray(r.offset + at, r.offset + at + len);
    const out = new Uint8Array(len);
    const first = r.size - at;
    out.set(r.bytes.subarray(r.offset + at, r.offset + r.size));
    out.set(r.bytes.subarray(r.offset, r.offset + len - first), first);
    return out;
  }
}
