/**
 * The process tracer under load: bench/proctrace/spawner.c starts N short processes (10,000 by
 * default) one after the other, with argv of varied sizes (1..40 arguments of 1..300 bytes), and
 * we count what each tracer saw: in kernel mode (ProcessTracer.kernel in this process, every
 * event made into its JSON line as the CLI does), in userspace mode (the spawner under the agent)
 * and, as the anchor, bpftrace on tracepoint:sched:sched_process_exec/exit printing pid, ppid,
 * comm / exit code. Keys: execs (spawned), exec_events, exit_events, lost (records dropped, argv
 * lapped, events missing), argv_intact (exec events whose argv equals what was spawned: bpftrace's
 * line carries no argv, so null there), cpu_us_per_event (user + system CPU of the tracer's
 * process over its events; the eBPF programs' own time is spent in the traced processes and is
 * in none of them). Each mode is run RUNS times in turn; medians are reported. Writes
 * bench/out/proctrace.json and prints a table. The machine is shared with other work: CPU
 * figures move with its load.
 */
import { ProcessTracer } from "../mod.ts";

const root = new URL("..", import.meta.url).pathname;
const SPAWNER = `${root}build/bench/proctrace_spawner`;
const N = Number(Deno.env.get("PROCTRACE_N") ?? 10_000);
const RUNS = Number(Deno.env.get("PROCTRACE_RUNS") ?? 3);
/*
 * Userspace mode runs the same number of processes, once: every process of the tree starts the
 * agent (segment, programs compiled, the kernel's BTF mapped for the synthetic task), a few ms each.
 */
const USERSPACE_N = Number(Deno.env.get("PROCTRACE_USERSPACE_N") ?? N);
const TICK_US = 1_000_000 / 100; // CLK_TCK is 100 on Linux

interface Result {
  execs: number;
  exec_events: number;
  exit_events: number;
  lost: number;
  argv_intact: number | null;
  cpu_us_per_event: number;
}

/** user + system CPU of process `pid` so far, in µs (10 ms resolution). */
function cpuUs(pid: number | "self"): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) * TICK_US;
}

/** The argv the spawner gives process i. */
function expectedArgv(i: number): string[] {
  const out = ["/bin/true"];
  for (let j = 0; j < i % 40; j++) {
    out.push(String.fromCharCode(97 + (i + j) % 26).repeat(1 + (i * 31 + j * 17) % 300));
  }
  return out;
}

const same = (a: string[], b: string[]) => a.length === b.length && a.every((x, i) => x === b[i]);

/** Counts a ProcessTracer's events of the spawner's children. */
function counter(n: number) {
  const c = { n, spawner: 0, exec: 0, exit: 0, intact: 0, chars: 0 };
  const onBatch = (b: import("../mod.ts").ProcessBatch) => {
    for (let i = 0; i < b.length; i++) {
      c.chars += b.jsonLine(i).length; // what `bpftime proctrace` does with each event
      if (b.ppid[i] !== c.spawner || c.spawner === 0) continue;
      if (b.isExec(i)) {
        if (same(b.argv(i), expectedArgv(c.exec))) c.intact++;
        c.exec++;
      } else c.exit++;
    }
  };
  return { c, onBatch };
}

async function kernelRun(): Promise<Result> {
  const { c, onBatch } = counter(N);
  const tracer = ProcessTracer.kernel(onBatch, { pid: Deno.pid });
  const before = cpuUs("self"); // from attached on, as bpftrace's below
  const child = new Deno.Command(SPAWNER, { args: [String(N)] }).spawn();
  c.spawner = child.pid;
  const status = await child.status;
  await tracer.stop();
  const cpu = cpuUs("self") - before;
  if (!status.success) throw new Error("spawner failed");
  const s = tracer.stats();
  return result(c, Number(s.dropped + s.argvLost), cpu);
}

async function userspaceRun(): Promise<Result> {
  const { c, onBatch } = counter(USERSPACE_N);
  const tracer = ProcessTracer.userspace([SPAWNER, String(USERSPACE_N)], onBatch, {});
  const before = cpuUs("self");
  c.spawner = tracer.commandPid!;
  const status = await tracer.exited!;
  await tracer.stop();
  const cpu = cpuUs("self") - before;
  if (!status.success) throw new Error("spawner failed under the agent");
  const s = tracer.stats();
  return result(c, Number(s.dropped + s.argvLost), cpu);
}

function result(c: ReturnType<typeof counter>["c"], dropped: number, cpu: number): Result {
  const events = c.exec + c.exit;
  return {
    execs: c.n,
    exec_events: c.exec,
    exit_events: c.exit,
    lost: dropped + (c.n - c.exec) + (c.n - c.exit),
    argv_intact: c.intact,
    cpu_us_per_event: events ? cpu / events : NaN,
  };
}

const BPFTRACE =
  `tracepoint:sched:sched_process_exec { printf("E %d %d %s\\n", pid, curtask->real_parent->tgid, comm); }
tracepoint:sched:sched_process_exit /pid == tid/ { printf("X %d %d %d\\n", pid, curtask->real_parent->tgid, (curtask->exit_code >> 8) & 0xff); }`;

