/**
 * The malloc example: counts libc malloc calls per process with a uprobe,
 * and prints the counts every second (bpftime's Quick Start, in TypeScript).
 *
 *   bin/bpftime start examples/malloc/victim     # in another shell, any number of times
 *   deno run -A examples/malloc/malloc.ts [--verbose] [--duration SECONDS]
 */
import { BpfObject, typed, u32, u64 } from "../../mod.ts";

const root = new URL("../..", import.meta.url).pathname;
const args = Deno.args;
const verbose = args.includes("--verbose");
const durationAt = args.indexOf("--duration");
const duration = durationAt >= 0 ? Number(args[durationAt + 1]) : Infinity;

using obj = BpfObject.open(`${root}build/bpf/malloc.bpf.o`);
if (verbose) obj.setGlobal("verbose", new Uint8Array([1]));
obj.load();
obj.attach();
const counts = typed(obj.map("libc_malloc_calls_total"), u32, u64);

let stop = false;
const quit = () => (stop = true);
Deno.addSignalListener("SIGINT", quit);
Deno.addSignalListener("SIGTERM", quit);

const started = Date.now();
while (!stop && Date.now() - started < duration * 1000) {
  await new Promise((r) => setTimeout(r, 1000));
  console.log(new Date().toTimeString().slice(0, 8));
  for (const [pid, calls] of counts.entries()) console.log(`\tpid=${pid}\tmalloc calls: ${calls}`);
}
Deno.removeSignalListener("SIGINT", quit);
Deno.removeSignalListener("SIGTERM", quit);
