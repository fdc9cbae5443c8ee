/**
 * bpftrace syscall tracepoint one-liners (tracepoint:syscalls:*, tracepoint:raw_syscalls:*) on
 * the scripted target tests/targets/open_target.c: run by bpftrace on the kernel, and by the same
 * bpftrace under `bpftime load` with the target under `bpftime start`; the output lines must agree.
 *
 * The kernel sees every process: the one-liners filter on the target's comm. What the kernel sees
 * and the agent cannot is the start of the process before the agent is loaded: execve and the
 * dynamic loader's work (its opens of ld.so.cache and libc, its mmaps and mprotects) run before
 * any constructor, the agent's among them. So counts are compared for the syscalls the target's
 * main makes a known number of times, and openat is compared less the opens the kernel saw before
 * main (the lines the kernel's printf one-liner prints before the target's first path).
 *
 * Root only (bpftrace on the kernel is the reference), with bpftrace installed.
 */
import assert from "node:assert/strict";
import { Segment } from "../ffi/shm.ts";
import { kernelBpfAvailable } from "../testing/kernel_bpf.ts";
import { BIN, bpftracePid, Running } from "./server_env.ts";
import { freshSegment, killQuietly, ROOT } from "./test_utils.ts";

const TARGET = `${ROOT}build/tests/open_target`;
const COMM = "open_target";

function skipReason(): string | null {
  const kernel = kernelBpfAvailable();
  if (!kernel.ok) return kernel.reason;
  const r = new Deno.Command("sh", { args: ["-c", "command -v bpftrace"] }).outputSync();
  if (r.code !== 0) return "bpftrace is not installed";
  try {
    Deno.statSync("/sys/kernel/tracing/events/raw_syscalls");
  } catch {
    return "tracefs is not mounted at /sys/kernel/tracing (bpftrace reads the tracepoints' formats there)";
  }
  return null;
}

const skip = skipReason();
if (skip) console.log(`skip: bpftrace tracepoint tests: ${skip}`);

type Mode = "kernel" | "bpftime";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface TargetReport {
  pid: number;
  opens: { path: string; flags: number; fd: number; errno: number }[];
  calls: Record<string, number>;
}

interface Run {
  /** bpftrace's stdout lines after "Attaching N probes...". */
  lines: string[];
  stderr: string;
  target: TargetReport;
}

/**
 * Runs `script` with bpftrace on `mode`, then the target (under `bpftime start` for bpftime) once
 * attached; when the target is done and `until` matches bpftrace's output (if given), interrupts
 * bpftrace, which prints its maps and exits.
 */
