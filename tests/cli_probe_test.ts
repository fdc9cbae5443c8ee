/** `bpftime run` and `bpftime start` together: the CLI side of the malloc example. */
import assert from "node:assert/strict";
import { Segment } from "../ffi/shm.ts";
import {
  asNobody,
  bpftimeEnv,
  freshSegment,
  killQuietly,
  nobodyCanRun,
  ROOT,
} from "./test_utils.ts";
import { fromHex, toHex } from "../lib/encoding/hex.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("cli: bpftime run loads and attaches, dumps maps as JSON lines, and cleans up on SIGTERM", async () => {
  const seg = freshSegment("t_cli_run");
  seg.close();
  const env = { BPFTIME_GLOBAL_SHM_NAME: "t_cli_run" };
  const runner = new Deno.Command(`${ROOT}bin/bpftime`, {
    args: ["run", `${ROOT}build/bpf/malloc.bpf.o`, "--dump-maps", "1"],
    env,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // Wait for the link to appear, then trace a target.
  const opened = Segment.open("t_cli_run");
  try {
    for (let i = 0; i < 200 && !opened.objects().some((o) => o.kind === "link"); i++) {
      await sleep(50);
    }
    assert.ok(opened.objects().some((o) => o.kind === "link"), "bpftime run created no link");
    const started = await bpftimeEnv([
      "start",
      `${ROOT}build/tests/probe_target`,
      "malloc",
      "1000",
      "1",
    ], env);
    assert.equal(started.code, 0, started.stderr);
    const tid = JSON.parse(started.stdout.trim()).tids[0];
    await sleep(1500);
    runner.kill("SIGTERM");
    const out = await runner.output();
    const stdout = new TextDecoder().decode(out.stdout),
      stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    assert.match(stderr, /attached: uprobe .*libc\.so\.6:malloc -> do_count/);
    assert.match(stderr, /detached and removed/);
    const lines = stdout.trim().split("\n").filter((l) => l.startsWith("{")).map((l) =>
      JSON.parse(l)
    );
    const counts = lines.filter((l) => l.map === "libc_malloc_calls_total").pop();
    const pidKey = toHex(new Uint8Array(new Uint32Array([tid]).buffer));
    const entry = counts.entries.find((e: { key: string }) => e.key === pidKey);
    assert.ok(entry, `no entry for pid ${tid} in ${JSON.stringify(counts)}`);
    assert.ok(new DataView(fromHex(entry.value).buffer).getBigUint64(0, true) >= 1000n);
    // Only the trace_printk ring stays: a traced process may still write to it.
    assert.deepEqual(opened.objects().map((o) => o.name), ["trace_printk"]);
  } finally {
    opened.close();
    Segment.remove("t_cli_run");
  }
});

Deno.test("cli: bpftime start passes on the exit code and runs unhooked without a segment", async () => {
  const r = await bpftimeEnv(["start", "--", "sh", "-c", "exit 7"], {
    BPFTIME_GLOBAL_SHM_NAME: "t_cli_none",
  });
  assert.equal(r.code, 7);
  assert.match(r.stderr, /bpftime-agent\[\d+\]: segment 't_cli_none': .*running without probes/);
  const missing = await bpftimeEnv(["start", "/nonexistent/program"], {});
  assert.equal(missing.code, 127);
  assert.match(missing.stderr, /cannot run '\/nonexistent\/program'/);
  const noAgent = await bpftimeEnv(["start", "true"], { AGENT_SO: "/nonexistent/agent.so" });
  assert.equal(noAgent.code, 2);
  assert.match(noAgent.stderr, /library '\/nonexistent\/agent\.so' not found/);
});

