/**
 * Accesses the JIT proves in bounds (csrc/vm/pointer_facts.c) and inline map lookups
 * (csrc/vm/jit_map_lookup.c): every engine gives the same results, and where no proof may be
 * made (a value offset that can pass value_size, a pointer reloaded from memory, a pointer a
 * loop advances) the access is still checked and stops the program naming pc and address.
 */
import assert from "node:assert/strict";
import { freshSegment } from "./test_utils.ts";
import { Segment } from "../ffi/shm.ts";
import { type Engine, Vm, VmError } from "../ffi/vm.ts";
import { assemble } from "../lib/isa/assembler.ts";

const NAME = `bpftime_jit_facts_${Deno.pid}`;
const ENGINES: Engine[] = ["interp", "jit", "llvm"];
const u32 = (n: number) => new Uint8Array(new Uint32Array([n]).buffer);
const u64 = (n: bigint) => new Uint8Array(new BigUint64Array([n]).buffer);
const ctx = (...bytes: number[]) => {
  const m = new Uint8Array(16);
  m.set(bytes);
  return m;
};

function withSegment(body: (seg: Segment) => void) {
  const seg = freshSegment(NAME);
  try {
    body(seg);
  } finally {
    seg.close();
    Segment.remove(NAME);
  }
}

function load(engine: Engine, seg: Segment | undefined, source: string): Vm {
  const vm = new Vm({ engine });
  if (seg) vm.useRuntime(seg);
  vm.load(assemble(source));
  return vm;
}

function faults(vm: Vm, mem: Uint8Array<ArrayBuffer> | undefined, message: RegExp) {
  assert.throws(() => vm.exec(mem), (e: unknown) => {
    assert.ok(e instanceof VmError, `expected VmError, got ${e}`);
    assert.match(e.message, message);
    return true;
  });
}

/* r0 = value of key 0 in map `id` + (ctx[0] & mask), then a 4-byte load there. */
const valueAtOffset = (id: number, mask: number) => `
    mov %r6, %r1
    stw [%r10-4], 0
    lddw %r1, map_fd ${id}
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, none
    ldxb %r7, [%r6]
    and %r7, ${mask}
    add %r0, %r7
    ldxw %r0, [%r0]
    exit
  none:
    mov %r0, -1
    exit`;

