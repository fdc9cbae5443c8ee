/**
 * `bpftime attach PID`: the agent loaded into a process that was started without it
 * (build/tests/attach_target), by ptrace. Its blocked calls finish as if nothing happened,
 * a signal sent during the injection is delivered, uprobes then count, attaching twice is
 * harmless, detach removes the hooks; and each refusal is said, with the target untouched.
 */
import assert from "node:assert/strict";
import { Segment } from "../ffi/shm.ts";
import { cookieStats, loadProbes } from "./probe_env.ts";
import { asNobody, bpftimeEnv, killQuietly, nobodyCanRun, ROOT } from "./test_utils.ts";

const TARGET = `${ROOT}build/tests/attach_target`;
const STATIC = `${ROOT}build/tests/attach_static`;
const AGENT_FILE = "libbpftime-agent.so";
const MS = 2500;
const LONG = 5000; // the first test's target: long enough for attach, detach, attach
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A target started normally; its stdout read line by line. */
class Target {
  readonly child: Deno.ChildProcess;
  #out = "";
  #err = "";
  #done: Promise<Deno.CommandStatus>;

  constructor(cmd: Deno.Command) {
    const child = cmd.spawn();
    this.child = child;
    const dec = new TextDecoder();
    const out = (async () => {
      for await (const c of child.stdout) this.#out += dec.decode(c);
    })();
    const err = (async () => {
      for await (const c of child.stderr) this.#err += dec.decode(c);
    })();
    this.#done = Promise.all([out, err, child.status]).then(([, , s]) => s);
  }
  static start(mode: "sleep" | "read" | "busy", path = TARGET, ms = MS): Target {
    return new Target(
      new Deno.Command(path, { args: [String(ms), mode], stdout: "piped", stderr: "piped" }),
    );
  }
  get pid(): number {
    return this.child.pid;
  }
  async ready(line = "ready"): Promise<void> {
    const end = Date.now() + 5000;
    while (!this.#out.includes(`${line}\n`)) {
      assert.ok(Date.now() < end, `target never said ${line}: ${this.#out} ${this.#err}`);
      await sleep(10);
    }
    await sleep(100); // its threads into their calls
  }
  /** Until a tracer holds it (bounded). */
  async traced(): Promise<void> {
    const end = Date.now() + 5000;
    while (!/TracerPid:\s*[1-9]/.test(Deno.readTextFileSync(`/proc/${this.pid}/status`))) {
      assert.ok(Date.now() < end, "never traced");
      await sleep(5);
    }
  }
  hasAgent(): boolean {
    return Deno.readTextFileSync(`/proc/${this.pid}/maps`).includes(AGENT_FILE);
  }
  /** Its last line, parsed, once it has ended on its own (bounded). */
  async result(): Promise<Record<string, unknown>> {
    const timer = setTimeout(() => this.kill(), LONG + 10000);
    const status = await this.#done;
    clearTimeout(timer);
    assert.equal(status.code, 0, `target failed: ${this.#out} ${this.#err}`);
    const last = this.#out.trim().split("\n").pop()!;
    return JSON.parse(last);
  }
  get stderr(): string {
    return this.#err;
  }
  kill(): void {
    killQuietly(this.child);
  }
  async [Symbol.asyncDispose](): Promise<void> {
    this.kill();
    await this.#done;
  }
}

type Call = { ret: number; errno: number; ms: number };

/** Each blocked call ended as it would have: its result, no EINTR, its whole duration. */
function assertUndisturbed(r: Record<string, unknown>, mainRet: number, ms = MS): void {
  const calls = r as Record<string, Call>;
  for (const [name, ret] of [["main", mainRet], ["sleep", 0], ["read", 1]] as const) {
    const c = calls[name];
    assert.equal(c.errno, 0, `${name}: errno ${c.errno} (${JSON.stringify(r)})`);
    assert.equal(c.ret, ret, `${name}: ${JSON.stringify(r)}`);
    assert.ok(c.ms >= ms - 1, `${name} cut short: ${JSON.stringify(r)}`);
  }
}

function segName(tag: string): string {
  return `bpftime_attach_test_${tag}_${Deno.pid}`;
}

