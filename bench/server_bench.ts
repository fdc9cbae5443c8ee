/**
 * Ring buffer events per second end to end: uprobe hits in a target
 * (probe_target's add) -> bpf_ringbuf_reserve/submit -> an unmodified libbpf
 * consumer in ring_buffer__poll (tests/targets/ring_consumer.c), once on the
 * kernel (root) and once under `bpftime load` + `bpftime start`, in one run.
 * The rate is events / (last record seen - first record seen) by the
 * consumer; best of 3. Writes bench/out/server.json and prints a table.
 */
import { Segment } from "../ffi/shm.ts";

const root = new URL("..", import.meta.url).pathname;
const BIN = `${root}bin/bpftime`;
const CONSUMER = `${root}build/tests/ring_consumer`;
const OBJ = `${root}build/tests/ring_events.bpf.o`;
const TARGET = `${root}build/tests/probe_target`;
// 400,000 records of 32 bytes fit the program's 16 MiB ring: with 8 producer threads on 2 shared
// cores the consumer may fall behind for a while without a record being dropped.
const EVENTS = 400_000, RUNS = 3;
const SEGMENT = "bpftime_bench_server";

async function waitFor(lines: string[], re: RegExp, timeoutMs: number): Promise<string> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const hit = lines.find((l) => re.test(l));
    if (hit) return hit;
    if (Date.now() > end) throw new Error(`timed out waiting for ${re}: ${lines.join("\n")}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** One run: the consumer's JSON summary. */
async function run(mode: "kernel" | "bpftime", threads: number) {
  const env = { BPFTIME_GLOBAL_SHM_NAME: SEGMENT };
  const consumerArgs = [OBJ, TARGET, String(EVENTS), "120"];
  const consumer = new Deno.Command(mode === "kernel" ? CONSUMER : BIN, {
    args: mode === "kernel" ? consumerArgs : ["load", CONSUMER, ...consumerArgs],
    env,
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines: string[] = [];
  const reading = (async () => {
    let partial = "";
    for await (const t of consumer.stdout.pipeThrough(new TextDecoderStream())) {
      const parts = (partial + t).split("\n");
      partial = parts.pop()!;
      lines.push(...parts);
    }
  })();
  await waitFor(lines, /^ready$/, 30000);
  const targetArgs = ["add", String(EVENTS / threads), String(threads)];
  const target = await new Deno.Command(mode === "kernel" ? TARGET : BIN, {
    args: mode === "kernel" ? targetArgs : ["start", TARGET, ...targetArgs],
    env,
    stdout: "null",
  }).output();
  if (target.code !== 0) throw new Error(`${mode}: target failed`);
  const summary = JSON.parse(await waitFor(lines, /^\{"events"/, 120000));
  await consumer.status;
  await reading;
  if (summary.events !== EVENTS) throw new Error(`${mode}: ${summary.events} of ${EVENTS} events`);
  return summary;
}

if (Deno.uid() !== 0) {
  console.log("skip: bench-server needs root (kernel uprobes for the comparison)");
  Deno.exit(0);
}
try {
  Segment.remove(SEGMENT);
} catch { /* none left over */ }
Segment.open(SEGMENT, { create: true, sizeMb: 64 }).close();

const rows = [];
for (const threads of [1, 8]) {
  const best = { kernel: 0, bpftime: 0 };
  for (let i = 0; i < RUNS; i++) {
    for (const mode of ["kernel", "bpftime"] as const) {
      best[mode] = Math.max(best[mode], (await run(mode, threads)).events_per_s);
    }
  }
  rows.push({
    threads,
    events: EVENTS,
    kernel_events_per_s: best.kernel,
    bpftime_events_per_s: best.bpftime,
    bpftime_over_kernel: Number((best.bpftime / best.kernel).toFixed(2)),
  });
}
Segment.remove(SEGMENT);

const out = {
  benchmark: "ring buffer events/s end to end: uprobe -> ring buffer -> libbpf ring_buffer__poll",
  machine: `${Deno.build.os} ${Deno.build.arch}, ${navigator.hardwareConcurrency} CPUs`,
  date: new Date().toISOString(),
  runs: RUNS,
  rows,
};
Deno.mkdirSync(`${root}bench/out`, { recursive: true });
Deno.writeTextFileSync(`${root}bench/out/server.json`, JSON.stringify(out, null, 2) + "\n");
console.log("| target threads | kernel events/s | bpftime events/s | bpftime/kernel |");
console.log("|---------------:|----------------:|-----------------:|---------------:|");
for (const r of rows) {
  console.log(
    `| ${r.threads} | ${r.kernel_events_per_s.toLocaleString("en")} | ` +
      `${r.bpftime_events_per_s.toLocaleString("en")} | ${r.bpftime_over_kernel}x |`,
  );
}
