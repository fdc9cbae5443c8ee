/**
 * `make fuzz-vm N=...`: N valid programs compared exactly across engines,
 * and N arbitrary instruction streams through validator and every engine.
 */
import { type Engine } from "../../ffi/vm.ts";
import { diffArbitraryPrograms, diffValidPrograms } from "./engine_diff.ts";

const count = Number(Deno.args[0] ?? 100_000);
const seed = Number(Deno.args[1] ?? Date.now() & 0x7fffffff);
const engines: Engine[] = ["interp", "jit"];
let failed = false;
for (
  const [name, run] of [["valid", diffValidPrograms], ["arbitrary", diffArbitraryPrograms]] as const
) {
  const start = performance.now();
  const stats = run(engines, count, seed);
  const seconds = Number(((performance.now() - start) / 1000).toFixed(1));
  const { firstMismatch, ...counts } = stats;
  console.log(JSON.stringify({ programs: name, seed, engines, ...counts, seconds }));
  if (firstMismatch) {
    console.log(firstMismatch);
    failed = true;
  }
}
if (failed) Deno.exit(1);