for (const engine of ENGINES) {
  Deno.test(`${engine}: facts: a value offset inside value_size reads the value`, () => {
    withSegment((seg) => {
      const map = seg.createMap({
        type: "array",
        name: "a",
        keySize: 4,
        valueSize: 12,
        maxEntries: 4,
      });
      map.update(u32(0), new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]));
      using vm = load(engine, seg, valueAtOffset(map.id, 7));
      assert.equal(vm.exec(ctx(0)), 0x04030201n);
      assert.equal(vm.exec(ctx(7)), 0x0b0a0908n);
    });
  });

  Deno.test(`${engine}: facts: a value offset that can pass value_size is checked (pc and address)`, () => {
    withSegment((seg) => {
      const map = seg.createMap({
        type: "hash",
        name: "h",
        keySize: 4,
        valueSize: 12,
        maxEntries: 4,
      });
      map.update(u32(0), new Uint8Array(12).fill(1));
      using vm = load(engine, seg, valueAtOffset(map.id, 15));
      assert.equal(vm.exec(ctx(8)), 0x01010101n);
      faults(vm, ctx(9), /^pc 11: out-of-bounds load of 4 bytes at 0x[0-9a-f]+ /);
    });
  });

  Deno.test(`${engine}: facts: a value pointer reloaded from the stack is checked`, () => {
    withSegment((seg) => {
      const map = seg.createMap({
        type: "array",
        name: "a",
        keySize: 4,
        valueSize: 12,
        maxEntries: 4,
      });
      using vm = load(
        engine,
        seg,
        `
          stw [%r10-4], 0
          lddw %r1, map_fd ${map.id}
          mov %r2, %r10
          add %r2, -4
          call 1
          jeq %r0, 0, none
          stxdw [%r10-16], %r0
          ldxdw %r1, [%r10-16]
          ldxw %r0, [%r1+12]
          exit
        none:
          mov %r0, -1
          exit`,
      );
      faults(vm, undefined, /^pc 9: out-of-bounds load of 4 bytes at 0x[0-9a-f]+ /);
    });
  });

  Deno.test(`${engine}: facts: a pointer a loop advances is checked when it leaves the frame`, () => {
    const loop = (n: number) => `
        mov %r1, %r10
        add %r1, -64
        mov %r0, 0
      again:
        stxdw [%r1], %r0
        add %r1, 8
        add %r0, 1
        jlt %r0, ${n}, again
        exit`;
    using ok = load(engine, undefined, loop(8));
    assert.equal(ok.exec(), 8n);
    using bad = load(engine, undefined, loop(20));
    faults(bad, undefined, /^pc 3: out-of-bounds store of 8 bytes at 0x[0-9a-f]+ /);
  });

  Deno.test(`${engine}: facts: an index that wraps around to negative is checked`, () => {
    // r2 doubles 63 times: 2^63 wraps to INT64_MIN, which passes "r2 s<= 63".
    using vm = load(
      engine,
      undefined,
      `
        mov %r2, 1
        mov %r0, 0
      again:
        add %r2, %r2
        add %r0, 1
        jlt %r0, 63, again
        jsgt %r2, 63, out
        mov %r3, %r10
        add %r3, -64
        add %r3, %r2
        stxb [%r3], %r0
      out:
        exit`,
    );
    faults(vm, undefined, /^pc 9: out-of-bounds store of 1 bytes at 0x[0-9a-f]+ /);
  });

  Deno.test(`${engine}: facts: a buffer indexed by a bounded loop counter (proven) holds what was written`, () => {
    using vm = load(
      engine,
      undefined,
      `
        mov %r2, 0
      fill:
        mov %r3, %r10
        add %r3, -64
        add %r3, %r2
        stxb [%r3], %r2
        add %r2, 1
        jne %r2, 64, fill
        mov %r0, 0
        mov %r2, 0
      sum:
        mov %r3, %r10
        add %r3, -64
        add %r3, %r2
        ldxb %r4, [%r3]
        add %r0, %r4
        add %r2, 1
        jne %r2, 64, sum
        exit`,
    );
    assert.equal(vm.exec(), BigInt((63 * 64) / 2));
  });

  /* r0 = the u64 value of the key in ctx (keySize bytes), or -1 when missing. */
  const lookupProgram = (id: number, keySize: number) => `
      ${keySize === 4 ? "ldxw" : "ldxdw"} %r3, [%r1]
      ${keySize === 4 ? "stxw [%r10-8], %r3" : "stxdw [%r10-8], %r3"}
      lddw %r1, map_fd ${id}
      mov %r2, %r10
      add %r2, -8
      call 1
      jeq %r0, 0, none
      ldxdw %r0, [%r0]
      exit
    none:
      mov %r0, -1
      exit`;

  Deno.test(`${engine}: inline lookups: arrays give each index's value and null past the end`, () => {
    withSegment((seg) => {
      const map = seg.createMap({
        type: "array",
        name: "a",
        keySize: 4,
        valueSize: 8,
        maxEntries: 16,
      });
      for (let k = 0; k < 16; k++) map.update(u32(k), u64(BigInt(k * 1000 + 7)));
      using vm = load(engine, seg, lookupProgram(map.id, 4));
      for (const k of [0, 1, 7, 15, 16, 17, 1 << 20, 0xffffffff]) {
        const want = k < 16 ? BigInt(k * 1000 + 7) : 0xffffffffffffffffn;
        assert.equal(vm.exec(new Uint8Array(u32(k))), want, `key ${k}`);
      }
    });
  });

  for (const keySize of [4, 8, 12]) {
    Deno.test(`${engine}: inline lookups: hash maps with ${keySize}-byte keys find every key, and only those`, () => {
      withSegment((seg) => {
        const map = seg.createMap({
          type: "hash",
          name: "h",
          keySize,
          valueSize: 8,
          maxEntries: 64,
        });
        const key = (k: number) => {
          const b = new Uint8Array(keySize);
          new DataView(b.buffer).setUint32(0, k * 7919, true);
          if (keySize > 4) b[keySize - 1] = k & 0xff;
          return b;
        };
        for (let k = 0; k < 64; k++) map.update(key(k), u64(BigInt(k) * 3n + 1n));
        for (let k = 0; k < 64; k += 3) map.delete(key(k)); // chains with holes
        // Keys longer than 8 bytes: the program reads the first 8 (a 12-byte key stays a call).
        const source = keySize <= 8 ? lookupProgram(map.id, keySize) : `
            ldxdw %r3, [%r1]
            stxdw [%r10-16], %r3
            ldxw %r3, [%r1+8]
            stxw [%r10-8], %r3
            lddw %r1, map_fd ${map.id}
            mov %r2, %r10
            add %r2, -16
            call 1
            jeq %r0, 0, none
            ldxdw %r0, [%r0]
            exit
          none:
            mov %r0, -1
            exit`;
        using vm = load(engine, seg, source);
        for (let k = 0; k < 80; k++) {
          const mem = new Uint8Array(16);
          mem.set(key(k));
          const want = k < 64 && k % 3 ? BigInt(k) * 3n + 1n : 0xffffffffffffffffn;
          assert.equal(vm.exec(mem), want, `key ${k}`);
        }
      });
    });
  }
}

Deno.test("facts: value pointers with random offset ranges behave alike on every engine", () => {
  withSegment((seg) => {
    let seed = 12345;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (const valueSize of [8, 12, 20]) {
      const map = seg.createMap({
        type: "array",
        name: `a${valueSize}`,
        keySize: 4,
        valueSize,
        maxEntries: 2,
      });
      map.update(u32(0), new Uint8Array(valueSize).map((_, i) => i + 1));
      for (let round = 0; round < 12; round++) {
        const mask = [0, 1, 3, 7, 15][rand(5)], add = rand(12) - 2;
        const size = [1, 2, 4, 8][rand(4)];
        const ldx = { 1: "ldxb", 2: "ldxh", 4: "ldxw", 8: "ldxdw" }[size];
        const source = `
            mov %r6, %r1
            stw [%r10-4], 0
            lddw %r1, map_fd ${map.id}
            mov %r2, %r10
            add %r2, -4
            call 1
            jeq %r0, 0, none
            ldxb %r7, [%r6]
            and %r7, ${mask}
            add %r0, %r7
            add %r0, ${add}
            ${ldx} %r0, [%r0]
            exit
          none:
            mov %r0, -1
            exit`;
        const outcome = (engine: Engine, mem: Uint8Array<ArrayBuffer>) => {
          using vm = load(engine, seg, source);
          try {
            return `r0 ${vm.exec(mem)}`;
          } catch (e) {
            return `error ${(e as Error).message}`;
          }
        };
        for (const first of [0, mask >> 1, mask]) {
          const want = outcome("interp", ctx(first));
          for (const engine of ["jit", "llvm"] as Engine[]) {
            assert.equal(
              outcome(engine, ctx(first)),
              want,
              `${engine}, value size ${valueSize}, mask ${mask}, add ${add}, size ${size}, ctx ${first}`,
            );
          }
        }
      }
    }
  });
});
