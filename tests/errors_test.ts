/** Each refusal is an error class that says what failed, all of them BpftimeErrors. */
import assert from "node:assert/strict";
import {
  BpftimeError,
  LinkError,
  MapError,
  PerfBufferError,
  ProgramError,
  RingBufferError,
  SegmentError,
} from "../ffi/errors.ts";
import { PerfBuffer } from "../ffi/perf_buffer.ts";
import { RingBuffer } from "../ffi/ringbuf.ts";
import { Segment } from "../ffi/shm.ts";
import { freshSegment } from "./test_utils.ts";

const NAME = `bpftime_test_errors_${Deno.pid}`;

function throwsA(fn: () => unknown, cls: typeof BpftimeError, errno: number, message: RegExp) {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof cls, `${e} is a ${cls.name}`);
    assert.ok(e instanceof BpftimeError);
    assert.equal(e.name, cls.name);
    assert.equal(e.errno, errno);
    assert.match(e.message, message);
    return true;
  });
}

Deno.test("errors: segment, map, program, link, ring buffer and perf buffer refusals", () => {
  const seg = freshSegment(NAME);
  try {
    const hash = seg.createMap({
      type: "hash",
      name: "h",
      keySize: 4,
      valueSize: 4,
      maxEntries: 2,
    });
    throwsA(() => seg.map(999), MapError, 2, /no map with id 999/);
    throwsA(() => hash.update(new Uint8Array(3), new Uint8Array(4)), MapError, 22, /key is 3/);
    throwsA(() => seg.program(999), ProgramError, 2, /no program with id 999/);
    throwsA(() => seg.link(999), LinkError, 2, /no link with id 999/);
    throwsA(
      () => seg.createLink("x", { progId: 0, type: "uprobe", target: "x".repeat(300) }),
      LinkError,
      22,
      /longer than 255/,
    );
    throwsA(() => new RingBuffer(seg, hash.id), RingBufferError, 2, /./);
    throwsA(() => new PerfBuffer(seg, hash.id, { onSample: () => {} }), PerfBufferError, 2, /./);
    seg.close();
    throwsA(() => seg.objects(), SegmentError, 9, /is closed/);
  } finally {
    seg.close();
    Segment.remove(NAME);
  }
  throwsA(() => Segment.open(NAME), SegmentError, 2, /./);
});
