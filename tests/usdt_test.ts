/**
 * USDT probes (tests/targets/usdt_target.c, built with <sys/sdt.h>; one probe behind a semaphore):
 *
 * - a libbpf application (tests/targets/usdt_events.c: bpf_program__attach_usdt, libbpf's own
 *   <bpf/usdt.bpf.h> argument code) on the kernel, and the same binary under `bpftime load` with
 *   the target under `bpftime start`: the same records, and the semaphore set while attached and
 *   cleared after, in both.
 *
 * The kernel side needs root; it is skipped with the reason otherwise.
 */
import assert from "node:assert/strict";
import { kernelBpfAvailable } from "../testing/kernel_bpf.ts";
import { BIN } from "./server_env.ts";
import { freshSegment, killQuietly } from "./test_utils.ts";
import {
  descendantsNamed,
  Driven,
  expectedEvents,
  formatEvent,
  normaliseEvent,
  USDT_EVENTS_APP,
  USDT_PROGS,
  USDT_TARGET,
} from "./usdt_env.ts";
import { BpfObject, RingBuffer, Segment } from "../mod.ts";
import { AGENT } from "./probe_env.ts";

const ROUNDS = 3;
const PROBES = 4; /* plain, consts, frame, guarded: one record each per round */

type Side = "kernel" | "bpftime";

interface SemaphoreRun {
  events: string[];
  before: string;
  attached: string;
  after: string;
  guardedBefore: string;
  guardedAttached: string;
  guardedAfter: string;
}

/**
 * The target runs first (so the semaphore is set in a running process), the tool attaches, the
 * target fires ROUNDS rounds, the tool ends; the target's semaphore is read at each step.
 */
async function semaphoreRun(
  side: Side,
  segName: string,
  stop: "SIGTERM" | "SIGKILL" = "SIGTERM",
): Promise<SemaphoreRun> {
  const env = { BPFTIME_GLOBAL_SHM_NAME: segName };
  const target = side === "kernel"
    ? new Driven(USDT_TARGET, [])
    : new Driven(BIN, ["start", USDT_TARGET], env);
  let tool: Driven | undefined;
  try {
    const before = await target.ask("sem", /^sem=/);
    const guardedBefore = await target.ask("fire 1", /^fired/);
    tool = side === "kernel"
      ? new Driven(USDT_EVENTS_APP, [USDT_TARGET])
      : new Driven(BIN, ["load", USDT_EVENTS_APP, USDT_TARGET], env);
    await tool.waitLine(/^ready$/, 30000);
    const attached = await target.askUntil("sem", /^sem=1$/);
    const guardedAttached = await target.ask(`fire ${ROUNDS}`, /^fired/);
    const end = Date.now() + 10000;
    while (tool.lines.length < 1 + ROUNDS * PROBES && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 20));
    }
    // SIGKILL: nothing of the tool's runs; the kernel (or bpftime) removes its probes. Under
    // `bpftime load` the application is a child of the CLI: that one is killed.
    const app = side === "kernel" || stop === "SIGTERM"
      ? tool.child.pid
      : descendantsNamed(tool.child.pid, "usdt_events")[0];
    assert.ok(app, `${side}: the application's pid`);
    Deno.kill(app, stop);
    const status = await tool.close();
    if (stop === "SIGTERM") {
      assert.equal(status.code, 0, `${side}: the tool's exit; stderr:\n${tool.stderr}`);
    }
    const after = await target.askUntil("sem", /^sem=0$/);
    const guardedAfter = await target.ask("fire 1", /^fired/);
    return {
      events: tool.lines.slice(1).map(normaliseEvent),
      before,
      attached,
      after,
      guardedBefore,
      guardedAttached,
      guardedAfter,
    };
  } finally {
    if (tool) {
      killQuietly(tool.child);
      await tool.close().catch(() => {});
    }
    const st = await target.close();
    assert.equal(st.code, 0, `${side}: the target's exit; stderr:\n${target.stderr}`);
  }
}

/** `exec` in the target, then what the new image does once its agent has synced. */
async function execTarget(target: Driven) {
  const from = target.lines.length;
  await target.send("exec");
  assert.equal(await target.askUntil("sem", /^sem=1$/), "sem=1", "semaphore set in the new image");
  assert.equal(await target.ask("fire 1", /^fired/), "fired 1 guarded=1");
  assert.ok(!target.lines.slice(from).includes("exec failed"));
}

/** A fresh segment for one test, closed and removed from /dev/shm when disposed. */
function usdtSegment(what: string): Segment & Disposable {
  const seg = freshSegment(`usdt_${what}_${Deno.pid}`, 16);
  return Object.assign(seg, {
    [Symbol.dispose]() {
      seg.close();
      Segment.remove(seg.name);
    },
  });
}

const kernel = kernelBpfAvailable();
if (!kernel.ok) console.log(`skip: USDT kernel comparison: ${kernel.reason}`);

