/**
 * `bpftime daemon` (issue 16): unmodified libbpf tools, run as root, get their uprobe programs
 * run in userspace in processes under the agent, reading the results from their own kernel
 * maps; the kernel program does not run for those processes. Needs root and the kernel (skips
 * otherwise). Kernel uprobes are on our own test binary where we can; the seeds' walk-through
 * (the malloc app on libc's malloc) is machine-wide and kept to a few seconds.
 */
import assert from "node:assert/strict";
import { BpfObject, Segment } from "../mod.ts";
import { possibleCpus } from "../api/possible_cpus.ts";
import { KernelMap } from "../testing/kernel_bpf.ts";
import { asNobody, nobodyCanRun, ROOT } from "./test_utils.ts";

const DAEMON = `${ROOT}build/bpftime-daemon`;
const TOOL = `${ROOT}build/tests/daemon_tool`;
const PROBES = `${ROOT}build/tests/probe_counts.bpf.o`;
const GLOBALS = `${ROOT}build/tests/daemon_globals.bpf.o`;
const TARGET = `${ROOT}build/tests/probe_target`;
const AGENT = `${ROOT}build/libbpftime-agent.so`;
const MALLOC_APP = `${ROOT}build/examples/malloc`;
const VICTIM = `${ROOT}build/examples/malloc_victim`;
const EVENTS_TOOL = `${ROOT}build/tests/daemon_events`;
const EVENTS = `${ROOT}build/tests/daemon_events.bpf.o`;
let serial = 0;
const segName = () => `daemon_test_${Deno.pid}_${serial++}`;

function skipReason(): string | undefined {
  if (Deno.uid() !== 0) return "needs root (it loads kernel eBPF programs)";
  for (
    const f of [
      DAEMON,
      TOOL,
      PROBES,
      GLOBALS,
      TARGET,
      AGENT,
      MALLOC_APP,
      VICTIM,
      EVENTS_TOOL,
      EVENTS,
    ]
  ) {
    try {
      Deno.statSync(f);
    } catch {
      return `${f} is not built (make build test-targets examples)`;
    }
  }
  try {
    Deno.statSync("/sys/kernel/btf/vmlinux");
    Deno.statSync("/sys/bus/event_source/devices/uprobe/type");
  } catch {
    return "no kernel BTF or uprobe PMU";
  }
  return undefined;
}

/** Lines of a child's stream, as they come, with waits for a matching one. */
class Lines {
  lines: string[] = [];
  #waiters: { re: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];
  done: Promise<void>;
  constructor(stream: ReadableStream<Uint8Array>) {
    this.done = (async () => {
      let rest = "";
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        rest += chunk;
        const parts = rest.split("\n");
        rest = parts.pop()!;
        for (const l of parts) this.#add(l);
      }
      if (rest) this.#add(rest);
    })();
  }
  #add(l: string) {
    this.lines.push(l);
    this.#waiters = this.#waiters.filter((w) => {
      const m = l.match(w.re);
      if (m) w.resolve(m);
      return !m;
    });
  }
  /** The first line (already seen or to come) matching `re`; fails after `ms`. */
  wait(re: RegExp, ms = 10000, from = 0): Promise<RegExpMatchArray> {
    for (const l of this.lines.slice(from)) {
      const m = l.match(re);
      if (m) return Promise.resolve(m);
    }
    return new Promise((resolve, reject) => {
      const w = { re, resolve: (m: RegExpMatchArray) => (clearTimeout(t), resolve(m)) };
      const t = setTimeout(() => {
        this.#waiters = this.#waiters.filter((x) => x !== w);
        reject(new Error(`no line matching ${re} in ${ms} ms:\n${this.lines.join("\n")}`));
      }, ms);
      this.#waiters.push(w);
    });
  }
  text(): string {
    return this.lines.join("\n");
  }
}

interface Proc {
  child: Deno.ChildProcess;
  out: Lines;
  err: Lines;
  stdin?: WritableStreamDefaultWriter<Uint8Array>;
}

