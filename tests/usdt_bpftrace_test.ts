/**
 * bpftrace `usdt:` probes on tests/targets/usdt_target.c: bpftrace on the kernel, and the same
 * bpftrace under `bpftime load` with the target under `bpftime start` (bpftrace reads the notes,
 * computes the arguments in its own generated code, and sets the semaphore through
 * perf_event_open's ref_ctr_offset). The printed lines and the semaphore's life must agree.
 *
 * Root only (bpftrace on the kernel is the reference), with bpftrace installed.
 */
import assert from "node:assert/strict";
import { kernelBpfAvailable } from "../testing/kernel_bpf.ts";
import { Segment } from "../mod.ts";
import { BIN } from "./server_env.ts";
import { freshSegment, killQuietly } from "./test_utils.ts";
import { descendantsNamed, Driven, USDT_TARGET } from "./usdt_env.ts";

const T = USDT_TARGET;
const SCRIPT = `
usdt:${T}:bpftime_usdt:plain { printf("plain %d %d %d %lld %s\\n", arg0, arg1, arg2, arg3, str(arg4)); }
usdt:${T}:bpftime_usdt:consts { printf("consts %d %d %lld\\n", arg0, arg1, arg2); }
usdt:${T}:bpftime_usdt:frame { printf("frame %d %lld %d\\n", arg0, arg1, arg2); }
usdt:${T}:bpftime_usdt:guarded { printf("guarded %d %d\\n", arg0, arg1); }
`;
const ROUNDS = 3;

function skipReason(): string | null {
  const kernel = kernelBpfAvailable();
  if (!kernel.ok) return kernel.reason;
  const r = new Deno.Command("sh", { args: ["-c", "command -v bpftrace"] }).outputSync();
  return r.code === 0 ? null : "bpftrace is not installed";
}
const skip = skipReason();
if (skip) console.log(`skip: bpftrace usdt test: ${skip}`);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Run {
  lines: string[];
  attached: string;
  after: string;
  guardedAfter: string;
}

async function run(side: "kernel" | "bpftime", seg: string): Promise<Run> {
  // bpftrace's perf buffers must have the 16 pages bpftime's perf rings have (printf).
  const env = { BPFTIME_GLOBAL_SHM_NAME: seg };
  const target = side === "kernel" ? new Driven(T, []) : new Driven(BIN, ["start", T], env);
  const tracer = side === "kernel"
    ? new Driven("bpftrace", ["-e", SCRIPT], env)
    : new Driven(BIN, ["load", "bpftrace", "-e", SCRIPT], env);
  try {
    assert.equal(await target.ask("sem", /^sem=/), "sem=0");
    await tracer.waitLine(/^Attaching 4 probes\.\.\.$/, 30000);
    const bt = side === "kernel"
      ? tracer.child.pid
      : descendantsNamed(tracer.child.pid, "bpftrace")[0];
    assert.ok(bt, `${side}: bpftrace's pid`);
    // Attached when its fds (one perf event per probe) stop growing for a second.
    const fds = () => [...Deno.readDirSync(`/proc/${bt}/fd`)].length;
    for (let last = -1, same = 0, i = 0; same < 10; i++) {
      if (i > 300) throw new Error(`bpftrace did not finish attaching; stderr:\n${tracer.stderr}`);
      await sleep(100);
      const n = fds();
      same = n === last ? same + 1 : 0;
      last = n;
    }
    const attached = await target.askUntil("sem", /^sem=1$/);
    assert.equal(await target.ask(`fire ${ROUNDS}`, /^fired/), `fired ${ROUNDS} guarded=${ROUNDS}`);
    const end = Date.now() + 10000;
    const count = () => tracer.lines.filter((l) => /^(plain|consts|frame|guarded) /.test(l)).length;
    while (count() < 4 * ROUNDS && Date.now() < end) await sleep(50);
    // SIGINT until it exits (bounded): a test must not hang on a signal not acted on.
    const exited = tracer.child.status;
    for (let i = 0; i < 10; i++) {
      try {
        Deno.kill(bt, "SIGINT");
      } catch { /* exited */ }
      if (await Promise.race([exited.then(() => true), sleep(2000).then(() => false)])) break;
    }
    const status = await tracer.close();
    assert.equal(status.code, 0, `${side}: bpftrace's exit; stderr:\n${tracer.stderr}`);
    const after = await target.askUntil("sem", /^sem=0$/);
    const guardedAfter = await target.ask("fire 1", /^fired/);
    return {
      lines: tracer.lines.filter((l) => /^(plain|consts|frame|guarded) /.test(l)),
      attached,
      after,
      guardedAfter,
    };
  } finally {
    killQuietly(tracer.child);
    await tracer.close().catch(() => {});
    await target.close();
  }
}

Deno.test({
  name: "usdt: bpftrace usdt: probes print what the kernel's print, semaphore set and cleared",
  ignore: skip !== null,
  async fn() {
    const seg = freshSegment(`usdt_bt_${Deno.pid}`, 32);
    try {
      const theirs = await run("kernel", seg.name);
      const ours = await run("bpftime", seg.name);
      console.log(`kernel:\n${theirs.lines.join("\n")}\nbpftime:\n${ours.lines.join("\n")}`);
      assert.equal(theirs.lines.length, 4 * ROUNDS);
      assert.ok(theirs.lines.includes("plain 1 -1 60001 -1000000007 bravo"), "round 1's plain");
      assert.ok(theirs.lines.includes("frame 2 17179869184 -6"), "round 2's frame");
      assert.ok(theirs.lines.includes("consts 5 -7 4294967296"));
      for (const [side, r] of [["kernel", theirs], ["bpftime", ours]] as const) {
        assert.equal(r.attached, "sem=1", side);
        assert.equal(r.after, "sem=0", side);
        assert.equal(r.guardedAfter, "fired 1 guarded=0", side);
      }
      assert.deepEqual(ours.lines, theirs.lines);
      assert.equal(seg.stats().objects, 0, "bpftrace's objects are gone from the segment");
    } finally {
      seg.close();
      Segment.remove(seg.name);
    }
  },
});
