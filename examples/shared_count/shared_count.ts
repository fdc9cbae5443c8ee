/**
 * The shared_count example: a kernel program and a userspace uprobe program count into one
 * kernel hash map. build/examples/shared_count_kernel loads shared_count.bpf.o with libbpf and
 * attaches count_exec to sched/sched_process_exec in the kernel (key 0: execs on the machine);
 * this script loads the same object with our loader, its `counts` map fronting that kernel map
 * (`kernelMaps`), and attaches count_call as a userspace uprobe on the worker's work() (key 1).
 * Every second it prints both counts, read from the one map. Root (the kernel side).
 *
 *   deno run -A examples/shared_count/shared_count.ts [--duration SECONDS]
 *   bin/bpftime start build/examples/shared_count_worker 100   # in another shell, any number of times
 */
import { BpfObject, typed, u32, u64 } from "../../mod.ts";

const root = new URL("../..", import.meta.url).pathname;
const object = `${root}build/bpf/shared_count.bpf.o`;
const durationAt = Deno.args.indexOf("--duration");
const duration = durationAt >= 0 ? Number(Deno.args[durationAt + 1]) : Infinity;

// The kernel side: its map's id is what our loader fronts.
const kernel = new Deno.Command(`${root}build/examples/shared_count_kernel`, {
  args: [object],
  stdin: "piped",
  stdout: "piped",
}).spawn();
const lines = kernel.stdout.pipeThrough(new TextDecoderStream()).getReader();
let first = "";
while (!first.includes("\n")) {
  const r = await lines.read();
  if (r.done) throw new Error("shared_count_kernel ended (is this root?)");
  first += r.value;
}
const id = Number(first.match(/counts map id (\d+)/)![1]);

{
  using obj = BpfObject.open(object, { kernelMaps: { counts: id } });
  obj.load();
  // Only the uprobe program runs in userspace: count_exec is the kernel's.
  using _link = obj.program("count_call").attachUprobe({
    path: `${root}build/examples/shared_count_worker`,
    func: "work",
  });
  const counts = typed(obj.map("counts"), u32, u64);
  console.log(`counting into kernel map ${id}`);

  let stop = false;
  const quit = () => (stop = true);
  Deno.addSignalListener("SIGINT", quit);
  Deno.addSignalListener("SIGTERM", quit);
  const started = Date.now();
  while (!stop && Date.now() - started < duration * 1000) {
    await new Promise((r) => setTimeout(r, 1000));
    console.log(
      `execs (kernel program)=${counts.get(0) ?? 0n}\tcalls (userspace program)=${
        counts.get(1) ?? 0n
      }`,
    );
  }
  Deno.removeSignalListener("SIGINT", quit);
  Deno.removeSignalListener("SIGTERM", quit);
}
const w = kernel.stdin.getWriter();
await w.write(new TextEncoder().encode("q\n"));
await w.close();
await kernel.status;
