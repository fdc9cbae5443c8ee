/**
 * `make fuzz-vm N=... [LLVM_N=...] [SEED=...]`: N valid programs compared
 * exactly between the interpreter and the JIT, N arbitrary instruction
 * streams through the validator and both, then LLVM_N of each kind with the
 * LLVM tier as well (it compiles in milliseconds, so it gets fewer).
 */
import { type Engine } from "../../ffi/vm.ts";
import { diffArbitraryPrograms, diffValidPrograms } from "./engine_diff.ts";

const count = Number(Deno.args[0] ?? 100_000);
const llvmCount = Number(Deno.args[1] || Math.ceil(count / 100));
const seed = Number(Deno.args[2] || (Date.now() & 0x7fffffff));

const phases: [string, typeof diffValidPrograms, Engine[], number][] = [
  ["valid", diffValidPrograms, ["interp", "jit"], count],
  ["arbitrary", diffArbitraryPrograms, ["interp", "jit"], count],
  ["valid", diffValidPrograms, ["interp", "jit", "llvm"], llvmCount],
  ["arbitrary", diffArbitraryPrograms, ["interp", "jit", "llvm"], llvmCount],
];
let failed = false;
for (const [kind, run, engines, n] of phases) {
  if (n <= 0) continue;
  const start = performance.now();
  const { firstMismatch, ...counts } = run(engines, n, seed);
  const seconds = Number(((performance.now() - start) / 1000).toFixed(1));
  console.log(JSON.stringify({ kind, seed, engines, ...counts, seconds }));
  if (firstMismatch) {
    console.log(firstMismatch);
    failed = true;
  }
}
if (failed) Deno.exit(1);
