/**
 * funclatency: a log2 histogram of how long a function takes, from a
 * uprobe and a uretprobe (bcc's funclatency, in userspace).
 *
 *   deno run -A examples/funclatency/funclatency.ts BINARY FUNCTION [--duration SECONDS] [--json]
 *   bin/bpftime start BINARY ...        # the traced process, in another shell
 */
import { BpfObject, typed, u32, u64 } from "../../mod.ts";

const root = new URL("../..", import.meta.url).pathname;
const [binary, func] = Deno.args;
if (!binary || !func) {
  console.error("usage: funclatency.ts BINARY FUNCTION [--duration SECONDS] [--json]");
  Deno.exit(2);
}
const at = Deno.args.indexOf("--duration");
const duration = at >= 0 ? Number(Deno.args[at + 1]) : Infinity;
const json = Deno.args.includes("--json");

using obj = BpfObject.open(`${root}build/bpf/funclatency.bpf.o`);
obj.load();
obj.program("func_entry").attachUprobe({ path: binary, func });
obj.program("func_return").attachUprobe({ path: binary, func, retprobe: true });
const hist = typed(obj.map("hist"), u32, u64);
console.error(`Tracing ${binary}:${func}... Hit Ctrl-C to end.`);

const { promise: stopped, resolve: stop } = Promise.withResolvers<void>();
Deno.addSignalListener("SIGINT", stop);
Deno.addSignalListener("SIGTERM", stop);
if (Number.isFinite(duration)) setTimeout(stop, duration * 1000);
await stopped;

const counts = [...hist.entries()].sort(([a], [b]) => a - b);
if (json) {
  console.log(JSON.stringify(
    counts.filter(([, n]) => n > 0n).map(([slot, n]) => ({
      from_ns: 2 ** slot,
      to_ns: 2 ** (slot + 1) - 1,
      count: Number(n),
    })),
  ));
} else {
  const last = counts.findLastIndex(([, n]) => n > 0n);
  const max = counts.reduce((m, [, n]) => (n > m ? n : m), 0n);
  console.log(`${"nsecs".padStart(28)} : count     distribution`);
  for (const [slot, n] of counts.slice(0, last + 1)) {
    const bar = max ? "*".repeat(Number((n * 40n) / max)) : "";
    const range = `${2 ** slot} -> ${2 ** (slot + 1) - 1}`;
    console.log(`${range.padStart(28)} : ${String(n).padEnd(9)} |${bar.padEnd(40)}|`);
  }
}
obj.close(); // Deno.exit skips `using`: remove the links, programs and maps first
Deno.exit(0);
