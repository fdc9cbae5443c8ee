/**
 * `make bench-vm`: each workload of bench/workloads/ runs as native code
 * (clang -O2) and as eBPF (clang -target bpf -O2) on our interpreter, in the
 * same process and run. Prints a table and writes bench/out/vm.json.
 */
import { codeSections } from "../lib/elf/sections.ts";
import { Vm } from "../ffi/vm.ts";
import { NativeWorkloads } from "./native.ts";

interface Workload {
  name: string;
  mem?: () => Uint8Array<ArrayBuffer>;
}

const WORKLOADS: Workload[] = [
  { name: "prime" },
  { name: "memcmp64k", mem: () => new Uint8Array(128 * 1024).fill(0x5a) },
];
const TARGET_SECONDS = 0.5;

/** Mean ns per run, with the repeat count chosen so a measurement lasts about TARGET_SECONDS. */
function measure(run: (repeat: number) => { ns: number; r0: bigint }) {
  const first = run(1);
  const repeat = Math.max(3, Math.round((TARGET_SECONDS * 1e9) / Math.max(first.ns, 1)));
  let best = run(repeat);
  for (let i = 0; i < 2; i++) {
    const next = run(repeat);
    if (next.ns < best.ns) best = next;
  }
  return best;
}

const objectPath = new URL("../build/bench/workloads.bpf.o", import.meta.url).pathname;
const sections = codeSections(await Deno.readFile(objectPath), objectPath);
const native = new NativeWorkloads();
const rows = [];
for (const w of WORKLOADS) {
  const section = sections.find((s) => s.name === `workload/${w.name}`);
  if (!section) throw new Error(`${objectPath}: no section workload/${w.name}`);
  const mem = w.mem?.();
  using vm = new Vm({ engine: "interp" });
  vm.load(section.data);
  const n = measure((repeat) => native.time(w.name, mem, repeat));
  const interp = measure((repeat) => vm.timeExec(mem, repeat));
  if (n.r0 !== interp.r0) {
    throw new Error(`${w.name}: native returned ${n.r0}, interpreter returned ${interp.r0}`);
  }
  rows.push({
    workload: w.name,
    native_ns: Math.round(n.ns),
    interp_ns: Math.round(interp.ns),
    interp_ratio: Number((interp.ns / n.ns).toFixed(2)),
  });
}
native.close();

const outDir = new URL("./out/", import.meta.url).pathname;
await Deno.mkdir(outDir, { recursive: true });
await Deno.writeTextFile(`${outDir}vm.json`, JSON.stringify(rows, null, 2) + "\n");
console.table(rows);
const geomean = Math.exp(rows.reduce((s, r) => s + Math.log(r.interp_ratio), 0) / rows.length);
console.log(`interpreter / native, geometric mean: ${geomean.toFixed(2)}x`);
console.log(`written to ${outDir}vm.json`);
