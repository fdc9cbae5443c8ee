/**
 * `make bench-vm`: each workload of bench/workloads/ runs as native code
 * (clang -O2) and as eBPF (clang -target bpf -O2) on every engine, in the
 * same process and run. Prints a table and writes bench/out/vm.json.
 */
import { codeSections } from "../lib/elf/sections.ts";
import { type Engine, Vm } from "../ffi/vm.ts";
import { validProgramSource } from "../testing/valid_program_gen.ts";
import { Rng } from "../testing/program_gen.ts";
import { assemble } from "../lib/isa/assembler.ts";
import { NativeWorkloads } from "./native.ts";

interface Workload {
  name: string;
  mem?: () => Uint8Array<ArrayBuffer>;
  /** Runs with the runtime's helpers (probe_read and friends) instead of bench_helper. */
  runtime?: boolean;
  /** Helper reads per run: the row also gets ns per read (the loop around each read included). */
  reads?: number;
}

const text = (s: string, size: number) => {
  const m = new Uint8Array(size);
  m.set(new TextEncoder().encode(s));
  return m;
};
/* 16 nodes of 32 bytes at 64-byte steps: next (an offset), value; struct_walk follows them. */
function linkedList() {
  const m = new Uint8Array(1024);
  const v = new DataView(m.buffer);
  for (let k = 0; k < 16; k++) {
    v.setBigUint64(k * 64, BigInt(((k * 7 + 3) % 16) * 64), true);
    v.setBigUint64(k * 64 + 8, BigInt(k + 1), true);
  }
  return m;
}

const WORKLOADS: Workload[] = [
  { name: "prime" },
  { name: "memcmp64k", mem: () => new Uint8Array(128 * 1024).fill(0x5a) },
  { name: "fib" },
  { name: "bitops" },
  { name: "helper_calls" },
  {
    name: "probe_read8",
    runtime: true,
    reads: 1000,
    mem: () => new Uint8Array(512).map((_, i) => i * 7),
  },
  { name: "probe_str64", runtime: true, reads: 100, mem: () => text("a".repeat(63), 128) },
  { name: "str_hash", runtime: true, mem: () => text("/usr/lib/x86_64-linux-gnu/libc.so.6", 128) },
  { name: "struct_walk", runtime: true, mem: linkedList },
];
const ENGINES: Engine[] = ["interp", "jit", "llvm"];
/* BENCH_ONLY=fib,prime runs only those workloads (for bisecting one row). */
const ONLY = Deno.env.get("BENCH_ONLY")?.split(",").filter((x) => x);
/*
 * Some workloads run more than the default budget of 1,000,000 instructions: they get a larger
 * one, so the counting (at back-edges and calls) is measured; BPFTIME_INSN_BUDGET=0 measures
 * without it.
 */
const BUDGET = Deno.env.get("BPFTIME_INSN_BUDGET") === "0" ? 0n : 1n << 40n;
const TARGET_SECONDS = 0.3;

/**
 * Mean ns per run of each side, measured in interleaved rounds (so that a
 * slow moment of this shared machine hits every side alike); the best round
 * of each side counts. Each measurement lasts about TARGET_SECONDS / ROUNDS.
 */
const ROUNDS = 5;
function measureAll(sides: Record<string, (repeat: number) => { ns: number; r0: bigint }>) {
  const repeats: Record<string, number> = {};
  for (const [name, run] of Object.entries(sides)) {
    const first = run(1);
    repeats[name] = Math.max(
      3,
      Math.round((TARGET_SECONDS * 1e9) / ROUNDS / Math.max(first.ns, 1)),
    );
  }
  const best: Record<string, { ns: number; r0: bigint }> = {};
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, run] of Object.entries(sides)) {
      const r = run(repeats[name]);
      if (!best[name] || r.ns < best[name].ns) best[name] = r;
    }
  }
  return best;
}

const round = (x: number, digits = 2) => Number(x.toFixed(digits));
const geomean = (xs: number[]) => Math.exp(xs.reduce((s, x) => s + Math.log(x), 0) / xs.length);