Deno.test({
  name:
    'usdt: libbpf\'s SEC("usdt") under bpftime load records what the kernel records, semaphore included',
  ignore: !kernel.ok,
  async fn() {
    using seg = usdtSegment("libbpf");
    const theirs = await semaphoreRun("kernel", seg.name);
    const ours = await semaphoreRun("bpftime", seg.name);
    console.log(`kernel:\n${theirs.events.join("\n")}\nbpftime:\n${ours.events.join("\n")}`);
    for (const [side, r] of [["kernel", theirs], ["bpftime", ours]] as const) {
      assert.equal(r.before, "sem=0", `${side}: no tool, no semaphore`);
      assert.equal(r.guardedBefore, "fired 1 guarded=0", side);
      assert.equal(r.attached, "sem=1", `${side}: set while attached`);
      assert.equal(r.guardedAttached, `fired ${ROUNDS} guarded=${ROUNDS}`, side);
      assert.equal(r.after, "sem=0", `${side}: cleared after detach`);
      assert.equal(r.guardedAfter, "fired 1 guarded=0", side);
    }
    // Rounds 2..ROUNDS+1 (round 1 fired before the tool attached): what usdt_target.c passes.
    const expected = Array.from({ length: ROUNDS }, (_, k) => expectedEvents(k + 2)).flat();
    assert.deepEqual(theirs.events, expected, "the kernel's records are what the target passed");
    assert.deepEqual(ours.events, theirs.events);
    assert.equal(seg.stats().objects, 0, "nothing left in the segment");
  },
});

Deno.test({
  name: "usdt: a killed libbpf tool's probes and semaphore go, as in the kernel",
  ignore: !kernel.ok,
  async fn() {
    using seg = usdtSegment("kill");
    const theirs = await semaphoreRun("kernel", seg.name, "SIGKILL");
    const ours = await semaphoreRun("bpftime", seg.name, "SIGKILL");
    for (const [side, r] of [["kernel", theirs], ["bpftime", ours]] as const) {
      assert.equal(r.attached, "sem=1", side);
      assert.equal(r.after, "sem=0", `${side}: cleared after the tool was killed`);
      assert.equal(r.guardedAfter, "fired 1 guarded=0", side);
    }
    assert.deepEqual(ours.events, theirs.events);
  },
});

Deno.test("usdt: our loader's attachUsdt and usdt/PATH:PROVIDER:NAME sections, arguments through <bpf/usdt.bpf.h>", async () => {
  using seg = usdtSegment("loader");
  using obj = BpfObject.open(USDT_PROGS);
  obj.load(seg);
  const target = new Driven(USDT_TARGET, [], {
    LD_PRELOAD: AGENT,
    BPFTIME_GLOBAL_SHM_NAME: seg.name,
  });
  const lines: string[] = [];
  try {
    assert.equal(await target.ask("fire 1", /^fired/), "fired 1 guarded=0");
    const probes = ["plain", "consts", "frame", "guarded"];
    const links = probes.map((name, i) =>
      obj.program("on_usdt").attachUsdt({
        path: USDT_TARGET,
        provider: "bpftime_usdt",
        name,
        cookie: BigInt(i + 1),
      })
    );
    // By its section: usdt/<build/tests/usdt_target>:bpftime_usdt:consts, cookie 0.
    const bySection = obj.program("on_consts_section").attach();
    assert.equal(await target.askUntil("sem", /^sem=1$/), "sem=1", "semaphore set once attached");
    // The follower attaches the uprobes in the same sync as the semaphore; one more round trip.
    assert.equal(await target.ask(`fire ${ROUNDS}`, /^fired/), `fired ${ROUNDS} guarded=${ROUNDS}`);
    const rb = new RingBuffer(seg, obj.map("events").id);
    const end = Date.now() + 5000;
    while (lines.length < ROUNDS * (PROBES + 1) && Date.now() < end) {
      rb.consume((r) => void lines.push(normaliseEvent(formatEvent(r))));
      await new Promise((r) => setTimeout(r, 20));
    }
    const expected = Array.from({ length: ROUNDS }, (_, k) => expectedEvents(k + 2));
    const mine = lines.filter((l) => !l.startsWith("0 "));
    assert.deepEqual(mine, expected.flat(), "attachUsdt: the arguments the target passed");
    assert.deepEqual(
      lines.filter((l) => l.startsWith("0 ")),
      expected.map((e) => e[1].replace(/^2 /, "0 ")),
      "the section-attached program: the consts probe, cookie 0",
    );
    // A new image (exec, same pid): its agent sets the semaphore of its own fresh copy again.
    await execTarget(target);
    links.forEach((l) => l.destroy());
    bySection.destroy();
    assert.equal(await target.askUntil("sem", /^sem=0$/), "sem=0", "semaphore cleared on detach");
    assert.equal(await target.ask("fire 1", /^fired/), "fired 1 guarded=0");
  } finally {
    const st = await target.close();
    assert.equal(st.code, 0, target.stderr);
  }
});
