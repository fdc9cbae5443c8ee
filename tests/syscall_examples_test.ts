/**
 * The syscall tracepoint examples (examples/opensnoop, examples/syscount: libbpf applications with
 * bpftool skeletons) on a scripted target (tests/targets/open_target.c): run as they are against
 * the kernel, and unchanged under `bpftime load` with the target under `bpftime start`; both must
 * report what the target says it did, and the same events.
 *
 * Root only (the kernel half loads tracepoint programs; the bpftime half is compared with it).
 * The bpftime half needs the agent to run syscall tracepoint programs.
 */
import assert from "node:assert/strict";
import { Segment } from "../ffi/shm.ts";
import { kernelBpfAvailable } from "../testing/kernel_bpf.ts";
import { freshSegment, ROOT } from "./test_utils.ts";
import { BIN, Running } from "./server_env.ts";

const OPENSNOOP = `${ROOT}build/examples/opensnoop`;
const SYSCOUNT = `${ROOT}build/examples/syscount`;
const OPEN_TARGET = `${ROOT}build/tests/open_target`;
const SYNC_PATH = "/nonexistent/open_target_sync";
const LAST_PATH = "/etc/open_target_missing";

const kernel = kernelBpfAvailable();
if (!kernel.ok) console.log(`skip: syscall examples tests: ${kernel.reason}`);

type Mode = "kernel" | "bpftime";

/** A libbpf application: as it is (kernel), or under `bpftime load` on segment `seg`. */
function app(mode: Mode, seg: string, prog: string, args: string[]): Running {
  return mode === "kernel"
    ? new Running(prog, args)
    : new Running(BIN, ["load", prog, ...args], { BPFTIME_GLOBAL_SHM_NAME: seg });
}

