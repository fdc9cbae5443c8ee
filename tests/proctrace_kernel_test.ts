/**
 * The process tracer in kernel mode (bpf/proctrace.bpf.c through build/libbpftime-proctrace.so):
 * the scripted tree through the CLI, the batch API (buffers reused, columns, lazy strings),
 * argv at and past its limit, the filters, and each setup error. Needs root.
 */
import assert from "node:assert/strict";
import { ProcessBatch, ProcessTracer } from "../mod.ts";
import { asNobody, bpftime, DENO, nobodyCanRun, ROOT } from "./test_utils.ts";
import { normalized, parseLines, TREE_EVENTS, TREE_SCRIPT } from "./proctrace_events.ts";

const ROOT_ONLY = Deno.uid() !== 0;
if (ROOT_ONLY) console.log("skip: proctrace kernel tests need root (eBPF in the kernel)");
const ignore = ROOT_ONLY;

/** Runs `argv` and waits for it. */
async function run(argv: string[]): Promise<number> {
  return (await new Deno.Command(argv[0], { args: argv.slice(1) }).output()).code;
}

/** Traces this process's descendants while `work` runs; returns every delivered event as JSON. */
async function traceWhile(
  work: () => Promise<void>,
  options: Parameters<typeof ProcessTracer.kernel>[1] = {},
): Promise<{ lines: string[]; batches: Set<ProcessBatch>; tracer: ProcessTracer }> {
  const lines: string[] = [];
  const batches = new Set<ProcessBatch>();
  const tracer = ProcessTracer.kernel((b) => {
    batches.add(b);
    for (let i = 0; i < b.length; i++) lines.push(b.jsonLine(i));
  }, { pid: Deno.pid, ...options });
  await work();
  await tracer.stop();
  return { lines, batches, tracer };
}

