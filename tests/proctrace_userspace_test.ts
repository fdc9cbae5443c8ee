/**
 * The process tracer in userspace mode: the same bpf/proctrace.bpf.o loaded into a segment, the
 * scripted tree run under the agent, and the events compared with kernel mode's (pids renamed
 * by order of appearance, ppids, argv, exit codes). Skips, saying what is missing, while the
 * agent cannot raise sched:sched_process_exec/exit.
 */
import assert from "node:assert/strict";
import { ProcessTracer, Segment } from "../mod.ts";
import { bpftime } from "./test_utils.ts";
import { normalized, parseLines, TREE_EVENTS, TREE_SCRIPT } from "./proctrace_events.ts";

/** Why userspace mode cannot run here, or undefined. */
function missing(): string | undefined {
  try {
    const t = ProcessTracer.userspace(["/bin/true"], () => {});
    t.exited!.then(() => t.stop());
    return undefined;
  } catch (e) {
    const m = (e as Error).message;
    if (/category 'sched' cannot run in userspace|unknown helper/.test(m)) return m;
    throw e;
  }
}

const why = missing();
if (why) {
  console.log(
    `skip: userspace proctrace needs the agent to raise sched:sched_process_exec/exit and bpf_get_current_task ` +
      `(branch usertp): ${why}`,
  );
}

Deno.test({
  name: "proctrace userspace: the scripted tree gives the same events as kernel mode",
  ignore: why !== undefined,
  async fn() {
    const user = await bpftime(["proctrace", "--userspace", "--", TREE_SCRIPT]);
    assert.equal(user.code, 5, user.stderr);
    const userEvents = normalized(parseLines(user.stdout));
    assert.deepEqual(userEvents, TREE_EVENTS);
    if (Deno.uid() === 0) {
      const kernel = await bpftime(["proctrace", "--", TREE_SCRIPT]);
      assert.equal(kernel.code, 5, kernel.stderr);
      assert.deepEqual(userEvents, normalized(parseLines(kernel.stdout)));
    } else {
      console.log("kernel half skipped: needs root");
    }
    assert.deepEqual(
      [...Deno.readDirSync("/dev/shm")].filter((e) => e.name.startsWith("proctrace_")),
      [],
    );
  },
});

Deno.test("proctrace userspace: --userspace without a command, or with -p, is refused", async () => {
  const none = await bpftime(["proctrace", "--userspace"]);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /--userspace needs a command/);
  const pid = await bpftime(["proctrace", "--userspace", "-p", "1", "--", "/bin/true"]);
  assert.equal(pid.code, 1);
  assert.match(pid.stderr, /-p is for kernel mode/);
});

Deno.test("mmapable array: mmapData() shows the values in place in the segment", () => {
  const name = `proctrace_mmap_${Deno.pid}`;
  using seg = Segment.open(name, { create: true, sizeMb: 4 });
  try {
    const map = seg.createMap({
      type: "array",
      name: "pages",
      keySize: 4,
      valueSize: 4096,
      maxEntries: 4,
      flags: 0x400,
    });
    const data = map.mmapData();
    assert.equal(data.length, 4 * 4096);
    const key = new Uint8Array([2, 0, 0, 0]);
    map.update(key, new Uint8Array(4096).fill(7));
    assert.equal(data[2 * 4096], 7);
    data[2 * 4096 + 1] = 9;
    assert.equal(map.lookup(key)![1], 9);
    const plain = seg.createMap({
      type: "array",
      name: "plain",
      keySize: 4,
      valueSize: 8,
      maxEntries: 1,
    });
    assert.throws(() => plain.mmapData(), /not a BPF_F_MMAPABLE array/);
  } finally {
    Segment.remove(name);
  }
});