Deno.test("cli: bpftime detach PID unhooks that process, which runs on correctly", async () => {
  const seg = freshSegment("t_cli_detach", 8);
  const env = { BPFTIME_GLOBAL_SHM_NAME: "t_cli_detach" };
  const { BpfObject } = await import("../api/bpf_object.ts");
  const { cookieStats, AGENT, TARGETS } = await import("./probe_env.ts");
  const obj = BpfObject.open(`${ROOT}build/tests/probe_counts.bpf.o`);
  try {
    obj.load(seg);
    obj.program("on_entry").attachUprobe({ path: TARGETS.pie, func: "add", cookie: 5n });
    const child = new Deno.Command(TARGETS.pie, {
      args: ["loop", "60", "2"],
      env: { LD_PRELOAD: AGENT, ...env },
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    await sleep(300);
    assert.ok(cookieStats(obj, 5).calls > 0n, "not hooked");
    const r = await bpftimeEnv(["detach", String(child.pid)], env);
    assert.equal(r.code, 0, r.stderr);
    await sleep(300);
    const a = cookieStats(obj, 5).calls;
    await sleep(300);
    assert.equal(cookieStats(obj, 5).calls, a, "still counting after detach");
    child.kill("SIGTERM");
    const out = await child.output();
    assert.equal(out.code, 0);
    assert.doesNotMatch(new TextDecoder().decode(out.stdout), /WRONG/);
    assert.match(new TextDecoder().decode(out.stderr), /detach requested: removing every hook/);
    // Without a PID: every uprobe link goes; a dead process's request is dropped.
    const all = await bpftimeEnv(["detach"], env);
    assert.equal(all.code, 0, all.stderr);
    assert.match(all.stdout, /1 link\(s\) removed/);
    assert.deepEqual(seg.objects().filter((o) => o.kind === "link"), []);
    const bad = await bpftimeEnv(["detach", "999999999"], env);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /no process 999999999/);
  } finally {
    obj.close();
    seg.close();
    Segment.remove("t_cli_detach");
  }
});

Deno.test("trace_printk lines of traced processes reach the segment's trace_printk ring", async () => {
  const { BpfObject } = await import("../api/bpf_object.ts");
  const { RingBuffer } = await import("../ffi/ringbuf.ts");
  const { AGENT, TARGETS } = await import("./probe_env.ts");
  const seg = freshSegment("t_cli_printk", 8);
  const obj = BpfObject.open(`${ROOT}build/tests/printk.bpf.o`);
  try {
    const ring = new RingBuffer(
      seg,
      seg.createMap({
        type: "ringbuf",
        name: "trace_printk",
        keySize: 0,
        valueSize: 0,
        maxEntries: 65536,
      }).id,
    );
    obj.load(seg);
    obj.program("say").attachUprobe({ path: TARGETS.pie, func: "add" });
    const out = await new Deno.Command(TARGETS.pie, {
      args: ["funcs", "3"],
      env: { LD_PRELOAD: AGENT, BPFTIME_GLOBAL_SHM_NAME: seg.name },
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0);
    assert.equal(new TextDecoder().decode(out.stderr), ""); // not on the target's stderr
    const lines: string[] = [];
    ring.consume((r) => lines.push(new TextDecoder().decode(r)));
    assert.equal(lines.length, 3);
    lines.forEach((l, i) =>
      assert.match(
        l,
        new RegExp(
          `probe_target-\\d+ +\\[\\d+\\] d\\.\\.31 +\\d+\\.\\d+: bpf_trace_printk: add called with ${
            i + 1
          }\n$`,
        ),
      )
    );
  } finally {
    obj.close();
    seg.close();
    Segment.remove("t_cli_printk");
  }
});

Deno.test("cli: the whole userspace path (bpftime run and bpftime start) as an ordinary user", async () => {
  if (!(await nobodyCanRun(`${ROOT}bin/bpftime`))) {
    console.log("skip: needs root to switch to user nobody, and a checkout nobody can read");
    return;
  }
  const home = Deno.makeTempDirSync();
  Deno.chownSync(home, 65534, 65534);
  const env = { DENO_DIR: home, HOME: home, BPFTIME_GLOBAL_SHM_NAME: "t_cli_nobody" };
  try {
    Segment.remove("t_cli_nobody");
  } catch { /* none left over */ }
  const runner = asNobody([
    `${ROOT}bin/bpftime`,
    "run",
    `${ROOT}build/bpf/malloc.bpf.o`,
    "--dump-maps",
    "1",
  ], env)
    .spawn();
  try {
    let seg: Segment | undefined;
    for (let i = 0; i < 600 && !seg?.objects().some((o) => o.kind === "link"); i++) {
      await sleep(50);
      try {
        seg ??= Segment.open("t_cli_nobody", { trustUid: 65534 }); // the user's, on purpose
      } catch { /* not created yet */ }
    }
    assert.ok(
      seg?.objects().some((o) => o.kind === "link"),
      "bpftime run as nobody created no link",
    );
    seg!.close();
    const started = await asNobody([
      `${ROOT}bin/bpftime`,
      "start",
      `${ROOT}build/tests/probe_target`,
      "malloc",
      "500",
      "1",
    ], env)
      .output();
    assert.equal(started.code, 0, new TextDecoder().decode(started.stderr));
    const pid = JSON.parse(new TextDecoder().decode(started.stdout)).tids[0];
    await sleep(1500);
    runner.kill("SIGTERM"); // runuser passes it on and exits 143 itself
    const out = await runner.output();
    assert.match(new TextDecoder().decode(out.stderr), /detached and removed/);
    const pidKey = toHex(new Uint8Array(new Uint32Array([pid]).buffer));
    const dumps = new TextDecoder().decode(out.stdout).split("\n").filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l)).filter((l) => l.map === "libc_malloc_calls_total");
    assert.ok(
      dumps.pop().entries.some((e: { key: string }) => e.key === pidKey),
      "the target was not counted",
    );
    assert.equal(Deno.statSync("/dev/shm/t_cli_nobody").uid, 65534); // the user's own segment
  } finally {
    killQuietly(runner);
    try {
      Segment.remove("t_cli_nobody");
    } catch { /* never created */ }
    Deno.removeSync(home, { recursive: true });
  }
});