Deno.test({
  name: "proctrace kernel: the scripted tree as JSON lines (pids, ppids, argv, exit codes)",
  ignore,
  async fn() {
    const before = Date.now();
    const r = await bpftime(["proctrace", "--", TREE_SCRIPT]);
    assert.equal(r.code, 5, r.stderr);
    const events = parseLines(r.stdout);
    assert.deepEqual(normalized(events), TREE_EVENTS);
    for (const e of events) {
      assert.match(e.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
      const ms = Date.parse(e.timestamp);
      assert.ok(ms >= before - 1000 && ms <= Date.now() + 1000, `wall clock: ${e.timestamp}`);
      if (e.event_type === "process_exec") {
        assert.deepEqual(Object.keys(e), [
          "event_type",
          "timestamp",
          "pid",
          "ppid",
          "comm",
          "argc",
          "argv",
        ]);
        assert.equal(e.argc, e.argv!.length);
      } else {
        assert.deepEqual(Object.keys(e), [
          "event_type",
          "timestamp",
          "pid",
          "ppid",
          "comm",
          "exit_code",
          "duration_ns",
        ]);
      }
    }
    const sleep = events.find((e) => e.event_type === "process_exit" && e.comm === "sleep");
    assert.ok(
      sleep && sleep.duration_ns! >= 50_000_000,
      `sleep 0.05 ran >= 50 ms: ${sleep?.duration_ns}`,
    );
  },
});

Deno.test({
  name: "proctrace kernel: batches are the pool's blocks, reused; columns are typed arrays",
  ignore,
  async fn() {
    const pidArrays = new Set<Int32Array>();
    let delivered = 0;
    const tracer = ProcessTracer.kernel((b) => {
      pidArrays.add(b.pid);
      delivered += b.length;
      assert.ok(b.pid instanceof Int32Array && b.timestampNs instanceof BigUint64Array);
    }, { pid: Deno.pid, batchCapacity: 8, poolSize: 2 });
    for (let i = 0; i < 40; i++) await run(["/bin/true", String(i)]);
    await tracer.stop();
    assert.equal(delivered, 80, "40 execs and 40 exits");
    assert.ok(pidArrays.size <= 2, `the columns of 2 blocks, got ${pidArrays.size} arrays`);
    for (const a of pidArrays) assert.ok(tracer.pool.some((b) => b.pid === a));
    const s = tracer.stats();
    assert.equal(s.events, 80n);
    assert.equal(s.dropped, 0n);
    assert.equal(s.argvLost, 0n);
    assert.ok(s.batches >= 10n, `80 events in batches of 8: ${s.batches}`);
  },
});

Deno.test({
  name: "proctrace kernel: 200 arguments and 24 KiB of argv intact; past 32 KiB cut and flagged",
  ignore,
  async fn() {
    const many = Array.from({ length: 200 }, (_, i) => `arg${i}-${"x".repeat(110)}`);
    const huge = Array.from({ length: 400 }, (_, i) => `big${i}-${"y".repeat(100)}`);
    const flags: number[] = [];
    const argvs: string[][] = [];
    const tracer = ProcessTracer.kernel((b) => {
      for (let i = 0; i < b.length; i++) {
        if (b.isExec(i)) {
          argvs.push(b.argv(i));
          flags.push(b.flags[i]);
        }
      }
    }, { pid: Deno.pid });
    await run(["/bin/true", ...many]);
    await run(["/bin/true", ...huge]);
    await tracer.stop();
    assert.equal(argvs.length, 2);
    assert.deepEqual(argvs[0], ["/bin/true", ...many]);
    assert.equal(flags[0], 0);
    const bytes = argvs[1].reduce((n, a) => n + new TextEncoder().encode(a).length + 1, 0);
    assert.ok(bytes >= 32 * 1024 - 1 && bytes <= 32 * 1024 + 1, `cut at 32 KiB: ${bytes}`);
    assert.deepEqual(argvs[1].slice(0, -1), ["/bin/true", ...huge].slice(0, argvs[1].length - 1));
    assert.equal(flags[1] & 1, 1, "PROCTRACE_F_ARGV_TRUNCATED");
  },
});

Deno.test({
  name: "proctrace kernel: -d drops short processes' exits, -c keeps one comm, -p one tree",
  ignore,
  async fn() {
    const long = await traceWhile(async () => {
      await run(["/bin/true"]);
      await run(["/bin/sleep", "0.3"]);
    }, { minDurationMs: 200 });
    const exits = long.lines.map((l) => JSON.parse(l)).filter((e) =>
      e.event_type === "process_exit"
    );
    assert.deepEqual(exits.map((e) => e.comm), ["sleep"]);

    const comm = await traceWhile(async () => {
      await run(["/bin/true"]);
      await run(["/bin/sleep", "0"]);
    }, { comm: "sleep" });
    assert.deepEqual(comm.lines.map((l) => JSON.parse(l).comm), ["sleep", "sleep"]);

    // -p: a tree started elsewhere (a shell whose children are traced, not this process's others).
    const shell = new Deno.Command("/bin/sh", {
      args: ["-c", "read x; /bin/true tree; exit 0"],
      stdin: "piped",
    })
      .spawn();
    const lines: string[] = [];
    const tracer = ProcessTracer.kernel((b) => {
      for (let i = 0; i < b.length; i++) lines.push(b.jsonLine(i));
    }, { pid: shell.pid });
    await run(["/bin/true", "not-in-tree"]);
    const w = shell.stdin.getWriter();
    await w.write(new TextEncoder().encode("go\n"));
    await w.close();
    await shell.status;
    await tracer.stop();
    assert.deepEqual(
      lines.map((l) => JSON.parse(l)).map((e) => `${e.event_type} ${e.argv ?? e.exit_code}`),
      ["process_exec /bin/true,tree", "process_exit 0", "process_exit 0"],
    );
  },
});

Deno.test({
  name: "proctrace kernel: missing BTF, missing tracefs, unknown object: clear errors",
  ignore,
  fn() {
    assert.throws(
      () => ProcessTracer.kernel(() => {}, { btfPath: "/nonexistent/vmlinux" }),
      /kernel BTF not found at \/nonexistent\/vmlinux .*CONFIG_DEBUG_INFO_BTF/,
    );
    assert.throws(
      () => ProcessTracer.kernel(() => {}, { tracefs: "/nonexistent/tracing" }),
      /tracefs not found at \/nonexistent\/tracing .*mount -t tracefs/,
    );
    assert.throws(
      () => ProcessTracer.kernel(() => {}, { objectPath: "/nonexistent/proctrace.bpf.o" }),
      /cannot open \/nonexistent\/proctrace.bpf.o/,
    );
  },
});

Deno.test({
  name: "proctrace kernel: without privileges it says to run as root or use --userspace",
  ignore,
  async fn() {
    if (!await nobodyCanRun(DENO)) {
      console.log("skip: user nobody cannot run this checkout's deno");
      return;
    }
    const out = await asNobody([
      DENO,
      "run",
      "-A",
      `${ROOT}cli/main.ts`,
      "proctrace",
      "--",
      "/bin/true",
    ], {
      HOME: "/tmp",
      DENO_DIR: "/tmp/proctrace-nobody-deno",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 1, stderr);
    assert.match(stderr, /bpftime proctrace: .*run as root or use --userspace/);
  },
});
