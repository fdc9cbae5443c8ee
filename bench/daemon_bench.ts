/**
 * `bpftime daemon`: the per-hit cost of a libbpf tool's uprobe program on a kernel uprobe and
 * redirected to userspace by the daemon, in one run, on add() of build/tests/probe_target (a
 * 5-byte function: bench/uprobe's 1-byte one is too short for our hook, and would be left to the
 * kernel), timing the whole run of `probe_target add N 1`, for two programs: probe_counts.bpf.o's on_entry (an array lookup
 * and two atomic adds: two bpf(2) calls per hit once redirected) and daemon_globals.bpf.o's
 * count_global (a .bss counter: the kernel's memory, mapped); and the cost per operation of a
 * segment map fronting a kernel hash map against bpf(2) on the kernel map itself; and the per-hit
 * cost of programs that output one 24-byte record into a kernel ring buffer or perf event array
 * (daemon_events.bpf.o's ring_output, perf_output, read by build/tests/daemon_events), in the
 * kernel and redirected (each output a BPF_PROG_TEST_RUN of a small kernel program, kernel_ring.c).
 * Per-hit figures are the probed time minus the unprobed time, median of RUNS runs each. Root
 * only. Writes bench/out/daemon.json and prints a table.
 */
import { bpftime } from "../ffi/lib.ts";
import { libraryPath } from "../ffi/library_path.ts";
import { Segment } from "../ffi/shm.ts";
import { KernelMap } from "../testing/kernel_bpf.ts";

const root = new URL("..", import.meta.url).pathname;
const TARGET = `${root}build/tests/probe_target`;
const TOOL = `${root}build/tests/daemon_tool`;
const PROBES = `${root}build/tests/probe_counts.bpf.o`;
const GLOBALS = `${root}build/tests/daemon_globals.bpf.o`;
const EVENTS_TOOL = `${root}build/tests/daemon_events`;
const EVENTS = `${root}build/tests/daemon_events.bpf.o`;
const DAEMON = `${root}build/bpftime-daemon`;
const AGENT = libraryPath("agent");
const N = 100_000, RUNS = 5, OPS = 200_000;
// Hits per run for the output programs: few enough that the tool keeps up (no records dropped).
const N_EVENTS = 20_000;