const objectPath = new URL("../build/bench/workloads.bpf.o", import.meta.url).pathname;
const sections = codeSections(await Deno.readFile(objectPath), objectPath);
const native = new NativeWorkloads();
const rows: Record<string, string | number>[] = [];
for (const w of WORKLOADS) {
  if (ONLY && !ONLY.includes(w.name)) continue;
  const section = sections.find((s) => s.name === `workload/${w.name}`);
  if (!section) throw new Error(`${objectPath}: no section workload/${w.name}`);
  const mem = w.mem?.();
  const vms = ENGINES.map((engine) => {
    const vm = new Vm({ engine, instructionBudget: BUDGET });
    if (w.runtime) vm.useRuntime();
    else vm.registerHelper(1, "bench_helper", { native: native.helperAddress() });
    vm.load(section.data);
    return vm;
  });
  const sides: Record<string, (repeat: number) => { ns: number; r0: bigint }> = {
    native: (repeat) => native.time(w.name, mem, repeat),
  };
  ENGINES.forEach((engine, i) => sides[engine] = (repeat) => vms[i].timeExec(mem, repeat));
  const best = measureAll(sides);
  const n = best.native;
  const row: Record<string, string | number> = {
    workload: w.name,
    insns: section.data.length / 8,
    native_ns: round(n.ns, 0),
  };
  if (w.reads) row.native_ns_per_read = round(n.ns / w.reads);
  ENGINES.forEach((engine, i) => {
    const r = best[engine];
    if (r.r0 !== n.r0) {
      throw new Error(`${w.name}: native returned ${n.r0}, ${engine} returned ${r.r0}`);
    }
    row[`${engine}_ns`] = round(r.ns, 0);
    row[`${engine}_ratio`] = round(r.ns / n.ns);
    if (w.reads) row[`${engine}_ns_per_read`] = round(r.ns / w.reads);
    if (engine !== "interp") row[`${engine}_compile_us`] = round(vms[i].compileNs / 1000);
    vms[i].close();
  });
  rows.push(row);
}
native.close();

// Compile time of a 1,000-instruction program (median of 101 compilations).
const bigSource = validProgramSource(new Rng(1), { kernel: true });
let big = assemble(bigSource);
while (big.length / 8 < 1000) big = new Uint8Array([...big.subarray(0, big.length - 8), ...big]);
big = big.subarray(big.length - 1000 * 8);
const compileTimes: number[] = [];
for (let i = 0; i < 101; i++) {
  using vm = new Vm({ engine: "jit" });
  try {
    vm.load(big);
  } catch {
    break;
  }
  compileTimes.push(vm.compileNs);
}
compileTimes.sort((a, b) => a - b);

const summary = {
  /* ns per helper read (the loop around each read included), for the rows that have it. */
  ns_per_read: Object.fromEntries(
    rows.filter((r) => r.native_ns_per_read !== undefined).map((r) => [r.workload, {
      native: r.native_ns_per_read,
      ...Object.fromEntries(ENGINES.map((e) => [e, r[`${e}_ns_per_read`]])),
    }]),
  ),
  interp_geomean_ratio: round(geomean(rows.map((r) => r.interp_ratio as number))),
  jit_geomean_ratio: round(geomean(rows.map((r) => r.jit_ratio as number))),
  llvm_geomean_ratio: round(geomean(rows.map((r) => r.llvm_ratio as number))),
  jit_compile_us_1000_insns: compileTimes.length
    ? round(compileTimes[compileTimes.length >> 1] / 1000)
    : null,
};

const outDir = new URL("./out/", import.meta.url).pathname;
await Deno.mkdir(outDir, { recursive: true });
await Deno.writeTextFile(`${outDir}vm.json`, JSON.stringify({ rows, summary }, null, 2) + "\n");
console.table(rows);
console.log(
  `geometric mean vs native: interpreter ${summary.interp_geomean_ratio}x, JIT ${summary.jit_geomean_ratio}x, LLVM ${summary.llvm_geomean_ratio}x`,
);
console.log(
  `JIT compile time, 1,000 instructions: ${summary.jit_compile_us_1000_insns} us (median of 101)`,
);
console.log(`written to ${outDir}vm.json`);