/** The target: as it is (kernel), or under `bpftime start`. */
function traced(mode: Mode, seg: string, prog: string, args: string[]): Running {
  return mode === "kernel"
    ? new Running(prog, args)
    : new Running(BIN, ["start", prog, ...args], { BPFTIME_GLOBAL_SHM_NAME: seg });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits for a tool's line matching `re`; fails at once, with its stderr, if the tool exits first. */
async function attached(mode: Mode, name: string, tool: Running, re: RegExp): Promise<void> {
  let exited = false;
  tool.child.status.then(() => exited = true);
  for (let i = 0; i < 1000; i++) {
    if (tool.lines.some((l) => re.test(l))) return;
    if (exited) {
      await sleep(100); // the rest of its stderr
      throw new Error(`${mode}: ${name} exited before attaching; stderr:\n${tool.stderr}`);
    }
    await sleep(20);
  }
  throw new Error(`${mode}: ${name} did not attach in 20 s; stderr:\n${tool.stderr}`);
}

interface OpenEvent {
  comm: string;
  flags: number;
  fd: number;
  errno: number;
  path: string;
}

/** opensnoop's event lines of process `pid`, in order. */
function openEvents(tool: Running, pid: number): OpenEvent[] {
  const out: OpenEvent[] = [];
  for (const line of tool.lines) {
    const m = /^(\d+) +(\S+) +([0-7]{8}) +(-?\d+) +(\d+) (.*)$/.exec(line);
    if (!m || Number(m[1]) !== pid) continue;
    out.push({
      comm: m[2],
      flags: parseInt(m[3], 8),
      fd: Number(m[4]),
      errno: Number(m[5]),
      path: m[6],
    });
  }
  return out;
}

/** syscount's per-syscall counts, summed over every interval it printed. */
function syscallCounts(tool: Running): Record<string, number> {
  const counts: Record<string, number> = {};
  let inTable = false;
  for (const line of tool.lines) {
    if (/^SYSCALL +COUNT$/.test(line)) inTable = true;
    else if (line === "") inTable = false;
    else if (inTable) {
      const m = /^(\S+) +(\d+)$/.exec(line);
      assert.ok(m, `syscount line: ${line}`);
      counts[m[1]] = (counts[m[1]] ?? 0) + Number(m[2]);
    }
  }
  return counts;
}

interface ProcessRow {
  comm: string;
  count: number;
  us: number;
}

/** syscount -P -L's per-process rows (count, time in microseconds), summed over its intervals. */
function processCounts(tool: Running): Map<number, ProcessRow> {
  const out = new Map<number, ProcessRow>();
  for (const line of tool.lines) {
    const m = /^(\d+) +(\S+) +(\d+) +(\d+\.\d{3})$/.exec(line);
    if (!m) continue;
    const prev = out.get(Number(m[1])) ?? { count: 0, us: 0 };
    out.set(Number(m[1]), {
      comm: m[2],
      count: prev.count + Number(m[3]),
      us: prev.us + Number(m[4]),
    });
  }
  return out;
}

interface TargetReport {
  pid: number;
  opens: { path: string; flags: number; fd: number; errno: number }[];
  calls: Record<string, number>;
  sync_opens: number;
}

interface ScriptedRun {
  target: TargetReport;
  events: OpenEvent[];
  failed: OpenEvent[];
  counts: Record<string, number>;
  perProcess: Map<number, ProcessRow>;
}

/** Ends a tool with SIGTERM (its Ctrl-C path) and checks it exits cleanly. */
async function stopTool(mode: Mode, name: string, tool: Running): Promise<void> {
  tool.child.kill("SIGTERM");
  const status = await tool.finish();
  assert.equal(status.code, 0, `${mode}: ${name} exit status; stderr:\n${tool.stderr}`);
  assert.doesNotMatch(tool.stderr, /fail|error|warn|bpftime-server/i, `${mode}: ${name}`);
}

/**
 * One scripted run on `mode`: the target starts and waits; syscount (per syscall, every second),
 * syscount -P -L (per process, with the time spent in calls), opensnoop and opensnoop -x start
 * with -p PID; the target's SIGUSR2 opens show when opensnoop sees its opens (so every tool is
 * attached); SIGUSR1 runs the script.
 */
async function scriptedRun(mode: Mode): Promise<ScriptedRun> {
  const seg = freshSegment(`t_sysex_${mode}`, 32);
  const running: Running[] = [];
  const start = (r: Running) => (running.push(r), r);
  try {
    const target = start(traced(mode, seg.name, OPEN_TARGET, []));
    const pid = Number((await target.waitLine(/^ready \d+$/)).line.split(" ")[1]);
    const p = String(pid);
    const counts = start(app(mode, seg.name, SYSCOUNT, ["-p", p, "-T", "0", "-i", "1"]));
    await attached(
      mode,
      "syscount",
      counts,
      /^Tracing syscalls, printing all\.\.\. Ctrl-C to quit\.$/,
    );
    const perProcess = start(app(mode, seg.name, SYSCOUNT, ["-p", p, "-P", "-L"]));
    await attached(mode, "syscount -P -L", perProcess, /^Tracing syscalls/);
    const snoop = start(app(mode, seg.name, OPENSNOOP, ["-p", p]));
    const failed = start(app(mode, seg.name, OPENSNOOP, ["-p", p, "-x"]));
    const header = /^PID +COMM +FLAGS +FD +ERR +PATH$/;
    await attached(mode, "opensnoop", snoop, header);
    await attached(mode, "opensnoop -x", failed, header);
    // Links reach the target's agent asynchronously: poke it until both opensnoops see it.
    const seen = (t: Running) => openEvents(t, pid).some((e) => e.path === SYNC_PATH);
    for (let i = 0; i < 100 && !(seen(snoop) && seen(failed)); i++) {
      Deno.kill(pid, "SIGUSR2");
      await sleep(100);
    }
    assert.ok(
      seen(snoop) && seen(failed),
      `${mode}: opensnoop never saw the target's openat of ${SYNC_PATH}` +
        (mode === "bpftime" ? " (does the agent run syscall tracepoint programs?)" : ""),
    );
    Deno.kill(pid, "SIGUSR1");
    const report: TargetReport = JSON.parse((await target.waitLine(/^\{"pid"/)).line);
    assert.equal((await target.finish()).code, 0, target.stderr);
    assert.equal(report.pid, pid);
    await snoop.waitLine(new RegExp(` ${LAST_PATH}$`), 10000);
    await failed.waitLine(new RegExp(` ${LAST_PATH}$`), 10000);
    for (const [name, tool] of [["syscount", counts], ["syscount -P -L", perProcess]] as const) {
      await stopTool(mode, name, tool);
    }
    await stopTool(mode, "opensnoop", snoop);
    await stopTool(mode, "opensnoop -x", failed);
    if (mode === "bpftime") assert.equal(seg.stats().objects, 0, "the tools removed their objects");
    const noSync = (e: OpenEvent) => e.path !== SYNC_PATH;
    return {
      target: report,
      events: openEvents(snoop, pid).filter(noSync),
      failed: openEvents(failed, pid).filter(noSync),
      counts: syscallCounts(counts),
      perProcess: processCounts(perProcess),
    };
  } finally {
    for (const r of running) {
      try {
        r.child.kill("SIGTERM"); // `bpftime load` and `start` pass it on to their child
      } catch { /* already gone */ }
      await r.finish();
    }
    seg.close();
    Segment.remove(seg.name);
  }
}

/** The events opensnoop must print for the target's script (fd -1 and the errno when it failed). */
function expectedEvents(report: TargetReport): OpenEvent[] {
  return report.opens.map((o) => ({
    comm: "open_target",
    flags: o.flags,
    fd: o.fd,
    errno: o.errno,
    path: o.path,
  }));
}

/** What the run shows against the target's own account. */
function checkRun(mode: Mode, run: ScriptedRun): void {
  const expected = expectedEvents(run.target);
  assert.ok(expected.some((e) => e.errno === 2) && expected.some((e) => e.errno === 13));
  assert.deepEqual(run.events, expected, `${mode}: opensnoop -p`);
  assert.deepEqual(run.failed, expected.filter((e) => e.fd < 0), `${mode}: opensnoop -x`);
  for (const name of ["getppid", "getpriority", "uname"]) {
    assert.equal(run.counts[name], run.target.calls[name], `${mode}: syscount ${name}`);
  }
  // openat: the script's, and the sync opens made once the tool was attached (all, on the kernel).
  const openat = run.counts.openat;
  if (mode === "kernel") assert.equal(openat, run.target.calls.openat + run.target.sync_opens);
  else {
    assert.ok(
      openat >= run.target.calls.openat &&
        openat <= run.target.calls.openat + run.target.sync_opens,
      `${mode}: syscount openat ${openat}`,
    );
  }
  const total = run.target.calls.getppid + run.target.calls.getpriority +
    run.target.calls.uname + run.target.calls.openat;
  const row = run.perProcess.get(run.target.pid);
  assert.ok(row, `${mode}: syscount -P has no row for ${run.target.pid}`);
  assert.equal(row.comm, "open_target");
  assert.ok(row.count > total, `${mode}: syscount -P counted ${row.count} of at least ${total}`);
  // -L: the target spent most of its life in usleep's calls, all after the tool attached.
  assert.ok(row.us > 1000, `${mode}: syscount -L: ${row.us} us in calls`);
  assert.deepEqual([...run.perProcess.keys()], [run.target.pid], `${mode}: syscount -P -p`);
}

/** Events with the fd replaced by whether it succeeded (fd numbers depend on what else is open). */
const comparable = (events: OpenEvent[]) => events.map((e) => ({ ...e, fd: e.fd >= 0 }));

Deno.test({
  name:
    "syscall examples: opensnoop and syscount on the kernel report the scripted target's opens and calls",
  ignore: !kernel.ok,
  fn: async () => {
    const run = await scriptedRun("kernel");
    checkRun("kernel", run);
    console.log(
      `kernel: ${run.events.length} opens, getppid ${run.counts.getppid}, openat ${run.counts.openat}`,
    );
  },
});

// Needs the agent to run syscall tracepoint programs in `bpftime start`ed processes (issue 13,
// item 1): until then it fails at the sync step (opensnoop sees nothing), or at syscount's
// attach (raw_syscalls tracepoints through the syscall server).
Deno.test({
  name:
    "syscall examples: opensnoop and syscount unchanged under bpftime load + start give the kernel's events",
  ignore: !kernel.ok,
  fn: async () => {
    const theirs = await scriptedRun("kernel");
    const ours = await scriptedRun("bpftime");
    checkRun("bpftime", ours);
    assert.deepEqual(comparable(ours.events), comparable(theirs.events), "opensnoop");
    assert.deepEqual(comparable(ours.failed), comparable(theirs.failed), "opensnoop -x");
    for (const name of ["getppid", "getpriority", "uname"]) {
      assert.equal(ours.counts[name], theirs.counts[name], `syscount ${name}`);
    }
  },
});
