/** `make fuzz-vm N=...`: a long fuzz run of validator + interpreter. */
import { fuzz } from "./run_fuzz.ts";

const count = Number(Deno.args[0] ?? 100_000);
const seed = Number(Deno.args[1] ?? Date.now() & 0x7fffffff);
const start = performance.now();
const stats = fuzz(count, seed);
const seconds = (performance.now() - start) / 1000;
console.log(JSON.stringify({ seed, ...stats, seconds: Number(seconds.toFixed(1)) }));
if (stats.inconsistent > 0) Deno.exit(1);