async function oneLiner(
  mode: Mode,
  script: string,
  until?: RegExp,
  expectedComplaints: RegExp[] = [],
): Promise<Run> {
  const seg = freshSegment(`t_bt_tp_${mode}`, 32);
  // bpftrace's perf buffers must have the 16 pages bpftime's perf rings have (printf).
  const env = { BPFTRACE_PERF_RB_PAGES: "16", BPFTIME_GLOBAL_SHM_NAME: seg.name };
  const tracer = mode === "kernel"
    ? new Running("bpftrace", ["-e", script], env)
    : new Running(BIN, ["load", "bpftrace", "-e", script], env);
  try {
    await tracer.waitLine(/^Attaching \d+ probes?\.\.\.$/);
    // bpftrace prints that line before it attaches: attached is when its fds (one perf event per
    // probe) stop growing for a second; under bpftime, with the links in the segment (a target
    // started later installs them from its agent's constructor).
    const bt = bpftracePid(tracer);
    const fds = () => [...Deno.readDirSync(`/proc/${bt}/fd`)].length;
    for (let last = -1, same = 0, i = 0; same < 10; i++) {
      if (i > 600) throw new Error(`bpftrace did not finish attaching; stderr:\n${tracer.stderr}`);
      await sleep(100);
      const n = fds();
      same = n === last ? same + 1 : 0;
      last = n;
    }
    if (mode === "bpftime") {
      assert.ok(seg.objects().some((o) => o.kind === "link"), `no link; stderr:\n${tracer.stderr}`);
    }
    const target = mode === "kernel"
      ? new Running(TARGET, [])
      : new Running(BIN, ["start", TARGET], { BPFTIME_GLOBAL_SHM_NAME: seg.name });
    const pid = Number((await target.waitLine(/^ready \d+$/)).line.split(" ")[1]);
    Deno.kill(pid, "SIGUSR1");
    const report = JSON.parse((await target.waitLine(/^\{"pid"/)).line) as TargetReport;
    assert.equal((await target.finish()).code, 0, target.stderr);
    if (until) await tracer.waitLine(until, 10000);
    await sleep(300); // what the probes wrote last reaches the maps' readers
    // SIGINT until it exits: once in a while the first one is not acted on (seen with bpftime
    // load, bpftrace polling on in epoll_wait with the signal caught), and a test must not hang.
    const exited = tracer.finish();
    for (let i = 0; i < 15; i++) {
      try {
        Deno.kill(bt, "SIGINT");
      } catch { /* exited */ }
      if (await Promise.race([exited.then(() => true), sleep(2000).then(() => false)])) break;
    }
    const status = await exited;
    assert.equal(status.code, 0, `${mode}: bpftrace exit status; stderr:\n${tracer.stderr}`);
    const at = tracer.lines.findIndex((l) => /^Attaching \d+ probes?\.\.\.$/.test(l));
    if (mode === "bpftime") {
      // The server's complaints: only bpftrace's probe for kprobe_multi links, which the kernel
      // refuses here too (EOPNOTSUPP there, EINVAL here: bpftrace only asks whether it works),
      // and those the caller expects.
      const known = [/BPF_LINK_CREATE: attach type 42 /, ...expectedComplaints];
      const complaints = tracer.stderr.split("\n").filter((l) =>
        l.startsWith("bpftime-server:") && !known.some((re) => re.test(l))
      );
      assert.deepEqual(complaints, [], tracer.stderr);
      assert.equal(seg.stats().objects, 0, "bpftrace's objects are gone from the segment");
    }
    return { lines: tracer.lines.slice(at + 1), stderr: tracer.stderr, target: report };
  } finally {
    killQuietly(tracer.child);
    await tracer.finish();
    seg.close();
    Segment.remove(seg.name);
  }
}

/** `@[KEY]: N` lines (and `@: N`) as a record. */
function counts(lines: string[], name = "@"): Record<string, number> {
  const out: Record<string, number> = {};
  for (const l of lines) {
    const m = /^(@\w*)(?:\[(.*)\])?: (\d+)$/.exec(l);
    if (m && m[1] === name) out[m[2] ?? ""] = Number(m[3]);
  }
  return out;
}

/** A hist map's buckets, in order: [label, count]. */
function hist(lines: string[], name: string): [string, number][] {
  const at = lines.findIndex((l) => l.trim() === `${name}:`);
  assert.ok(at >= 0, `no ${name} in\n${lines.join("\n")}`);
  const out: [string, number][] = [];
  for (const l of lines.slice(at + 1)) {
    const m = /^([(\[].*?[)\]])\s+(\d+) \|[@ ]*\|$/.exec(l);
    if (!m) break;
    out.push([m[1], Number(m[2])]);
  }
  return out;
}

/** The label of bpftrace's power-of-2 hist bucket for v. */
function bucket(v: number): string {
  if (v < 0) return "(..., 0)";
  if (v < 2) return `[${v}]`;
  let lo = 1;
  while (lo * 2 <= v) lo *= 2;
  const fmt = (n: number) =>
    n >= 1024 ** 2 ? `${n / 1024 ** 2}M` : n >= 1024 ? `${n / 1024}K` : String(n);
  return `[${fmt(lo)}, ${fmt(lo * 2)})`;
}

const OPEN_PRINTF = `tracepoint:syscalls:sys_enter_openat /comm == "${COMM}"/ ` +
  '{ printf("%s %d\\n", str(args->filename), args->flags); }';

/** The scripted opens as the printf one-liner prints them. */
function expectedOpenLines(t: TargetReport): string[] {
  return t.opens.map((o) => `${o.path} ${o.flags}`);
}

/** The kernel's printf run, once: its lines before the target's first path are the opens of
 * the process's start (the dynamic loader's), which no agent can see. */
let kernelOpens: Promise<{ run: Run; startup: string[] }> | undefined;
function kernelOpenRun(): Promise<{ run: Run; startup: string[] }> {
  kernelOpens ??= (async () => {
    const run = await oneLiner("kernel", OPEN_PRINTF, /^\/etc\/open_target_missing \d+$/);
    const printed = run.lines.filter((l) => / -?\d+$/.test(l));
    const first = printed.indexOf(expectedOpenLines(run.target)[0]);
    assert.ok(first >= 0, printed.join("\n"));
    return { run, startup: printed.slice(0, first) };
  })();
  return kernelOpens;
}

Deno.test({
  name:
    "bpftrace: raw_syscalls:sys_enter count per syscall id agrees with the kernel (getppid, getpriority, uname, openat)",
  ignore: skip !== null,
  async fn() {
    const script =
      `tracepoint:raw_syscalls:sys_enter /comm == "${COMM}"/ { @[args->id] = count(); }`;
    const { startup } = await kernelOpenRun();
    const k = await oneLiner("kernel", script);
    const b = await oneLiner("bpftime", script);
    const kc = counts(k.lines), bc = counts(b.lines);
    console.log(`kernel: ${JSON.stringify(kc)}\nbpftime: ${JSON.stringify(bc)}`);
    // The calls main makes a known number of times, and nothing else does.
    const fixed = { getppid: 110, getpriority: 140, uname: 63 };
    for (const [name, nr] of Object.entries(fixed)) {
      assert.equal(kc[nr], k.target.calls[name], `kernel: ${name}`);
      assert.equal(bc[nr], kc[nr], `bpftime: ${name} (${nr})`);
    }
    // openat: main's 7, and on the kernel the dynamic loader's before main.
    assert.equal(
      kc[257],
      k.target.calls.openat + startup.length,
      `kernel openat; startup ${startup}`,
    );
    assert.equal(bc[257], b.target.calls.openat, "bpftime openat");
    // Not compared: the process's start (execve, the loader's mmap/mprotect/openat/read/close...,
    // before the agent is loaded) and clock_nanosleep (main polls for SIGUSR1 with usleep: as
    // many calls as the wait took).
  },
});

Deno.test({
  name:
    "bpftrace: syscalls:sys_enter_openat printf of str(args->filename) and args->flags agrees with the kernel",
  ignore: skip !== null,
  async fn() {
    const { run: k, startup } = await kernelOpenRun();
    const b = await oneLiner("bpftime", OPEN_PRINTF, /^\/etc\/open_target_missing \d+$/);
    const printed = (r: Run) => r.lines.filter((l) => l !== "");
    console.log(`kernel:\n${printed(k).join("\n")}\nbpftime:\n${printed(b).join("\n")}`);
    const want = expectedOpenLines(b.target);
    assert.deepEqual(expectedOpenLines(k.target), want);
    // Each CPU has its own perf ring, read in turn: lines from two CPUs may interleave.
    assert.deepEqual([...printed(k)].sort(), [...startup, ...want].sort(), "kernel");
    assert.deepEqual([...printed(b)].sort(), [...want].sort(), "bpftime");
    console.log(`the kernel's opens before main (not seen by an agent): ${startup.join(", ")}`);
  },
});

Deno.test({
  name:
    "bpftrace: syscalls:sys_exit_openat hist(args->ret) agrees with the kernel (errno buckets exactly)",
  ignore: skip !== null,
  async fn() {
    const script =
      `tracepoint:syscalls:sys_exit_openat /comm == "${COMM}"/ { @ret = hist(args->ret); }`;
    const { startup } = await kernelOpenRun();
    const k = await oneLiner("kernel", script);
    const b = await oneLiner("bpftime", script);
    const kh = hist(k.lines, "@ret"), bh = hist(b.lines, "@ret");
    console.log(`kernel: ${JSON.stringify(kh)}\nbpftime: ${JSON.stringify(bh)}`);
    const negative = (h: [string, number][]) => h.filter(([l]) => l === "(..., 0)");
    const nonNegative = (h: [string, number][]) =>
      h.filter(([l]) => l !== "(..., 0)").reduce((n, [, c]) => n + c, 0);
    // The failed opens (all of them main's: a failure at start would show as a kernel excess).
    const failures = b.target.opens.filter((o) => o.fd < 0).length;
    assert.deepEqual(negative(bh), negative(kh));
    assert.deepEqual(negative(bh), [["(..., 0)", failures]]);
    // The fds: under bpftime, the buckets of the fds the target says it got (the agent may hold
    // fds of its own, which would move them); on the kernel, the same number plus the loader's.
    const want = new Map<string, number>();
    for (const o of b.target.opens) {
      if (o.fd >= 0) want.set(bucket(o.fd), (want.get(bucket(o.fd)) ?? 0) + 1);
    }
    for (const [label, n] of bh) {
      if (label !== "(..., 0)") assert.equal(n, want.get(label) ?? 0, `bpftime bucket ${label}`);
    }
    assert.equal(nonNegative(bh), b.target.opens.length - failures);
    assert.equal(nonNegative(kh), nonNegative(bh) + startup.length, `kernel; startup ${startup}`);
  },
});

Deno.test({
  name: "bpftrace: syscalls:sys_enter_getppid count agrees with the kernel",
  ignore: skip !== null,
  async fn() {
    const script = `tracepoint:syscalls:sys_enter_getppid /comm == "${COMM}"/ { @ = count(); }`;
    const k = await oneLiner("kernel", script);
    const b = await oneLiner("bpftime", script);
    assert.deepEqual(counts(k.lines), { "": k.target.calls.getppid });
    assert.deepEqual(counts(b.lines), counts(k.lines));
  },
});

Deno.test({
  name:
    "bpftrace: BEGIN and END (run with BPF_PROG_TEST_RUN) around a raw_syscalls:sys_exit hist of args->ret agree with the kernel",
  ignore: skip !== null,
  async fn() {
    // getpriority's raw return is 20 - nice (libc turns it into the nice value): 200 times 20.
    const script = 'BEGIN { printf("begin\\n"); } ' +
      `tracepoint:raw_syscalls:sys_exit /comm == "${COMM}" && args->id == 140/ ` +
      '{ @ret = hist(args->ret); } END { printf("end\\n"); }';
    const k = await oneLiner("kernel", script);
    const b = await oneLiner("bpftime", script);
    console.log(`kernel:\n${k.lines.join("\n")}\nbpftime:\n${b.lines.join("\n")}`);
    for (const [mode, r] of [["kernel", k], ["bpftime", b]] as const) {
      assert.equal(r.lines[0], "begin", mode);
      assert.equal(r.lines.filter((l) => l === "end").length, 1, mode);
      assert.ok(r.lines.indexOf("end") < r.lines.findIndex((l) => l.startsWith("@ret:")), mode);
    }
    assert.deepEqual(hist(k.lines, "@ret"), [["[16, 32)", k.target.calls.getpriority]]);
    assert.deepEqual(hist(b.lines, "@ret"), hist(k.lines, "@ret"));
  },
});

Deno.test({
  name:
    "bpftrace: a tracepoint:syscalls:sys_enter_* wildcard (360 probes) counts per probe as the kernel does",
  ignore: skip !== null,
  async fn() {
    const script = `tracepoint:syscalls:sys_enter_* /comm == "${COMM}"/ { @[probe] = count(); }`;
    // Syscalls newer than this build's asm/unistd_64.h (the kernel has tracepoints for them) are
    // refused by name; bpftrace warns and attaches the rest.
    const refused =
      /perf_event_open: unknown tracepoint 'syscalls\/sys_enter_\w+': no syscall '\w+' in this build's table/;
    const { startup } = await kernelOpenRun();
    const k = await oneLiner("kernel", script);
    const b = await oneLiner("bpftime", script, undefined, [refused]);
    const kc = counts(k.lines), bc = counts(b.lines);
    console.log(`kernel: ${JSON.stringify(kc)}\nbpftime: ${JSON.stringify(bc)}`);
    const tp = (name: string) => `tracepoint:syscalls:sys_enter_${name}`;
    for (
      const [name, calls] of [["getppid", "getppid"], ["getpriority", "getpriority"], [
        "newuname",
        "uname",
      ]]
    ) {
      assert.equal(kc[tp(name)], k.target.calls[calls], `kernel: ${name}`);
      assert.equal(bc[tp(name)], kc[tp(name)], `bpftime: ${name}`);
    }
    assert.equal(kc[tp("openat")], k.target.calls.openat + startup.length, "kernel openat");
    assert.equal(bc[tp("openat")], b.target.calls.openat, "bpftime openat");
    const names = b.stderr.split("\n").filter((l) => refused.test(l));
    console.log(`refused by the server (not in this build's syscall table): ${names.length}`);
  },
});