function spawn(cmd: string, args: string[], env: Record<string, string> = {}, stdin = false): Proc {
  const child = new Deno.Command(cmd, {
    args,
    env,
    stdin: stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  return {
    child,
    out: new Lines(child.stdout),
    err: new Lines(child.stderr),
    stdin: stdin ? child.stdin.getWriter() : undefined,
  };
}

/**
 * A tool whose pid is known before it runs: a shell that waits for a line on stdin, then execs
 * the tool (same pid), so the daemon can be told `-p PID` first. `release()` lets it go.
 */
function gatedTool(cmd: string, args: string[]): Proc & { release: () => Promise<void> } {
  const p = spawn("sh", ["-c", 'read _ && exec "$@"', "sh", cmd, ...args], {}, true);
  return { ...p, release: () => send(p, "go\n") };
}

async function send(p: Proc, text: string): Promise<void> {
  await p.stdin!.write(new TextEncoder().encode(text));
}

async function stop(p: Proc, sig: Deno.Signal = "SIGTERM"): Promise<Deno.CommandStatus> {
  try {
    p.child.kill(sig);
  } catch { /* gone already */ }
  const status = await p.child.status;
  await Promise.all([p.out.done, p.err.done]);
  return status;
}

async function startDaemon(segment: string, pid: number, extra: string[] = []): Promise<Proc> {
  const d = spawn(DAEMON, ["-p", String(pid), ...extra], { BPFTIME_GLOBAL_SHM_NAME: segment });
  await d.err.wait(/bpftime daemon: running/);
  return d;
}

/** Waits (10 s at most) until the daemon has said `n` programs run in userspace. */
async function redirected(daemon: Proc, n: number): Promise<void> {
  for (let waited = 0; daemon.err.lines.filter((l) => /runs in userspace/.test(l)).length < n;) {
    assert.ok((waited += 50) < 10000, daemon.err.text());
    await new Promise((r) => setTimeout(r, 50));
  }
}

function readStats(): string {
  return Deno.readTextFileSync("/proc/sys/kernel/bpf_stats_enabled").trim();
}

/** Runs probe_target `add N 1`, under the agent when `segment` is given. */
async function runTarget(n: number, segment?: string, nobody = false, threads = 1): Promise<void> {
  const env: Record<string, string> = segment
    ? { BPFTIME_GLOBAL_SHM_NAME: segment, LD_PRELOAD: AGENT, BPFTIME_SHM_GROUP: "nogroup" }
    : {};
  const args = [TARGET, "add", String(n), String(threads)];
  const out = nobody ? await asNobody(args, env).output() : await new Deno.Command(args[0], {
    args: args.slice(1),
    env,
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const dec = new TextDecoder();
  assert.equal(out.code, 0, dec.decode(out.stdout) + dec.decode(out.stderr));
  assert.match(dec.decode(out.stdout), new RegExp(`"per_thread":${n}`));
}

/** What the tool reads now: by_cookie[0].calls and its kernel program's run_cnt. */
async function toolResult(tool: Proc, quit = true): Promise<{ calls: number; runCnt: number }> {
  const from = tool.out.lines.length;
  await send(tool, quit ? "q\n" : "\n");
  const m = await tool.out.wait(/calls=(\d+) run_cnt=(\d+)/, 10000, from);
  if (quit) assert.equal((await tool.child.status).code, 0, tool.err.text());
  return { calls: Number(m[1]), runCnt: Number(m[2]) };
}

function segmentObjects(name: string): { kind: string; name: string }[] {
  const seg = Segment.open(name);
  try {
    return seg.objects().map((o) => ({ kind: o.kind, name: o.name }));
  } finally {
    seg.close();
  }
}

function removeSegment(name: string) {
  try {
    Segment.remove(name);
  } catch { /* never made */ }
}

/**
 * A daemon test: skipped (saying why) when it cannot run here, or when `nobody` is asked for and
 * user nobody cannot run the checkout's binaries; the kernel's run counts on while it runs (they
 * show whether a kernel program ran); its segment removed afterwards.
 */
function daemonTest(
  name: string,
  body: (segment: string) => Promise<void>,
  opts: { nobody?: boolean } = {},
) {
  Deno.test({ name, sanitizeResources: false, sanitizeOps: false }, async () => {
    const why = skipReason();
    if (why) return console.log(`skipped: ${why}`);
    if (opts.nobody && (!(await nobodyCanRun(TARGET)) || !(await nobodyCanRun(AGENT)))) {
      return console.log("skipped: user nobody cannot run the checkout's target and agent");
    }
    const stats = readStats();
    Deno.writeTextFileSync("/proc/sys/kernel/bpf_stats_enabled", "1");
    const segment = segName();
    try {
      await body(segment);
    } finally {
      Deno.writeTextFileSync("/proc/sys/kernel/bpf_stats_enabled", stats);
      removeSegment(segment);
    }
  });
}

const TOOL_ARGS = [PROBES, TARGET, "add"];

daemonTest(
  "daemon: a libbpf tool's uprobe runs in userspace, its kernel program never does",
  async (segment) => {
    // The kernel's answer: the tool alone.
    const alone = gatedTool(TOOL, TOOL_ARGS);
    await alone.release();
    await alone.out.wait(/^attached/);
    await runTarget(1000);
    assert.deepEqual(await toolResult(alone), { calls: 1000, runCnt: 1000 });

    // With the daemon: the same counts in the tool's map, and the kernel program never runs.
    const tool = gatedTool(TOOL, TOOL_ARGS);
    const daemon = await startDaemon(segment, tool.child.pid, ["-v"]);
    try {
      await tool.release();
      await tool.out.wait(/^attached/);
      await daemon.err.wait(/runs in userspace/);
      await runTarget(1000, segment);
      assert.deepEqual(await toolResult(tool), { calls: 1000, runCnt: 0 });
      // The tool's exit took its link, program and maps away.
      await daemon.err.wait(/exit; its userspace links go/);
      assert.deepEqual(segmentObjects(segment), []);
    } finally {
      const status = await stop(daemon, "SIGINT");
      assert.equal(status.code, 0, daemon.err.text());
      assert.match(daemon.err.text(), /stopped/);
    }
    // The segment it made, empty again, went with it.
    assert.throws(() => Deno.statSync(`/dev/shm/${segment}`), Deno.errors.NotFound);
  },
);

/** The victim's count at each of the malloc app's prints (it prints every pid every second). */
function victimCounts(app: Lines, pid: number): number[] {
  const counts: number[] = [];
  let current: number | undefined;
  let started = false;
  for (const l of app.lines) {
    if (/^\d\d:\d\d:\d\d/.test(l)) {
      if (started) counts.push(current ?? 0);
      started = true;
      current = undefined;
      continue;
    }
    const m = l.match(/pid=(\d+)\s+malloc calls: (\d+)/);
    if (m && Number(m[1]) === pid) current = Number(m[2]);
  }
  if (started) counts.push(current ?? 0);
  return counts.filter((c) => c > 0);
}

/** Increments between consecutive prints, of the last `n` intervals. */
function lastSteps(counts: number[], n: number): number[] {
  const steps = counts.slice(1).map((c, i) => c - counts[i]);
  return steps.slice(-n);
}

daemonTest(
  "daemon: the seeds' walk-through (malloc app, `bpftime daemon`, `bpftime start` victim)",
  async (segment) => {
    // The kernel run: the app's uprobe on libc's malloc counts the victim (machine-wide: short).
    const app = spawn(MALLOC_APP, ["-d", "4"]);
    await app.out.wait(/^\d\d:\d\d:\d\d/);
    const plain = spawn(VICTIM, []);
    await app.child.status;
    await stop(plain);
    await stop(app);
    const kernel = victimCounts(app.out, plain.child.pid);

    // The daemon run: the same unmodified app; the victim under `bpftime start`.
    const tool = gatedTool(MALLOC_APP, ["-d", "5"]);
    const env = { BPFTIME_GLOBAL_SHM_NAME: segment };
    const daemon = spawn(`${ROOT}bin/bpftime`, ["daemon", "-p", String(tool.child.pid), "-v"], env);
    try {
      await daemon.err.wait(/bpftime daemon: running/, 30000);
      await tool.release();
      await daemon.err.wait(/uprobe 'do_count' on .*libc.* runs in userspace/);
      const started = spawn(`${ROOT}bin/bpftime`, ["start", VICTIM], {
        ...env,
        BPFTIME_AGENT_LOG: "1",
      });
      // The agent names its process; it took the kernel uprobe's breakpoint over.
      const taken = await started.err.wait(
        /bpftime-agent\[(\d+)\]: .*breakpoint at 0x[0-9a-f]+ is removed here/,
        20000,
      );
      const victim = Number(taken[1]);
      await tool.child.status;
      try {
        Deno.kill(victim, "SIGTERM");
      } catch (e) {
        await stop(started);
        throw new Error(`the victim is gone: ${e}\n${started.out.text()}\n${started.err.text()}`);
      }
      await stop(started);
      await stop(tool);
      const ours = victimCounts(tool.out, victim);
      console.log(`victim's counts, kernel uprobe: ${kernel}; through the daemon: ${ours}`);
      // One malloc per loop of the victim, one loop a second: the same steps as on the kernel.
      const k = lastSteps(kernel, 2), o = lastSteps(ours, 2);
      assert.ok(k.length === 2 && o.length === 2, `kernel ${kernel}, ours ${ours}`);
      const sum = (a: number[]) => a.reduce((x, y) => x + y, 0);
      assert.ok(sum(k) >= 1 && sum(k) <= 3, `kernel steps ${k} (${kernel})`);
      assert.ok(sum(o) >= 1 && sum(o) <= 3, `our steps ${o} (${ours})`);
      assert.ok(Math.abs(sum(k) - sum(o)) <= 1, `kernel ${k} vs ours ${o}`);
    } finally {
      const status = await stop(daemon, "SIGINT");
      assert.equal(status.code, 0, daemon.err.text());
    }
  },
);

daemonTest(
  "daemon: lifecycle (tools loaded before it, a second daemon, tools that outlive it)",
  async (segment) => {
    // A tool attached before the daemon started is left to the kernel, even when watched.
    const early = gatedTool(TOOL, TOOL_ARGS);
    await early.release();
    await early.out.wait(/^attached/);
    let daemon = await startDaemon(segment, early.child.pid, ["-v"]);
    try {
      await runTarget(300, segment);
      assert.deepEqual(await toolResult(early), { calls: 300, runCnt: 300 });
      assert.deepEqual(segmentObjects(segment), []);
      // A second daemon refuses, and says why.
      const second = await new Deno.Command(DAEMON, { stdout: "piped", stderr: "piped" }).output();
      assert.equal(second.code, 1);
      assert.match(new TextDecoder().decode(second.stderr), /another bpftime daemon is running/);
    } finally {
      assert.equal((await stop(daemon, "SIGTERM")).code, 0, daemon.err.text());
    }

    // A tool that outlives the daemon: the daemon's links, programs and maps go with it; a
    // process whose agent had taken the breakpoint over is counted by nobody from then on;
    // processes started afterwards are counted by the kernel again.
    const tool = gatedTool(TOOL, TOOL_ARGS);
    daemon = await startDaemon(segment, tool.child.pid);
    await tool.release();
    await daemon.err.wait(/runs in userspace/);
    await runTarget(200, segment);
    assert.deepEqual(await toolResult(tool, false), { calls: 200, runCnt: 0 });
    assert.equal(segmentObjects(segment).filter((o) => o.kind === "link").length, 1);
    assert.equal((await stop(daemon, "SIGTERM")).code, 0, daemon.err.text());
    assert.match(daemon.err.text(), /stopped/);
    // Its objects gone, the segment it made went too.
    assert.throws(() => Deno.statSync(`/dev/shm/${segment}`), Deno.errors.NotFound);
    await runTarget(100);
    assert.deepEqual(await toolResult(tool), { calls: 300, runCnt: 100 });

    // A segment that was there before the daemon is left in place.
    Segment.open(segment, { create: true, sizeMb: 4 }).close();
    daemon = await startDaemon(segment, tool.child.pid);
    assert.equal((await stop(daemon, "SIGINT")).code, 0, daemon.err.text());
    assert.ok(Deno.statSync(`/dev/shm/${segment}`).isFile);
  },
);

daemonTest(
  "daemon: an unprivileged traced process gets the kernel map's fd from the daemon",
  async (segment) => {
    const tool = gatedTool(TOOL, TOOL_ARGS);
    const daemon = spawn(DAEMON, ["-p", String(tool.child.pid), "-v"], {
      BPFTIME_GLOBAL_SHM_NAME: segment,
      BPFTIME_SHM_GROUP: "nogroup",
    });
    try {
      await daemon.err.wait(/bpftime daemon: running/);
      await tool.release();
      await daemon.err.wait(/runs in userspace/);
      await runTarget(250, segment, true);
      assert.deepEqual(await toolResult(tool), { calls: 250, runCnt: 0 });
      // nobody may not BPF_MAP_GET_FD_BY_ID: the fds came over the daemon's socket.
      assert.match(daemon.err.text(), /fd request from pid \d+ for kernel map \d+: sent/);
    } finally {
      assert.equal((await stop(daemon, "SIGINT")).code, 0, daemon.err.text());
      await stop(tool);
    }
  },
  { nobody: true },
);

daemonTest(
  "daemon: .bss and .rodata (mmapable kernel arrays) are the kernel's own memory in the target",
  async (segment) => {
    const args = [GLOBALS, TARGET, "add"];
    const alone = gatedTool(TOOL, args);
    await alone.release();
    await alone.out.wait(/^attached/);
    await runTarget(400);
    const from = alone.out.lines.length;
    await send(alone, "q\n");
    assert.match(
      (await alone.out.wait(/calls=/, 10000, from)).input!,
      /calls=400 run_cnt=400 bss=1200/,
    );

    const tool = gatedTool(TOOL, args);
    const daemon = await startDaemon(segment, tool.child.pid);
    try {
      await tool.release();
      await daemon.err.wait(/runs in userspace/);
      await runTarget(400, segment);
      const at = tool.out.lines.length;
      await send(tool, "q\n");
      // step (3, from .rodata) added to hits (.bss) in the kernel map's memory: 400 * 3.
      assert.match(
        (await tool.out.wait(/calls=/, 10000, at)).input!,
        /calls=400 run_cnt=0 bss=1200/,
      );
    } finally {
      assert.equal((await stop(daemon, "SIGINT")).code, 0, daemon.err.text());
    }
  },
);

daemonTest(
  "daemon: the agent takes the kernel's breakpoint over while threads call the function; kill -9",
  async (segment) => {
    const tool = gatedTool(TOOL, TOOL_ARGS);
    const daemon = await startDaemon(segment, tool.child.pid);
    const env = { BPFTIME_GLOBAL_SHM_NAME: segment, LD_PRELOAD: AGENT, BPFTIME_AGENT_LOG: "1" };
    try {
      // Three threads calling add() before the tool attaches: the kernel's int3 lands in a running
      // process, which the agent then takes over while the threads keep calling.
      const busy = spawn(TARGET, ["loop", "4", "3"], env);
      const doomed = spawn(TARGET, ["loop", "30", "1"], env);
      await busy.out.wait(/ready/);
      await doomed.out.wait(/ready/);
      await tool.release();
      await tool.out.wait(/^attached/);
      await daemon.err.wait(/runs in userspace/);
      for (const p of [busy, doomed]) {
        await p.err.wait(/breakpoint at 0x[0-9a-f]+ is removed here/);
        await p.err.wait(/link \d+: uprobe .* at 0x[0-9a-f]+/, 10000);
      }
      doomed.child.kill("SIGKILL");
      await stop(doomed);
      const status = await busy.child.status;
      await Promise.all([busy.out.done, busy.err.done]);
      assert.equal(status.code, 0, busy.out.text() + busy.err.text());
      const total = Number(busy.out.text().match(/"calls":(\d+)/)![1]);
      const mid = await toolResult(tool, false);
      // The kernel counted until the agent took over (a few hits, or none: it is quick), the
      // userspace copy after (its read-modify-writes through the kernel map may lose some between
      // threads, never add any).
      assert.ok(
        mid.calls > mid.runCnt && mid.calls <= total + mid.runCnt + 1000,
        JSON.stringify(mid),
      );
      // A process started now is counted exactly, in userspace only.
      await runTarget(100, segment);
      const end = await toolResult(tool);
      assert.deepEqual(end, { calls: mid.calls + 100, runCnt: mid.runCnt });
      console.log(
        `busy target: ${total} calls; tool saw ${mid.calls} (${mid.runCnt} in the kernel)`,
      );
    } finally {
      assert.equal((await stop(daemon, "SIGINT")).code, 0, daemon.err.text());
    }
  },
);

daemonTest(
  "kernel maps: the TypeScript loader declares a map fronting a kernel map, shared both ways",
  async (segment) => {
    const kmap = KernelMap.create(1, 4, 8, 4096); // by_tid's shape: hash, u32 -> u64
    const seg = Segment.open(segment, { create: true, sizeMb: 8 });
    const obj = BpfObject.open(PROBES, { kernelMaps: { by_tid: kmap.id() } });
    const u32 = (n: number) => {
      const b = new Uint8Array(4);
      new DataView(b.buffer).setUint32(0, n, true);
      return b;
    };
    const u64 = (n: bigint) => new Uint8Array(new BigUint64Array([n]).buffer);
    try {
      obj.load(seg);
      // What the kernel side writes, the segment map reads.
      kmap.update(u32(1), u64(77n), 0n);
      assert.deepEqual(obj.map("by_tid").lookup(u32(1)), u64(77n));
      assert.throws(
        () => BpfObject.open(PROBES, { kernelMaps: { by_cookie: kmap.id() } }).load(seg),
        /does not match the object's/,
      );
      // What the userspace program writes in a traced process (a new key: the update helper, then
      // a lookup and a store through the pointer), the kernel map holds.
      const link = obj.program("count_by_tid").attachUprobe({ path: TARGET, func: "add" });
      const out = await new Deno.Command(TARGET, {
        args: ["add", "500", "1"],
        env: { BPFTIME_GLOBAL_SHM_NAME: seg.name, LD_PRELOAD: AGENT },
        stdout: "piped",
      }).output();
      link.destroy();
      const tid =
        JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").pop()!).tids[0];
      const value = new Uint8Array(8);
      assert.equal(kmap.lookup(u32(tid), value), 0);
      assert.deepEqual(value, u64(500n));
    } finally {
      obj.close();
      seg.close();
      kmap.close();
    }
  },
);

/** What daemon_events received once told to quit. */
async function eventsResult(tool: Proc, pid?: number): Promise<string> {
  const from = tool.out.lines.length;
  await send(tool, pid === undefined ? "q\n" : `q ${pid}\n`);
  const m = await tool.out.wait(/^ring=/, 10000, from);
  assert.equal((await tool.child.status).code, 0, tool.err.text());
  return m.input!;
}

/**
 * A libbpf tool reading a ring buffer (ringbuf_output, reserve/submit/discard) and a perf buffer
 * fed by uprobe programs: the same events whether the programs run in the kernel or, redirected,
 * in the target (root, or `nobody`, whose output program fd comes from the daemon).
 */
async function eventsThroughKernelRings(segment: string, nobody: boolean, threads = 1) {
  const args = [EVENTS, TARGET, "add"];
  const n = threads > 1 ? 2000 : 1000;
  const alone = gatedTool(EVENTS_TOOL, args);
  await alone.release();
  await alone.out.wait(/^attached/);
  await runTarget(n, undefined, false, threads);
  const kernel = await eventsResult(alone);
  // n events per program (every fourth reservation is discarded), a = 0..n-1, one pid.
  const t = threads;
  const sum = (t * n * (n - 1)) / 2;
  const kept = [...Array(n).keys()].filter((a) => (a & 3) !== 3);
  const keptSum = t * kept.reduce((x, y) => x + y, 0);
  assert.match(
    kernel,
    new RegExp(
      `^ring=${t * n}/${sum}/\\d+ reserve=${t * kept.length}/${keptSum}/\\d+ ` +
        `perf=${t * n}/${sum}/\\d+ other_pid=0 bad=0 lost=0 run_cnt=${t * n},${t * n},${t * n}$`,
    ),
  );

  const tool = gatedTool(EVENTS_TOOL, args);
  const daemon = spawn(DAEMON, ["-p", String(tool.child.pid), "-v"], {
    BPFTIME_GLOBAL_SHM_NAME: segment,
    ...(nobody ? { BPFTIME_SHM_GROUP: "nogroup" } : {}),
  });
  try {
    await daemon.err.wait(/bpftime daemon: running/);
    await tool.release();
    await tool.out.wait(/^attached/);
    // All three programs redirected before the target runs.
    await redirected(daemon, 3);
    await runTarget(n, segment, nobody, threads);
    const ours = await eventsResult(tool);
    // b is the target's thread id: it differs between the runs.
    const strip = (s: string) => s.replace(/\/\d+ /g, " ").replace(/run_cnt=.*/, "");
    assert.equal(strip(ours), strip(kernel));
    assert.match(ours, /run_cnt=0,0,0$/);
    console.log(
      `${
        nobody ? "nobody" : "root"
      } target, ${threads} thread(s): kernel: ${kernel}; redirected: ${ours}`,
    );
    if (nobody) {
      assert.match(daemon.err.text(), /for kernel map \d+: output program sent/);
    }
  } finally {
    assert.equal((await stop(daemon, "SIGINT")).code, 0, daemon.err.text());
    await stop(tool);
  }
}

daemonTest(
  "daemon: ring buffer and perf buffer events from redirected programs reach the tool",
  async (segment) => {
    await eventsThroughKernelRings(segment, false);
  },
);

daemonTest(
  "daemon: an unprivileged target outputs into kernel rings with the daemon's program fd",
  async (segment) => {
    await eventsThroughKernelRings(segment, true);
  },
  { nobody: true },
);

daemonTest(
  "daemon: four threads output into kernel rings at once (the shadow ring wraps)",
  async (segment) => {
    await eventsThroughKernelRings(segment, false, 4);
  },
);

daemonTest(
  "daemon: a target killed (-9) while its threads output into kernel rings; the next is exact",
  async (segment) => {
    const tool = gatedTool(EVENTS_TOOL, [EVENTS, TARGET, "add"]);
    const daemon = await startDaemon(segment, tool.child.pid, ["-v"]);
    const env = { BPFTIME_GLOBAL_SHM_NAME: segment, LD_PRELOAD: AGENT };
    try {
      await tool.release();
      await tool.out.wait(/^attached/);
      await redirected(daemon, 3);
      // Three threads reserving, submitting and outputting flat out, killed in the middle.
      const busy = spawn(TARGET, ["loop", "30", "3"], env);
      await busy.out.wait(/ready/);
      await new Promise((r) => setTimeout(r, 300));
      busy.child.kill("SIGKILL");
      assert.equal((await stop(busy)).signal, "SIGKILL");
      // The shadow ring and the kernel maps still flow: the next process's events all arrive.
      const next = new Deno.Command(TARGET, { args: ["add", "500", "1"], env, stdout: "piped" })
        .spawn();
      assert.equal((await next.output()).code, 0);
      const sum = (500 * 499) / 2;
      const keptSum = [...Array(500).keys()].filter((a) => (a & 3) !== 3).reduce(
        (x, y) => x + y,
        0,
      );
      const got = await eventsResult(tool, next.pid);
      assert.match(
        got,
        new RegExp(
          `^ring=500/${sum}/\\d+ reserve=375/${keptSum}/\\d+ perf=500/${sum}/\\d+ .*bad=0 .*run_cnt=0,0,0$`,
        ),
      );
      console.log(`after the kill: ${got}`);
    } finally {
      assert.equal((await stop(daemon, "SIGINT")).code, 0, daemon.err.text());
      await stop(tool);
    }
  },
);

daemonTest(
  "kernel maps: the TypeScript loader's programs output into a kernel ring and perf buffer",
  async (segment) => {
    // A libbpf reader of a kernel ring buffer and perf event array it made (no programs of its own).
    const reader = spawn(EVENTS_TOOL, ["--maps"], {}, true);
    const [, ring, perf] = (await reader.out.wait(/^maps (\d+) (\d+)/)).map(Number);
    const seg = Segment.open(segment, { create: true, sizeMb: 8 });
    const obj = BpfObject.open(EVENTS, { kernelMaps: { events: ring, perf_events: perf } });
    try {
      obj.load(seg);
      const links = ["ring_output", "ring_reserve", "perf_output"].map((p) =>
        obj.program(p).attachUprobe({ path: TARGET, func: "add" })
      );
      const target = new Deno.Command(TARGET, {
        args: ["add", "300", "1"],
        env: { BPFTIME_GLOBAL_SHM_NAME: seg.name, LD_PRELOAD: AGENT },
        stdout: "piped",
      }).spawn();
      assert.equal((await target.output()).code, 0);
      for (const l of links) l.destroy();
      const sum = (300 * 299) / 2;
      const keptSum = [...Array(300).keys()].filter((a) => (a & 3) !== 3).reduce(
        (x, y) => x + y,
        0,
      );
      const got = await eventsResult(reader, target.pid);
      assert.match(
        got,
        new RegExp(
          `^ring=300/${sum}/\\d+ reserve=225/${keptSum}/\\d+ perf=300/${sum}/\\d+ .*bad=0`,
        ),
      );
    } finally {
      obj.close();
      seg.close();
      await stop(reader);
    }
  },
);

daemonTest(
  "kernel maps: bpf_ringbuf_query on a fronted ring answers with the kernel ring's own positions",
  async (segment) => {
    const ring = KernelMap.create(27, 0, 0, 1 << 20); // BPF_MAP_TYPE_RINGBUF, as `events`
    const seg = Segment.open(segment, { create: true, sizeMb: 8 });
    const obj = BpfObject.open(EVENTS, { kernelMaps: { events: ring.id() } });
    try {
      obj.load(seg);
      const link = obj.program("ring_query").attachUprobe({ path: TARGET, func: "add" });
      const out = await new Deno.Command(TARGET, {
        args: ["add", "300", "1"],
        env: { BPFTIME_GLOBAL_SHM_NAME: seg.name, LD_PRELOAD: AGENT },
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
      link.destroy();
      const seen = [0, 1, 2, 3].map((i) => {
        const k = new Uint8Array(4);
        new DataView(k.buffer).setUint32(0, i, true);
        return new DataView(obj.map("ring_seen").lookup(k)!.buffer).getBigUint64(0, true);
      });
      // 300 records of 24 bytes, each with its 8-byte header, nobody consuming them.
      assert.deepEqual(seen, [300n * 32n, 1n << 20n, 0n, 300n * 32n]);
      // The perf event array beside it, declared without a size, got one slot per CPU (libbpf).
      assert.equal(obj.map("perf_events").info.maxEntries, possibleCpus());
    } finally {
      obj.close();
      seg.close();
      ring.close();
    }
  },
);