async function bpftraceRun(): Promise<Result> {
  const bt = new Deno.Command("bpftrace", {
    args: ["-e", BPFTRACE],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = bt.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("Attaching")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`bpftrace did not start: ${text}`);
    text += value;
  }
  const rest = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      text += value;
    }
  })();
  const before = cpuUs(bt.pid);
  const child = new Deno.Command(SPAWNER, { args: [String(N)] }).spawn();
  const status = await child.status;
  // Let bpftrace print what its perf buffers hold, then take its CPU time and stop it.
  let last = -1;
  while (last !== text.length) {
    last = text.length;
    await new Promise((r) => setTimeout(r, 300));
  }
  const cpu = cpuUs(bt.pid) - before;
  for (let i = 0; i < 10; i++) {
    bt.kill("SIGINT");
    const done = await Promise.race([
      bt.status.then(() => true),
      new Promise((r) => setTimeout(() => r(false), 1000)),
    ]);
    if (done) break;
  }
  await rest;
  await bt.stderr.cancel();
  if (!status.success) throw new Error("spawner failed");
  let exec = 0, exit = 0, lostLines = 0;
  for (const line of text.split("\n")) {
    const m = /^([EX]) (\d+) (\d+)/.exec(line);
    if (m && Number(m[3]) === child.pid) m[1] === "E" ? exec++ : exit++;
    const l = /Lost (\d+) events/.exec(line);
    if (l) lostLines += Number(l[1]);
  }
  const events = exec + exit;
  return {
    execs: N,
    exec_events: exec,
    exit_events: exit,
    lost: lostLines + (N - exec) + (N - exit),
    argv_intact: null,
    cpu_us_per_event: events ? cpu / events : NaN,
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** The median run by CPU per event (its counts with it); null when the mode could not run. */
function pick(runs: Result[]): Result | null {
  if (runs.length === 0) return null;
  const m = median(runs.map((r) => r.cpu_us_per_event));
  return runs.find((r) => r.cpu_us_per_event === m)!;
}

if (Deno.uid() !== 0) {
  console.error("bench-proctrace: kernel mode and bpftrace need root");
  Deno.exit(1);
}
const runs: Record<string, Result[]> = { kernel: [], userspace: [], bpftrace: [] };
const notes: string[] = [];
const modes: Record<string, () => Promise<Result>> = {
  kernel: kernelRun,
  userspace: userspaceRun,
  bpftrace: bpftraceRun,
};
const broken = new Set<string>();
for (let r = 0; r < RUNS; r++) {
  for (const [name, run] of Object.entries(modes)) {
    if (broken.has(name) || (name === "userspace" && r > 0)) continue;
    try {
      runs[name].push(await run());
    } catch (e) {
      broken.add(name);
      notes.push(`${name}: ${(e as Error).message}`);
    }
  }
}
const kernel = pick(runs.kernel), userspace = pick(runs.userspace), bpftrace = pick(runs.bpftrace);
const ratio = (a: Result | null) =>
  a && bpftrace ? a.cpu_us_per_event / bpftrace.cpu_us_per_event : null;
const out = {
  workload: `${N} processes (/bin/true, 1..40 arguments of 1..300 bytes), one after the other`,
  userspace_workload:
    `${USERSPACE_N} of them, once (each process starts the agent: a few ms apiece)`,
  runs: RUNS,
  note: "median of the runs by cpu_us_per_event; the machine was shared with other work",
  kernel,
  userspace,
  bpftrace,
  cpu_ratio_kernel_vs_bpftrace: ratio(kernel),
  cpu_ratio_userspace_vs_bpftrace: ratio(userspace),
  all_runs: runs,
  notes,
};
Deno.mkdirSync(`${root}bench/out`, { recursive: true });
Deno.writeTextFileSync(`${root}bench/out/proctrace.json`, JSON.stringify(out, null, 2) + "\n");

const cols = [
  "execs",
  "exec_events",
  "exit_events",
  "lost",
  "argv_intact",
  "cpu_us_per_event",
] as const;
console.log(`proctrace: ${out.workload}; median of ${RUNS} runs (shared machine)`);
console.log(["mode".padEnd(10), ...cols.map((c) => c.padStart(17))].join(""));
for (const [name, r] of Object.entries({ kernel, userspace, bpftrace })) {
  const cells = r
    ? cols.map((c) => {
      const v = r[c];
      return (v === null ? "-" : c === "cpu_us_per_event" ? v.toFixed(2) : String(v)).padStart(17);
    })
    : ["(did not run)".padStart(17)];
  console.log([name.padEnd(10), ...cells].join(""));
}
console.log(
  `cpu per event vs bpftrace: kernel ${ratio(kernel)?.toFixed(2) ?? "-"}x, userspace ${
    ratio(userspace)?.toFixed(2) ?? "-"
  }x`,
);
for (const n of notes) console.log(`note: ${n}`);