Deno.test("attach: a running target's blocked calls go on, a signal is kept, uprobes count; twice is harmless; detach unhooks, attach re-arms", async () => {
  const { seg, obj } = loadProbes(segName("main"));
  const env = { BPFTIME_GLOBAL_SHM_NAME: seg.name };
  try {
    obj.program("on_entry").attachUprobe({ path: TARGET, func: "attach_work", cookie: 7n });
    // The main thread in read on a pipe (SA_RESTART: a handler does not end the call).
    await using t = Target.start("read", TARGET, LONG);
    await t.ready();
    assert.ok(!t.hasAgent());
    // The injector holds the main thread for 400 ms; SIGUSR1 (the main thread's only) meets it.
    const attach = bpftimeEnv(["attach", String(t.pid)], {
      ...env,
      BPFTIME_INJECT_PAUSE_MS: "400",
    });
    await t.traced();
    Deno.kill(t.pid, "SIGUSR1");
    const r = await attach;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /loaded the bpftime agent into process/);
    assert.ok(t.hasAgent());
    await sleep(300);
    const counted = cookieStats(obj, 7).calls;
    assert.ok(counted > 0n, "the uprobe never ran");

    const again = await bpftimeEnv(["attach", "--", String(t.pid)], env);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /already runs the bpftime agent/);

    const d = await bpftimeEnv(["detach", String(t.pid)], env);
    assert.equal(d.code, 0, d.stderr);
    await sleep(300);
    const after = cookieStats(obj, 7).calls;
    await sleep(300);
    assert.equal(cookieStats(obj, 7).calls, after, "hooks still run after detach");

    // Attaching again re-arms it.
    const rearmed = await bpftimeEnv(["attach", String(t.pid)], env);
    assert.equal(rearmed.code, 0, rearmed.stderr);
    assert.match(rearmed.stdout, /re-armed/);
    await sleep(300);
    assert.ok(cookieStats(obj, 7).calls > after, "not re-armed");

    const res = await t.result();
    assertUndisturbed(res, 1, LONG);
    assert.equal(res.usr1, 1, `SIGUSR1 lost or doubled: ${JSON.stringify(res)}`);
    assert.ok((res.work as number) > 0);
  } finally {
    const name = seg.name;
    obj.close();
    seg.close();
    Segment.remove(name);
  }
});

/* The target's main thread in nanosleep, or never entering the kernel (malloc and free). */
for (
  const [mode, what] of [
    ["sleep", "a thread held in nanosleep sleeps its whole time"],
    ["busy", "a thread that never enters the kernel (malloc, free) is injected too"],
  ] as const
) {
  Deno.test(`attach: ${what}`, async () => {
    const { seg, obj } = loadProbes(segName(mode === "sleep" ? "read" : mode));
    try {
      await using t = Target.start(mode);
      await t.ready();
      const r = await bpftimeEnv(["attach", String(t.pid)], { BPFTIME_GLOBAL_SHM_NAME: seg.name });
      assert.equal(r.code, 0, r.stderr);
      assert.ok(t.hasAgent());
      assertUndisturbed(await t.result(), 0);
    } finally {
      const name = seg.name;
      obj.close();
      seg.close();
      Segment.remove(name);
    }
  });
}

Deno.test("attach: a dlopen in progress is waited for, or refused in time; a call stuck on a lock is interrupted and the thread put back", async () => {
  const { seg, obj } = loadProbes(segName("loader"));
  const env = { BPFTIME_GLOBAL_SHM_NAME: seg.name };
  const ms = 8000;
  const release = `${Deno.makeTempDirSync()}/release`;
  try {
    // Another thread dlopens a library whose constructor waits for `release`: the loader's lock
    // is held until the test lets it go.
    await using t = new Target(
      new Deno.Command(TARGET, {
        args: [String(ms), "sleep"],
        env: { ATTACH_DLOPEN: `${ROOT}build/tests/libslow_ctor.so`, SLOW_CTOR_UNTIL: release },
        stdout: "piped",
        stderr: "piped",
      }),
    );
    await t.ready("ctor");
    // Waited for 600 ms, then refused with nothing done.
    await refused(
      [String(t.pid)],
      { ...env, BPFTIME_INJECT_TIMEOUT_MS: "600" },
      /loader's lock in process \d+ is held by its thread \d+ .* for over 600 ms; nothing was loaded/,
      t,
    );
    // Not looking at the lock: the injected dlopen waits for it, and is interrupted in time.
    await refused(
      [String(t.pid)],
      { ...env, BPFTIME_INJECT_TIMEOUT_MS: "600", BPFTIME_INJECT_NO_LOADER_CHECK: "1" },
      /injected dlopen in process \d+ did not return within 600 ms.*put back where it was/,
      t,
    );
    // With the default bound (5 s), the constructor let go meanwhile: the agent is loaded after it.
    const pending = bpftimeEnv(["attach", String(t.pid)], env);
    await sleep(300);
    Deno.writeTextFileSync(release, "");
    const r = await pending;
    assert.equal(r.code, 0, r.stderr);
    assert.ok(t.hasAgent());
    // The thread put back twice, then injected: its nanosleep ran its whole time, no EINTR.
    assertUndisturbed(await t.result(), 0, ms);
  } finally {
    Deno.removeSync(release.replace(/\/release$/, ""), { recursive: true });
    const name = seg.name;
    obj.close();
    seg.close();
    Segment.remove(name);
  }
});

