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
import { freshSegment } from "./test_utils.ts";
import { Driven, normaliseEvent, USDT_EVENTS_APP, USDT_TARGET } from "./usdt_env.ts";

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
async function semaphoreRun(side: Side, segName: string): Promise<SemaphoreRun> {
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
    tool.child.kill("SIGTERM");
    const status = await tool.close();
    assert.equal(status.code, 0, `${side}: the tool's exit; stderr:\n${tool.stderr}`);
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
      try {
        tool.child.kill("SIGKILL");
      } catch { /* ended */ }
      await tool.close().catch(() => {});
    }
    const st = await target.close();
    assert.equal(st.code, 0, `${side}: the target's exit; stderr:\n${target.stderr}`);
  }
}

const kernel = kernelBpfAvailable();
if (!kernel.ok) console.log(`skip: USDT kernel comparison: ${kernel.reason}`);

Deno.test({
  name:
    'usdt: libbpf\'s SEC("usdt") under bpftime load records what the kernel records, semaphore included',
  ignore: !kernel.ok,
  async fn() {
    const seg = freshSegment(`usdt_libbpf_${Deno.pid}`, 16);
    using _ = seg;
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
    assert.equal(theirs.events.length, ROUNDS * PROBES, "the kernel saw every probe");
    assert.deepEqual(ours.events, theirs.events);
    // What the target passed (usdt_target.c), in the first round after attaching (round 2).
    assert.ok(
      theirs.events.includes(
        "1 cnt=5 args=2,-2,60002,-2000000014,PTR,0 rc=0,0,0,0,0,-2 str=charlie",
      ),
    );
    assert.ok(theirs.events.includes("2 cnt=3 args=5,-7,4294967296,0,0,0 rc=0,0,0,-2,-2,-2 str="));
    assert.ok(theirs.events.includes("3 cnt=3 args=2,17179869184,-6,0,0,0 rc=0,0,0,-2,-2,-2 str="));
    assert.ok(theirs.events.includes("4 cnt=2 args=2,1,0,0,0,0 rc=0,0,-2,-2,-2,-2 str="));
    assert.equal(seg.stats().objects, 0, "nothing left in the segment");
  },
});
