/**
 * `bpftime attach` on Debian's redis-server, in one run:
 * - attach_ms: `bpftime attach PID` on a freshly started redis-server, wall time (the CLI's own
 *   start included), median of 20; inject_ms: build/bpftime-inject alone, median of 20;
 * - requests/s of one fixed redis-benchmark workload (-t get,set -n 100000 -c 20 -P 1) with no
 *   agent (rps_plain), with the agent loaded and no probe (rps_agent_idle), with our uprobe on
 *   processCommand counting in a hash map (rps_ours), and with the same program as a kernel
 *   uprobe through libbpf (rps_kernel, build/bench/kernel_hold), for that process only.
 * Each rps figure is the median of ROUNDS interleaved rounds (the machine is shared with other
 * developers); ratios are against rps_plain of the same run. Writes bench/out/attach.json and
 * prints a table.
 */
import { BpfObject } from "../api/bpf_object.ts";
import { Segment } from "../ffi/shm.ts";
import { libraryPath } from "../ffi/library_path.ts";
import { Redis, redisBinary, redisInstalled } from "../testing/redis.ts";

const root = new URL("..", import.meta.url).pathname;
const OBJ = `${root}build/bench/uprobe_probes.bpf.o`;
const KERNEL = `${root}build/bench/kernel_hold`;
const INJECT = `${root}build/bpftime-inject`;
const FUNC = "processCommand";
const ATTACHES = 20, ROUNDS = 3;
const WORKLOAD = ["-t", "get,set", "-n", "100000", "-c", "20", "-P", "1"];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

if (!redisInstalled()) {
  console.log(
    "skipped: redis-server, redis-cli and redis-benchmark not installed (scripts/setup.sh)",
  );
  Deno.exit(0);
}
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const segName = `bpftime_bench_attach_${Deno.pid}`;
const seg = Segment.open(segName, { create: true, sizeMb: 8 });
const env = { BPFTIME_GLOBAL_SHM_NAME: segName };
const obj = BpfObject.open(OBJ);
obj.load(seg);
const bin = redisBinary();

/** Requests/s of the workload: both tests' requests over their summed time. */
async function rps(r: Redis): Promise<number> {
  const b = await r.benchmark(WORKLOAD);
  if (b.errors) throw new Error(`redis-benchmark: ${b.errors}`);
  return 2 / (1 / b.rps.SET + 1 / b.rps.GET);
}

/** The `hits` count of process pid (our uprobe's program counts by tgid). */
function ourHits(pid: number): bigint {
  const key = new Uint8Array(4);
  new DataView(key.buffer).setUint32(0, pid, true);
  const v = obj.map("hits").lookup(key);
  return v ? new DataView(v.buffer, v.byteOffset).getBigUint64(0, true) : 0n;
}

const plainR: number[] = [], idleR: number[] = [], oursR: number[] = [], kernelR: number[] = [];
const attachMs: number[] = [], injectMs: number[] = [];
let kernelOk = Deno.uid() === 0;
const plain = await Redis.start(), traced = await Redis.start();
try {
  // Time to attach: a fresh server each time (an agent, once there, stays).
  for (let i = 0; i < 2 * ATTACHES; i++) {
    const r = await Redis.start();
    try {
      const t0 = performance.now();
      const out = i % 2
        ? await new Deno.Command(INJECT, {
          args: [String(r.pid), Deno.realPathSync(libraryPath("agent")), segName],
          stdout: "piped",
          stderr: "piped",
        }).output()
        : await new Deno.Command(`${root}bin/bpftime`, {
          args: ["attach", String(r.pid)],
          env,
          stdout: "piped",
          stderr: "piped",
        }).output();
      const ms = performance.now() - t0;
      if (out.code !== 0) throw new Error(`attach failed: ${new TextDecoder().decode(out.stderr)}`);
      (i % 2 ? injectMs : attachMs).push(ms);
    } finally {
      await r.stop();
    }
  }

  const a = await new Deno.Command(`${root}bin/bpftime`, {
    args: ["attach", String(traced.pid)],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (a.code !== 0) throw new Error(`attach failed: ${new TextDecoder().decode(a.stderr)}`);
  await sleep(200);

  for (let round = 0; round < ROUNDS; round++) {
    plainR.push(await rps(plain));
    idleR.push(await rps(traced));

    const link = obj.program("count_entry").attachUprobe({ path: bin, func: FUNC });
    const h0 = ourHits(traced.pid);
    const end = Date.now() + 5000;
    while (ourHits(traced.pid) === h0) {
      await traced.cli(["PING"]);
      if (Date.now() > end) throw new Error("our uprobe never ran");
      await sleep(20);
    }
    oursR.push(await rps(traced));
    link.destroy();
    await sleep(300); // the agent removes its hook

    if (kernelOk) {
      const k = new Deno.Command(KERNEL, {
        args: [OBJ, "count_entry", bin, FUNC, String(plain.pid)],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const reader = k.stdout.getReader();
      const first = new TextDecoder().decode((await reader.read()).value ?? new Uint8Array());
      if (!first.startsWith("ready")) {
        kernelOk = false;
        await k.stdin.close();
        console.log(
          `kernel column skipped: ${new TextDecoder().decode((await k.output()).stderr)}`,
        );
        continue;
      }
      kernelR.push(await rps(plain));
      await k.stdin.close();
      let rest = first;
      for (let c = await reader.read(); !c.done; c = await reader.read()) {
        rest += new TextDecoder().decode(c.value);
      }
      await k.status;
      const hits = Number(rest.trim().split("\n").pop());
      if (!(hits >= 200000)) {
        throw new Error(`the kernel uprobe counted ${hits} of 200000 requests`);
      }
    }
  }
} finally {
  await plain.stop();
  await traced.stop();
  obj.close();
  seg.close();
  Segment.remove(segName);
}

const p = median(plainR);
const row = (name: string, xs: number[]) => ({
  setup: name,
  rps: xs.length ? Math.round(median(xs)) : null,
  of_plain: xs.length ? +(median(xs) / p).toFixed(3) : null,
  runs: xs.map((x) => Math.round(x)).join(" "),
});
const rows = [
  row("no agent", plainR),
  row("agent loaded, no probe", idleR),
  row(`our uprobe on ${FUNC}`, oursR),
  row(`kernel uprobe on ${FUNC} (libbpf)`, kernelR),
];
const result = {
  attach_ms: +median(attachMs).toFixed(1),
  inject_ms: +median(injectMs).toFixed(1),
  rps_plain: Math.round(p),
  rps_agent_idle: Math.round(median(idleR)),
  rps_ours: Math.round(median(oursR)),
  rps_kernel: kernelR.length ? Math.round(median(kernelR)) : null,
  ours_over_kernel: kernelR.length ? +(median(oursR) / median(kernelR)).toFixed(3) : null,
  workload: `redis-benchmark ${WORKLOAD.join(" ")} (requests/s over GET and SET)`,
  note: `medians of ${ROUNDS} interleaved rounds (attach: of ${ATTACHES}); 2 cores shared with ` +
    `other developers' builds and tests`,
  rows,
};
const outDir = `${root}bench/out/`;
Deno.mkdirSync(outDir, { recursive: true });
await Deno.writeTextFile(`${outDir}attach.json`, JSON.stringify(result, null, 2) + "\n");
console.table(rows);
console.log(
  `attach: ${result.attach_ms} ms with the CLI (median of ${ATTACHES}), ${result.inject_ms} ms ` +
    `for the injector alone`,
);
if (!kernelOk) console.log("kernel row skipped: kernel uprobes need root");
console.log(`written to ${outDir}attach.json`);