/** `bpftime attach` refused: exit 1, `pattern` said, and the target (if any) without the agent. */
async function refused(
  args: string[],
  env: Record<string, string>,
  pattern: RegExp,
  t?: Target,
): Promise<void> {
  const r = await bpftimeEnv(["attach", ...args], env);
  assert.equal(r.code, 1, `${r.stdout}${r.stderr}`);
  assert.match(r.stderr, pattern);
  if (t) assert.ok(!t.hasAgent(), "the agent was loaded anyway");
}

Deno.test("attach: refusals, each said, nothing left in the target", async () => {
  const { seg, obj } = loadProbes(segName("err"));
  const env = { BPFTIME_GLOBAL_SHM_NAME: seg.name };
  try {
    // No such process.
    const gone = new Deno.Command("true").spawn();
    await gone.status;
    await refused([String(gone.pid)], env, new RegExp(`no process ${gone.pid}`));

    // No segment to follow.
    {
      await using t = Target.start("sleep");
      await t.ready();
      await refused(
        [String(t.pid)],
        { BPFTIME_GLOBAL_SHM_NAME: `${seg.name}_missing` },
        /load a program first/,
        t,
      );
      // The agent file missing.
      await refused(
        [String(t.pid)],
        { ...env, AGENT_SO: "/nonexistent/libbpftime-agent.so" },
        /the agent \/nonexistent/,
        t,
      );
      assertUndisturbed(await t.result(), 0);
    }

    // A statically linked target.
    {
      await using t = Target.start("sleep", STATIC);
      await t.ready();
      await refused([String(t.pid)], env, /statically linked/, t);
      assertUndisturbed(await t.result(), 0);
    }

    // The process exits during injection.
    {
      await using t = Target.start("sleep");
      await t.ready();
      const r = bpftimeEnv(["attach", String(t.pid)], { ...env, BPFTIME_INJECT_PAUSE_MS: "1000" });
      await t.traced();
      t.kill();
      const out = await r;
      assert.equal(out.code, 1, out.stdout);
      assert.match(out.stderr, /exited during injection/);
    }
  } finally {
    const name = seg.name;
    obj.close();
    seg.close();
    Segment.remove(name);
  }
});

Deno.test("attach: another user's process, and an agent its user cannot read", async () => {
  if (!(await nobodyCanRun(`${ROOT}bin/bpftime`)) || !(await nobodyCanRun(TARGET))) {
    console.log("skipped: needs root, and user nobody able to run the checkout");
    return;
  }
  const { seg, obj } = loadProbes(segName("user"));
  const env = { BPFTIME_GLOBAL_SHM_NAME: seg.name };
  const dir = Deno.makeTempDirSync();
  try {
    // nobody may not trace root's process.
    {
      await using t = Target.start("sleep");
      await t.ready();
      const out = await asNobody([`${ROOT}bin/bpftime`, "attach", String(t.pid)], env).output();
      const err = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 1, err);
      assert.match(err, /not permitted to trace process \d+: it runs as uid 0/);
      assert.match(err, /CAP_SYS_PTRACE/);
      assert.ok(!t.hasAgent());
    }
    // An agent only root can read, and a target running as nobody.
    {
      const agent = `${dir}/${AGENT_FILE}`;
      Deno.copyFileSync(`${ROOT}build/${AGENT_FILE}`, agent);
      Deno.chmodSync(dir, 0o755);
      Deno.chmodSync(agent, 0o600);
      await using t = new Target(
        new Deno.Command("setpriv", {
          args: ["--reuid=65534", "--regid=65534", "--clear-groups", TARGET, String(MS), "sleep"],
          stdout: "piped",
          stderr: "piped",
        }),
      );
      await t.ready();
      await refused(
        [String(t.pid)],
        { ...env, AGENT_SO: agent },
        /not readable by the target's user/,
        t,
      );
      // The segment (root's, 0600) closed to the target's user: the agent is unloaded again.
      await refused([String(t.pid)], env, /could not open segment .* unloaded/, t);
      assertUndisturbed(await t.result(), 0);
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
    const name = seg.name;
    obj.close();
    seg.close();
    Segment.remove(name);
  }
});
