/**
 * The syscall server: unmodified libbpf applications run once against the
 * kernel (root) and once under `bpftime load` (their probes in processes
 * started with `bpftime start`) must see the same counts and events, and
 * get the kernel's errno for bad calls.
 */
import assert from "node:assert/strict";
import { kernelBpfAvailable } from "../testing/kernel_bpf.ts";
import { freshSegment } from "./test_utils.ts";
import {
  BAD_CALLS,
  BASHREADLINE_APP,
  BIN,
  MALLOC_APP,
  PERF_EVENTS,
  RING_CONSUMER,
  RING_EVENTS,
  runJson,
  Running,
  TARGET,
} from "./server_env.ts";

const kernel = kernelBpfAvailable();
if (!kernel.ok) console.log(`skip: server tests against the kernel: ${kernel.reason}`);

type Mode = "kernel" | "bpftime";
const MODES: Mode[] = kernel.ok ? ["kernel", "bpftime"] : ["bpftime"];

/** A libbpf application: as it is (kernel), or under `bpftime load` on segment `seg`. */
function app(
  mode: Mode,
  seg: string,
  prog: string,
  args: string[],
  env: Record<string, string> = {},
): Running {
  return mode === "kernel"
    ? new Running(prog, args, env)
    : new Running(BIN, ["load", prog, ...args], { BPFTIME_GLOBAL_SHM_NAME: seg, ...env });
}

