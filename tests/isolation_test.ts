/**
 * Memory isolation as the kernel enforces it: a program reaches only the maps it references,
 * a pointer to a map value reaches only that element's value, and a fault inside a ring buffer
 * reservation releases the reservation so the ring keeps flowing. (The kernel refuses such
 * programs at load; here the accesses the validator cannot judge are checked when they run.)
 */
import assert from "node:assert/strict";
import { type Engine, Vm } from "../ffi/vm.ts";
import type { Segment } from "../ffi/shm.ts";
import { RingBuffer } from "../ffi/ringbuf.ts";
import { assemble } from "../lib/isa/assembler.ts";
import { freshSegment } from "./test_utils.ts";

const ENGINES: Engine[] = ["interp", "jit", "llvm"];
const u32 = (n: number) => new Uint8Array(new Uint32Array([n]).buffer);

function vmFor(engine: Engine, seg: Segment, source: string): Vm {
  const vm = new Vm({ engine });
  vm.useRuntime(seg);
  vm.load(assemble(source));
  return vm;
}

/** r0 = lookup(map, key at r10-4 = `key`); exit 0 when missing. */
const lookup = (id: number, key: number) => `
  stw [%r10-4], ${key}
  lddw %r1, map_fd ${id}
  mov %r2, %r10
  add %r2, -4
  call 1
  jeq %r0, 0, out`;

for (const engine of ENGINES) {
  for (const type of ["hash", "array"] as const) {
    Deno.test(`isolation/${engine}: a ${type} value pointer reaches only its own element`, () => {
      using seg = freshSegment(`t_iso_${type}_${engine}`);
      // value_size 12: elements every 16 bytes, the last 4 of each are nobody's.
      const m = seg.createMap({ type, name: "q", keySize: 4, valueSize: 12, maxEntries: 4 });
      for (const k of [0, 1, 2]) m.update(u32(k), new Uint8Array(12).fill(0x10 + k));
      const store = (at: string) => `${lookup(m.id, 1)}\n${at}\nout:\nmov %r0, 0\nexit`;
      // Inside the value: fine.
      using ok = vmFor(engine, seg, store("stw [%r0+8], 0x55555555"));
      ok.exec();
      assert.deepEqual([...m.lookup(u32(1))!.subarray(8)], [0x55, 0x55, 0x55, 0x55]);
      // Constant offsets outside the value (q[-1], the padding, the next element) are refused
      // at load, as the kernel refuses them.
      for (
        const [at, off] of [["stdw [%r0-8], 0x77", -8], ["stw [%r0+12], 1", 12], [
          "ldxdw %r1, [%r0+16]",
          16,
        ]]
      ) {
        const vm = new Vm({ engine });
        vm.useRuntime(seg);
        assert.throws(
          () => vm.load(assemble(store(at as string))),
          new RegExp(
            `^VmError: pc 7: invalid access to map value, value_size=12 off=${off} size=\\d`,
          ),
        );
        vm.close();
      }
      // An offset the validator cannot see (from the context): checked when it runs, bounded
      // to the element's value; q[-1] and the padding fault, naming the pc and the address.
      using dyn = vmFor(
        engine,
        seg,
        `ldxdw %r6, [%r1]\n${
          lookup(m.id, 1)
        }\nadd %r0, %r6\nstdw [%r0], 0x77\nout:\nmov %r0, 0\nexit`,
      );
      for (const off of [-8n, 8n, 12n, -4n]) {
        assert.throws(
          () => dyn.exec(new Uint8Array(new BigInt64Array([off]).buffer)),
          /^VmError: pc 9: out-of-bounds store of 8 bytes at 0x[0-9a-f]+/,
          String(off),
        );
      }
      using dynLoad = vmFor(
        engine,
        seg,
        `ldxdw %r6, [%r1]\n${lookup(m.id, 1)}\nadd %r0, %r6\nldxw %r0, [%r0]\nout:\nexit`,
      );
      assert.throws(
        () => dynLoad.exec(new Uint8Array(new BigInt64Array([12n]).buffer)),
        /out-of-bounds load/,
      );
      for (const k of [0, 2]) assert.deepEqual([...m.lookup(u32(k))!], Array(12).fill(0x10 + k));
    });
  }

  Deno.test(`isolation/${engine}: a program reaches no map it does not reference`, () => {
    using seg = freshSegment(`t_iso_ref_${engine}`);
    const secret = seg.createMap({
      type: "array",
      name: "secret",
      keySize: 4,
      valueSize: 8,
      maxEntries: 1,
    });
    const shared = seg.createMap({
      type: "array",
      name: "shared",
      keySize: 4,
      valueSize: 16,
      maxEntries: 1,
    });
    secret.update(u32(0), new Uint8Array(8).fill(0x5e));
    // Another object's program, which references both, leaves secret's address and map
    // pointer in the shared array.
    using leak = vmFor(
      engine,
      seg,
      `${lookup(secret.id, 0)}
      mov %r6, %r0
      ${lookup(shared.id, 0)}
      stxdw [%r0], %r6
      lddw %r1, map_fd ${secret.id}
      stxdw [%r0+8], %r1
    out:
      mov %r0, 0
      exit`,
    );
    leak.exec();
    // Writing through the address faults.
    using write = vmFor(
      engine,
      seg,
      `${lookup(shared.id, 0)}
      ldxdw %r1, [%r0]
      stdw [%r1], 0x66
    out:
      mov %r0, 0
      exit`,
    );
    assert.throws(() => write.exec(), /^VmError: pc 8: out-of-bounds store of 8 bytes at 0x/);
    // The map helpers refuse the map pointer: -EINVAL.
    using update = vmFor(
      engine,
      seg,
      `${lookup(shared.id, 0)}
      ldxdw %r1, [%r0+8]
      stw [%r10-4], 0
      stdw [%r10-16], 0x66
      mov %r2, %r10
      add %r2, -4
      mov %r3, %r10
      add %r3, -16
      mov %r4, 0
      call 2
      exit
    out:
      mov %r0, 0
      exit`,
    );
    assert.equal(update.exec(), BigInt.asUintN(64, -22n));
    assert.deepEqual([...secret.lookup(u32(0))!], Array(8).fill(0x5e));
  });

  Deno.test(`isolation/${engine}: a fault inside a ring buffer reservation does not stall the ring`, () => {
    using seg = freshSegment(`t_iso_ring_${engine}`);
    const m = seg.createMap({
      type: "ringbuf",
      name: "rb",
      keySize: 0,
      valueSize: 0,
      maxEntries: 4096,
    });
    const rb = new RingBuffer(seg, m.id);
    const reserve = `lddw %r1, map_fd ${m.id}
      mov %r2, 8
      mov %r3, 0
      call 131
      jeq %r0, 0, out`;
    using faulty = vmFor(
      engine,
      seg,
      `${reserve}
      stdw [%r0], 1
      mov %r2, 0
      ldxb %r0, [%r2]
    out:
      mov %r0, 0
      exit`,
    );
    using good = vmFor(
      engine,
      seg,
      `${reserve}
      stdw [%r0], 42
      mov %r1, %r0
      mov %r2, 0
      call 132
    out:
      mov %r0, 0
      exit`,
    );
    assert.throws(() => faulty.exec(), /out-of-bounds load/);
    good.exec();
    assert.throws(() => faulty.exec(), /out-of-bounds load/);
    good.exec();
    const got: bigint[] = [];
    rb.consume((r) => got.push(new DataView(r.buffer, r.byteOffset).getBigUint64(0, true)));
    assert.deepEqual(got, [42n, 42n]);
  });
}