if (Deno.uid() !== 0) {
  console.log("bench-daemon needs root (kernel uprobes, the daemon)");
  Deno.exit(0);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Nanoseconds per add() call of `probe_target add N 1`, wall time of the whole run (median). */
async function timeTarget(env: Record<string, string> = {}, n = N): Promise<number> {
  const runs: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    const out = await new Deno.Command("taskset", {
      args: ["-c", "1", TARGET, "add", String(n), "1"],
      env,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const ns = (performance.now() - t) * 1e6 / n;
    if (out.code !== 0) throw new Error(`target failed: ${new TextDecoder().decode(out.stderr)}`);
    runs.push(ns);
  }
  return median(runs);
}

/** The tool, started behind a shell that waits for a line (so its pid is known first). */
function gatedTool(tool: string[]) {
  const child = new Deno.Command("sh", {
    args: ["-c", 'read _ && exec "$@"', "sh", ...tool],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const writer = child.stdin.getWriter();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  return {
    pid: child.pid,
    send: (s: string) => writer.write(new TextEncoder().encode(s)),
    async line(): Promise<string> {
      while (!buf.includes("\n")) {
        const r = await reader.read();
        if (r.done) throw new Error("the tool ended");
        buf += r.value;
      }
      const i = buf.indexOf("\n");
      const l = buf.slice(0, i);
      buf = buf.slice(i + 1);
      return l;
    },
    status: () => child.status,
  };
}

/** The daemon's log so far, and a wait for a line matching `what`. */
function daemonLog(d: Deno.ChildProcess) {
  const reader = d.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  return async (what: RegExp): Promise<void> => {
    while (!what.test(text)) {
      const r = await reader.read();
      if (r.done) throw new Error(`the daemon ended:\n${text}`);
      text += r.value;
    }
  };
}

// run_cnt counts only with kernel.bpf_stats_enabled (put back as it was at the end).
const STATS = "/proc/sys/kernel/bpf_stats_enabled";
const statsWere = Deno.readTextFileSync(STATS).trim();
Deno.writeTextFileSync(STATS, "1");
const native = await timeTarget();
const nativeEvents = await timeTarget({}, N_EVENTS);

/** Added ns per hit on a kernel uprobe and redirected, and what the tool read each side. */
async function perHit(prog: string, tool: string[], n = N, nativeNs = native) {
  // The kernel: the tool alone.
  const alone = gatedTool(tool);
  await alone.send("go\n");
  await alone.line();
  const kernel = await timeTarget({}, n);
  await alone.send("q\n");
  const kernelLine = await alone.line();
  await alone.status();

  // Ours: the same tool, the daemon watching it, the target under the agent.
  const segment = `daemon_bench_${Deno.pid}`;
  const redirected = gatedTool(tool);
  const daemon = new Deno.Command(DAEMON, {
    args: ["-p", String(redirected.pid)],
    env: { BPFTIME_GLOBAL_SHM_NAME: segment },
    stderr: "piped",
  }).spawn();
  const waitDaemon = daemonLog(daemon);
  let ours: number, oursLine: string;
  try {
    await waitDaemon(/running/);
    await redirected.send("go\n");
    await redirected.line();
    await waitDaemon(/runs in userspace/);
    ours = await timeTarget({ BPFTIME_GLOBAL_SHM_NAME: segment, LD_PRELOAD: AGENT }, n);
    await redirected.send("q\n");
    oursLine = await redirected.line();
    await redirected.status();
  } finally {
    daemon.kill("SIGTERM");
    await daemon.status;
    try {
      Segment.remove(segment);
    } catch { /* gone */ }
  }
  return {
    program: prog,
    kernel_ns: kernel - nativeNs,
    ours_ns: ours - nativeNs,
    kernel_over_ours: (kernel - nativeNs) / (ours - nativeNs),
    // What the tool read (run_cnt: the kernel program's runs; 0 when redirected).
    kernel_counted: kernelLine,
    ours_counted: oursLine,
  };
}

let lookups, globals, ringOut, perfOut;
try {
  lookups = await perHit("on_entry", [TOOL, PROBES, TARGET, "add", "on_entry"]);
  globals = await perHit("count_global", [TOOL, GLOBALS, TARGET, "add", "count_global"]);
  const events = (prog: string) => [EVENTS_TOOL, EVENTS, TARGET, "add", prog];
  ringOut = await perHit("ring_output", events("ring_output"), N_EVENTS, nativeEvents);
  perfOut = await perHit("perf_output", events("perf_output"), N_EVENTS, nativeEvents);
} finally {
  Deno.writeTextFileSync(STATS, statsWere);
}

// Kernel-fronting hash map operations, against bpf(2) on the kernel map.
const kmap = KernelMap.create(1, 4, 8, 1024);
const segment = `daemon_bench_${Deno.pid}`;
const seg = Segment.open(segment, { create: true, sizeMb: 4 });
const front = seg.createKernelMap(kmap.id());
const lib = bpftime();
const key = new Uint8Array(4), value = new Uint8Array(8), out = new Uint8Array(8);
new DataView(key.buffer).setUint32(0, 7, true);
kmap.update(key, value, 0n);
function perOp(fn: () => void): number {
  const runs: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const t = performance.now();
    for (let i = 0; i < OPS; i++) fn();
    runs.push((performance.now() - t) * 1e6 / OPS);
  }
  return median(runs);
}
const kmapLookup = perOp(() => lib.bpftime_map_lookup(seg.pointer, front.id, key, out));
const kmapUpdate = perOp(() => lib.bpftime_map_update(seg.pointer, front.id, key, value, 0n));
// bpf(2) straight from one FFI call each, its attribute block built once (as the C side does).
const libc = Deno.dlopen("libc.so.6", {
  syscall: { parameters: ["i64", "i64", "pointer", "u64"], result: "i64" },
});
const ptr = (b: Uint8Array<ArrayBuffer>) =>
  BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(b)));
function elemAttr(val: Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer> {
  const attr = new Uint8Array(32);
  const v = new DataView(attr.buffer);
  v.setUint32(0, kmap.fd, true);
  v.setBigUint64(8, ptr(key), true);
  v.setBigUint64(16, ptr(val), true);
  return attr;
}
const lookupAttr = elemAttr(out), updateAttr = elemAttr(value);
const lookupP = Deno.UnsafePointer.of(lookupAttr), updateP = Deno.UnsafePointer.of(updateAttr);
const sysLookup = perOp(() => libc.symbols.syscall(321n, 1n, lookupP, 32n));
const sysUpdate = perOp(() => libc.symbols.syscall(321n, 2n, updateP, 32n));
libc.close();
seg.close();
Segment.remove(segment);
kmap.close();

// One output into a kernel ring buffer: the test run in the calling thread (what the agent does)
// against handing the record to another thread over a unix socket (the daemon-side design's floor).
const harness = await new Deno.Command(`${root}build/bench/kring_harness`, {
  args: ["100000", String(RUNS)],
  stdout: "piped",
  stderr: "inherit",
}).output();
if (harness.code !== 0) throw new Error("kring_harness failed");
const kring = JSON.parse(new TextDecoder().decode(harness.stdout));

const row = {
  hits_per_run: N,
  native_ns_per_call: native,
  // The program with map lookups (as the malloc example's): the headline figures.
  kernel_ns: lookups.kernel_ns,
  ours_ns: lookups.ours_ns,
  kernel_over_ours: lookups.kernel_over_ours,
  programs: [lookups, globals, ringOut, perfOut],
  // One record output per hit into a kernel ring buffer / perf event array (each side's whole
  // per-hit cost: uprobe, program, output; the tool's counts are in `programs`).
  kring_output_kernel_ns: ringOut.kernel_ns,
  kring_output_ns: ringOut.ours_ns,
  kperf_output_kernel_ns: perfOut.kernel_ns,
  kperf_output_ns: perfOut.ours_ns,
  kring_test_run_ns: kring.test_run_ns,
  kring_via_socket_ns: kring.via_socket_ns,
  kring_socket_over_test_run: kring.via_socket_ns / kring.test_run_ns,
  kmap_lookup_ns: kmapLookup,
  kmap_update_ns: kmapUpdate,
  syscall_lookup_ns: sysLookup,
  syscall_update_ns: sysUpdate,
  kmap_lookup_over_syscall: kmapLookup / sysLookup,
  kmap_update_over_syscall: kmapUpdate / sysUpdate,
  note: `median of ${RUNS} runs; the machine was shared with other jobs`,
};
const outDir = `${root}bench/out/`;
Deno.mkdirSync(outDir, { recursive: true });
await Deno.writeTextFile(`${outDir}daemon.json`, JSON.stringify(row, null, 2) + "\n");
console.table(row.programs);
console.table(Object.fromEntries(Object.entries(row).filter(([k]) => k !== "programs")));
console.log(
  "kernel_ns / ours_ns: added ns per hit (kernel uprobe, and the daemon's userspace copy); " +
    "kmap_*: a segment map fronting a kernel hash map, syscall_*: bpf(2) on that map (both from Deno)",
);
console.log(`written to ${outDir}daemon.json`);