/** The traced program: as it is (kernel), or under `bpftime start`. */
function traced(mode: Mode, seg: string, args: string[]): Running {
  return mode === "kernel"
    ? new Running(TARGET, args)
    : new Running(BIN, ["start", TARGET, ...args], { BPFTIME_GLOBAL_SHM_NAME: seg });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * ring_consumer with OBJECT on `mode`: it waits 1 s idle in epoll (its CPU time then is measured),
 * then the target's THREADS call add() CALLS times each. Returns the consumer's JSON summary and
 * the target's thread ids. A consumer that polled instead of blocking fails here.
 */
async function consume(
  mode: Mode,
  object: string,
  threads: number,
  calls: number,
  perfPages = 16,
) {
  const seg = freshSegment("t_srv_consume", 64);
  const consumer = app(mode, seg.name, RING_CONSUMER, [
    object,
    TARGET,
    String(threads * calls),
    "60",
    String(perfPages),
  ]);
  await consumer.waitLine(/^ready$/);
  await sleep(1000);
  const target = traced(mode, seg.name, ["add", String(calls), String(threads)]);
  const done = await target.waitLine(/^\{"per_thread"/, 60000);
  assert.equal((await target.finish()).code, 0);
  const result = JSON.parse((await consumer.waitLine(/^\{"events"/, 60000)).line);
  assert.equal((await consumer.finish()).code, 0, consumer.stderr);
  console.log(
    `${mode}: ${result.events} events, ${
      result.lost ?? 0
    } lost, ${result.events_per_s} events/s, ` +
      `idle ${result.idle_ms} ms using ${result.idle_cpu_ms} ms CPU, ${result.polls} polls`,
  );
  assert.ok(
    result.idle_cpu_ms < result.idle_ms * 0.05,
    `${mode}: idle CPU ${result.idle_cpu_ms} ms`,
  );
  if (mode === "bpftime") {
    assert.equal(seg.stats().objects, 0, "the application's objects are gone");
  }
  seg.close();
  return { result, tids: JSON.parse(done.line).tids as number[] };
}

Deno.test("server: 8 threads x 100,000 uprobe hits reach a libbpf ring buffer consumer, none lost, while it sleeps in epoll", async () => {
  const THREADS = 8, CALLS = 100_000;
  for (const mode of MODES) {
    const { result, tids } = await consume(mode, RING_EVENTS, THREADS, CALLS);
    assert.equal(result.events, THREADS * CALLS, `${mode}: events`);
    for (const tid of tids) {
      assert.deepEqual(
        result.threads[String(tid)],
        { count: CALLS, out_of_order: 0 },
        `${mode}: ${tid}`,
      );
    }
  }
});

Deno.test("server: uprobe records reach libbpf's perf_buffer (perf event array, 16 pages per CPU) while it sleeps in epoll", async () => {
  const THREADS = 2, CALLS = 500; // fits the rings: nothing is lost on either side
  for (const mode of MODES) {
    const { result, tids } = await consume(mode, PERF_EVENTS, THREADS, CALLS);
    assert.equal(result.events, THREADS * CALLS, `${mode}: events`);
    assert.equal(result.lost, 0);
    for (const tid of tids) {
      assert.equal(result.threads[String(tid)].count, CALLS, `${mode}: ${tid}`);
    }
  }
});

Deno.test("server: perf_buffer rings of 64 pages per CPU (the size the consumer maps, as bpftrace asks 64) carry every record", async () => {
  const THREADS = 2, CALLS = 2000;
  for (const mode of MODES) {
    const { result } = await consume(mode, PERF_EVENTS, THREADS, CALLS, 64);
    assert.equal(result.events, THREADS * CALLS, `${mode}: events`);
    assert.equal(result.lost ?? 0, 0, `${mode}: lost`);
  }
});

/** The malloc example's count for `pid` in its output since line `from` (0 before its first line). */
function mallocCount(tool: Running, pid: number, from: number): number {
  let count = 0;
  for (const line of tool.lines.slice(from)) {
    const m = line.match(/^\tpid=(\d+)\tmalloc calls: (\d+)$/);
    if (m && Number(m[1]) === pid) count = Number(m[2]);
  }
  return count;
}

/** Waits until the tool has printed `n` more rounds of counts. */
async function rounds(tool: Running, n: number): Promise<number> {
  let at = tool.lines.length;
  for (let i = 0; i < n; i++) at = (await tool.waitLine(/^\d\d:\d\d:\d\d $/, 10000, at)).index + 1;
  return at;
}

Deno.test("server: the malloc example (bpftool skeleton) counts the same calls on the kernel and under bpftime", async () => {
  const N = 1000;
  for (const mode of MODES) {
    const seg = freshSegment("t_srv_malloc", 16);
    const tool = app(mode, seg.name, MALLOC_APP, []);
    await rounds(tool, 1); // attached
    const target = traced(mode, seg.name, ["malloc-signal", String(N)]);
    const pid = Number((await target.waitLine(/^ready \d+$/)).line.split(" ")[1]);
    await rounds(tool, 2);
    const before = mallocCount(tool, pid, 0);
    Deno.kill(pid, "SIGUSR1");
    await target.waitLine(/^done$/);
    const at = await rounds(tool, 2);
    const after = mallocCount(tool, pid, 0);
    console.log(`${mode}: pid ${pid} malloc calls ${before} -> ${after} (at line ${at})`);
    assert.equal(after - before, N, `${mode}: mallocs counted between the signal and done`);
    Deno.kill(pid, "SIGTERM");
    await target.finish();
    tool.child.kill("SIGTERM");
    assert.equal((await tool.finish()).code, 0, tool.stderr);
    // libbpf's feature probes and loading went through without a complaint.
    assert.doesNotMatch(tool.stderr, /fail|error|warn|bpftime-server/i, `${mode}: ${tool.stderr}`);
    if (mode === "bpftime") assert.equal(seg.stats().objects, 0);
    seg.close();
  }
});

Deno.test("server: libbpf's feature probing and loading log no errors (libbpf debug output)", async () => {
  const seg = freshSegment("t_srv_probe", 16);
  const r = await new Deno.Command(BIN, {
    args: ["load", MALLOC_APP, "-v", "-d", "1"],
    env: { BPFTIME_GLOBAL_SHM_NAME: seg.name },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const log = new TextDecoder().decode(r.stderr);
  assert.equal(r.code, 0, log);
  assert.match(log, /map 'libc_malloc_calls_total': created successfully/);
  assert.doesNotMatch(log, /fail|error|warn|invalid|not supported|bpftime-server/i, log);
  seg.close();
});

Deno.test("server: bad calls get the kernel's errno, and the application's own file is untouched", async () => {
  const seg = freshSegment("t_srv_bad", 8);
  const dir = Deno.makeTempDirSync();
  const ours = await runJson(BIN, ["load", BAD_CALLS, `${dir}/ours`], {
    BPFTIME_GLOBAL_SHM_NAME: seg.name,
  });
  assert.equal(ours.code, 0, ours.stderr);
  assert.equal(ours.json.own_file_intact, true);
  assert.equal(ours.json.bad_opcode_logged, true);
  assert.match(ours.stderr, /bpftime-server: BPF_PROG_LOAD '' refused: pc 0: unknown opcode 0xff/);
  assert.match(ours.stderr, /bpftime-server: cmd 999 is not supported/);
  if (kernel.ok) {
    const theirs = await runJson(BAD_CALLS, [`${dir}/theirs`]);
    assert.equal(theirs.code, 0);
    assert.deepEqual(ours.json, theirs.json);
  } else {
    assert.equal(ours.json.lookup_missing, "ENOENT");
  }
  const unsupported = await runJson(BIN, ["load", BAD_CALLS, `${dir}/ours`, "unsupported"], {
    BPFTIME_GLOBAL_SHM_NAME: seg.name,
  });
  assert.deepEqual(unsupported.json, { prog_query: "EOPNOTSUPP", iter_create: "EOPNOTSUPP" });
  assert.match(unsupported.stderr, /bpftime-server: BPF_PROG_QUERY is not supported/);
  assert.match(unsupported.stderr, /bpftime-server: BPF_ITER_CREATE is not supported/);
  assert.equal(seg.stats().objects, 0);
  Deno.removeSync(dir, { recursive: true });
  seg.close();
});

Deno.test("server: a pinned map outlives its application; a forked child's closes delete nothing", async () => {
  const seg = freshSegment("t_srv_pin", 8);
  const r = await runJson(BIN, ["load", BAD_CALLS, "/dev/null", "lifetimes"], {
    BPFTIME_GLOBAL_SHM_NAME: seg.name,
  });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.json, { pin: "ok", update: "ok", lookup_after_child_closed: "ok" });
  const left = seg.objects();
  assert.equal(left.length, 1, JSON.stringify(left));
  const key = new Uint8Array([1, 0, 0, 0]);
  const value = seg.map(left[0].id).lookup(key)!;
  assert.equal(new DataView(value.buffer, value.byteOffset).getBigUint64(0, true), 42n);
  seg.close();
});

Deno.test("server: a killed application's links, programs and maps go; the traced process runs on", async () => {
  const seg = freshSegment("t_srv_kill", 32);
  const consumer = app("bpftime", seg.name, RING_CONSUMER, [
    RING_EVENTS,
    TARGET,
    "999999999",
    "60",
  ]);
  await consumer.waitLine(/^ready$/);
  assert.ok(seg.stats().objects >= 3, "map, program and link are in the segment");
  const target = traced("bpftime", seg.name, ["loop", "30", "2"]);
  await target.waitLine(/^ready$/);
  await sleep(300);
  const pid = Number(
    new TextDecoder().decode(
      (await new Deno.Command("pgrep", {
        args: ["-f", `^${RING_CONSUMER} .* 999999999`],
        stdout: "piped",
      })
        .output()).stdout,
    ).trim(),
  );
  assert.ok(pid > 0);
  Deno.kill(pid, "SIGKILL");
  const status = await consumer.finish();
  assert.equal(status.code, 128 + 9);
  assert.equal(seg.stats().objects, 0, "nothing of the killed application is left");
  target.child.kill("SIGTERM");
  const end = await target.waitLine(/^\{"calls":\d+\}$/);
  assert.ok(JSON.parse(end.line).calls > 0);
  assert.equal((await target.finish()).code, 0);
  seg.close();
});

Deno.test("server: the bashreadline example (uretprobe, ring buffer, C consumer) sees the same lines on the kernel and under bpftime", async () => {
  const input = "echo pid=$$\\necho two\\n";
  for (const mode of MODES) {
    const seg = freshSegment("t_srv_bash", 16);
    const tool = app(mode, seg.name, BASHREADLINE_APP, []);
    await tool.waitLine(/^TIME +PID +COMMAND$/);
    const bash = mode === "kernel" ? "/bin/bash -i" : `${BIN} start /bin/bash -i`;
    const shell = new Running("sh", ["-c", `printf '${input}' | ${bash}`], {
      BPFTIME_GLOBAL_SHM_NAME: seg.name,
    });
    const pid = Number((await shell.waitLine(/^pid=\d+$/)).line.slice(4));
    await shell.finish();
    await tool.waitLine(new RegExp(`^\\S+ +${pid} +echo two$`), 10000);
    tool.child.kill("SIGTERM");
    assert.equal((await tool.finish()).code, 0, tool.stderr);
    const lines = tool.lines.map((l) => l.match(/^\S+ +(\d+) +(.*)$/)).filter((m) =>
      m && Number(m[1]) === pid
    ).map((m) => m![2]);
    assert.deepEqual(lines, ["echo pid=$$", "echo two"], mode);
    seg.close();
  }
});

Deno.test("server: bpftrace one-liners (count, hist and printf on a uprobe and uretprobe) agree on the kernel and under bpftime", async () => {
  const script = "uprobe:/bin/bash:readline { @calls[pid] = count(); } " +
    "uretprobe:/bin/bash:readline /retval != 0/ { @lines[pid] = count(); @len = hist(1); " +
    'printf("line %d %s\\n", pid, str(retval)); }';
  for (const mode of MODES) {
    const seg = freshSegment("t_srv_bpftrace", 16);
    // bpftrace's perf buffers must have the 16 pages bpftime's perf rings have.
    const tracer = app(mode, seg.name, "bpftrace", ["-e", script], {
      BPFTRACE_PERF_RB_PAGES: "16",
    });
    await tracer.waitLine(/^Attaching 2 probes\.\.\.$/);
    await sleep(500);
    const bash = mode === "kernel" ? "/bin/bash -i" : `${BIN} start /bin/bash -i`;
    const shell = new Running("sh", ["-c", `printf 'echo pid=$$\\necho two\\n' | ${bash}`], {
      BPFTIME_GLOBAL_SHM_NAME: seg.name,
    });
    const pid = Number((await shell.waitLine(/^pid=\d+$/)).line.slice(4));
    await shell.finish();
    // bpftrace prints its maps when interrupted.
    await new Deno.Command("pkill", { args: ["-INT", "-f", `bpftrace -e ${script.slice(0, 20)}`] })
      .output();
    await tracer.finish();
    const out = tracer.lines.join("\n");
    // readline ran three times (two lines, then end of input), two of them returned a line.
    assert.match(
      out,
      new RegExp(`^@calls\\[${pid}\\]: 3$`, "m"),
      `${mode}: ${out}\n${tracer.stderr}`,
    );
    assert.match(out, new RegExp(`^@lines\\[${pid}\\]: 2$`, "m"), `${mode}: ${out}`);
    assert.match(out, /^\[1\]\s+2 \|@+\|$/m, `${mode}: ${out}`);
    // printf goes through a perf event array and bpftrace's perf buffers; CPUs' rings may interleave.
    const printed = tracer.lines.filter((l) => l.startsWith(`line ${pid} `)).sort();
    assert.deepEqual(
      printed,
      [`line ${pid} echo pid=$$`, `line ${pid} echo two`],
      `${mode}: ${out}`,
    );
    seg.close();
  }
});
