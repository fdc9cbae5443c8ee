/**
 * `make bench-maps`: map operations on our shared-memory maps (from C and
 * from a JITed program), on kernel maps through bpf(2), and on a plain C hash
 * table, in one run. Prints a table and writes bench/out/maps.json.
 */
import { kernelBpfAvailable, KernelMap } from "../ffi/kernel_bpf.ts";
import { Segment } from "../ffi/shm.ts";
import { Vm } from "../ffi/vm.ts";
import { assemble } from "../lib/isa/assembler.ts";
import { MAP_TYPES } from "../lib/maps/types.ts";

const lib = Deno.dlopen(new URL("../build/bench/libmapsbench.so", import.meta.url).pathname, {
  bench_ours: { parameters: ["pointer", "u32", "u32", "u32", "u64", "u32"], result: "f64" },
  bench_kernel: { parameters: ["i32", "u32", "u32", "u64"], result: "f64" },
  bench_c_hash: { parameters: ["u32", "u32", "u64"], result: "f64" },
}).symbols;

const KEYS = 1024;
const ITERS = 2_000_000n;
const JIT_LOOP = 1000;
const kernel = kernelBpfAvailable();
const round = (x: number) => Number(x.toFixed(1));
const seg = Segment.open(`bpftime_bench_maps_${Deno.pid}`, { create: true, sizeMb: 64 });

/** ns per lookup from a JITed program: a loop of JIT_LOOP lookups over KEYS keys. */
function jitLookupNs(mapId: number): number {
  using vm = new Vm({ engine: "jit" });
  vm.useRuntime(seg);
  vm.load(assemble(`
      mov %r6, 0
    loop:
      mov %r1, %r6
      and %r1, ${KEYS - 1}
      stxw [%r10-4], %r1
      lddw %r1, map_fd ${mapId}
      mov %r2, %r10
      add %r2, -4
      call 1
      add %r6, 1
      jlt %r6, ${JIT_LOOP}, loop
      mov %r0, 0
      exit`));
  vm.timeExec(undefined, 100);
  return vm.timeExec(undefined, 2000).ns / JIT_LOOP;
}

const rows = [];
const types = ["hash", "array", "percpu_array", "lru_hash"] as const;
for (const typeName of types) {
  const type = MAP_TYPES[typeName];
  const valueSize = 8;
  const map = seg.createMap({ type, name: typeName, keySize: 4, valueSize, maxEntries: KEYS });
  const kmap = kernel.ok ? KernelMap.create(type, 4, valueSize, KEYS) : undefined;
  const valueBytes = map.perCpu ? map.info.valueStride * map.info.ncpus : valueSize;
  for (let k = 0; k < KEYS; k++) {
    const key = new Uint8Array(new Uint32Array([k]).buffer);
    map.update(key, new Uint8Array(valueSize));
    kmap?.update(key, new Uint8Array(valueBytes), 0n);
  }
  for (const [opName, op] of [["lookup", 0], ["update", 1]] as const) {
    const ours = lib.bench_ours(seg.pointer, map.id, op, KEYS, ITERS, valueBytes);
    const kern = kmap ? lib.bench_kernel(kmap.fd, op, KEYS, ITERS / 4n) : NaN;
    const c = typeName === "hash" ? lib.bench_c_hash(op, KEYS, ITERS * 5n) : NaN;
    rows.push({
      op: `${typeName} ${opName}`,
      ours_ns: round(ours),
      ours_jit_ns: op === 0 ? round(jitLookupNs(map.id)) : null,
      kernel_ns: Number.isNaN(kern) ? null : round(kern),
      c_ns: Number.isNaN(c) ? null : round(c),
      vs_kernel: Number.isNaN(kern) ? null : round(kern / ours),
    });
  }
  kmap?.close();
}
seg.close();
Segment.remove(seg.name);
if (!kernel.ok) console.log(`kernel columns skipped: ${kernel.reason}`);

const outDir = new URL("./out/", import.meta.url).pathname;
await Deno.mkdir(outDir, { recursive: true });
await Deno.writeTextFile(`${outDir}maps.json`, JSON.stringify(rows, null, 2) + "\n");
console.table(rows);
console.log("vs_kernel: how many times faster than the same operation through bpf(2)");
console.log(`written to ${outDir}maps.json`);
