/**
 * Uprobes and uretprobes in userspace: a target started with the agent
 * preloaded runs the probes of links stored in the segment, and its own
 * results stay right.
 */
import assert from "node:assert/strict";
import { ASM_LIB, cookieStats, loadProbes, runTraced, TARGETS, tidCounts } from "./probe_env.ts";

const LIBC = "libc.so.6";

Deno.test("uprobe: malloc counts equal the target's own, one thread", async () => {
  const { seg, obj } = loadProbes("t_up_malloc1");
  using _ = seg;
  using __ = obj;
  obj.program("count_by_tid").attachUprobe({ path: LIBC, func: "malloc" });
  const r = await runTraced(seg, TARGETS.pie, ["malloc", "100000", "1"]);
  assert.equal(r.code, 0, r.stderr);
  const counts = tidCounts(obj);
  assert.equal(counts.get(r.json.tids[0]), 100000n);
});

Deno.test("uprobe: malloc counts equal the target's own, 8 threads x 100,000", async () => {
  const { seg, obj } = loadProbes("t_up_malloc8");
  using _ = seg;
  using __ = obj;
  obj.program("count_by_tid").attachUprobe({ path: LIBC, func: "malloc" });
  const r = await runTraced(seg, TARGETS.pie, ["malloc", "100000", "8"]);
  assert.equal(r.code, 0, r.stderr);
  const counts = tidCounts(obj);
  assert.equal(r.json.tids.length, 8);
  for (const tid of r.json.tids) assert.equal(counts.get(tid), 100000n, `thread ${tid}`);
});

const FUNCS = ["rip_first", "jmp_first", "call_first", "jcc_first", "add"] as const;

for (const [kind, target] of Object.entries(TARGETS)) {
  Deno.test(`uprobe: functions starting with RIP-relative, jmp, call, jcc (${kind})`, async () => {
    const { seg, obj } = loadProbes(`t_up_funcs_${kind}`);
    using _ = seg;
    using __ = obj;
    FUNCS.forEach((func, i) => {
      const path = kind === "lib" && func !== "add" ? ASM_LIB : target;
      obj.program("on_entry").attachUprobe({ path, func, cookie: BigInt(i) });
      obj.program("on_return").attachUprobe({ path, func, cookie: BigInt(i), retprobe: true });
    });
    const r = await runTraced(seg, target, ["funcs", "20000"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(r.stderr, "");
    FUNCS.forEach((func, i) => {
      const s = cookieStats(obj, i);
      assert.equal(s.calls, 20000n, `${func} entries`);
      assert.equal(s.retCalls, 20000n, `${func} returns`);
      assert.equal(
        s.argSum,
        BigInt(func === "add" ? r.json.add_args : r.json.args),
        `${func} first argument`,
      );
      assert.equal(s.retSum, BigInt(r.json[func]), `${func} return values`);
    });
  });
}

Deno.test("uretprobe: entries and returns match under recursion in 8 threads", async () => {
  const { seg, obj } = loadProbes("t_up_recurse");
  using _ = seg;
  using __ = obj;
  obj.program("on_entry").attachUprobe({ path: TARGETS.pie, func: "sum_down", cookie: 3n });
  obj.program("on_return").attachUprobe({
    path: TARGETS.pie,
    func: "sum_down",
    cookie: 3n,
    retprobe: true,
  });
  const r = await runTraced(seg, TARGETS.pie, ["recurse", "2000", "30", "8"]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const s = cookieStats(obj, 3);
  assert.equal(s.calls, BigInt(r.json.calls));
  assert.equal(s.retCalls, BigInt(r.json.calls));
  assert.equal(s.retSum, BigInt(r.json.rets));
});

Deno.test("uretprobe: frames left by longjmp do not disturb the outer return probes", async () => {
  const { seg, obj } = loadProbes("t_up_longjmp");
  using _ = seg;
  using __ = obj;
  obj.program("on_return").attachUprobe({
    path: TARGETS.pie,
    func: "dive",
    cookie: 1n,
    retprobe: true,
  });
  obj.program("on_return").attachUprobe({
    path: TARGETS.pie,
    func: "jumper",
    cookie: 2n,
    retprobe: true,
  });
  const r = await runTraced(seg, TARGETS.pie, ["longjmp", "5000"]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(cookieStats(obj, 1).retCalls, 0n); // every dive frame is left by longjmp
  const outer = cookieStats(obj, 2);
  assert.equal(outer.retCalls, 5000n);
  assert.equal(outer.retSum, 5000n * 5n);
});

Deno.test("uprobe: a probe on a function shorter than the jump is refused, the target runs on", async () => {
  const { seg, obj } = loadProbes("t_up_short");
  using _ = seg;
  using __ = obj;
  obj.program("on_entry").attachUprobe({ path: TARGETS.pie, func: "too_short", cookie: 1n });
  obj.program("on_entry").attachUprobe({ path: TARGETS.pie, func: "loop_back", cookie: 2n });
  const r = await runTraced(seg, TARGETS.pie, ["short"]);
  assert.equal(r.code, 0, r.stderr);
  assert(/too_short|shorter than the 5-byte patch/.test(r.stderr), r.stderr);
  assert(/jumps into the bytes the hook would replace/.test(r.stderr), r.stderr);
  assert.equal(cookieStats(obj, 1).calls, 0n);
});

Deno.test("uprobe: a library dlopen'ed after start is probed as soon as it is loaded", async () => {
  const { seg, obj } = loadProbes("t_up_dlopen");
  using _ = seg;
  using __ = obj;
  obj.program("on_entry").attachUprobe({ path: ASM_LIB, func: "rip_first", cookie: 6n });
  const r = await runTraced(seg, TARGETS.pie, ["dlopen", "5000", ASM_LIB]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(cookieStats(obj, 6).calls, 5000n);
});

Deno.test("uprobe: an IFUNC (glibc strlen) is probed at the implementation this machine selects", async () => {
  const { seg, obj } = loadProbes("t_up_ifunc");
  using _ = seg;
  using __ = obj;
  obj.program("count_by_tid").attachUprobe({ path: LIBC, func: "strlen" });
  const r = await runTraced(seg, TARGETS.pie, ["strlen", "20000"]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(r.stderr, "");
  assert.equal(tidCounts(obj).get(r.json.tid), 20000n);
});

Deno.test("uprobe: hooks survive fork; parent and child are both counted", async () => {
  const { seg, obj } = loadProbes("t_up_fork");
  using _ = seg;
  using __ = obj;
  obj.program("on_entry").attachUprobe({ path: TARGETS.pie, func: "add", cookie: 8n });
  const r = await runTraced(seg, TARGETS.pie, ["fork", "3000"]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(r.json.child_ok, 1);
  assert.equal(cookieStats(obj, 8).calls, 6000n);
});

Deno.test("uprobe: floating-point arguments and results (xmm registers) pass through probes intact", async () => {
  const { seg, obj } = loadProbes("t_up_float");
  using _ = seg;
  using __ = obj;
  obj.program("count_by_tid").attachUprobe({ path: TARGETS.pie, func: "scale" });
  obj.program("on_return").attachUprobe({
    path: TARGETS.pie,
    func: "scale",
    cookie: 10n,
    retprobe: true,
  });
  const r = await runTraced(seg, TARGETS.pie, ["funcs", "5000"]);
  assert.equal(r.code, 0, r.stdout + r.stderr); // the target checks every result of scale()
  assert.equal(cookieStats(obj, 10).retCalls, 5000n);
});

Deno.test("uprobe: programs that never leave JIT code (run without saving vectors) keep xmm intact", async () => {
  const { seg, obj } = loadProbes("t_up_float_clean");
  using _ = seg;
  using __ = obj;
  obj.program("do_nothing").attachUprobe({ path: TARGETS.pie, func: "scale" });
  obj.program("do_nothing").attachUprobe({ path: TARGETS.pie, func: "scale", retprobe: true });
  obj.program("do_nothing").attachUprobe({ path: TARGETS.pie, func: "sum_down" });
  obj.program("do_nothing").attachUprobe({ path: TARGETS.pie, func: "sum_down", retprobe: true });
  const funcs = await runTraced(seg, TARGETS.pie, ["funcs", "5000"]);
  assert.equal(funcs.code, 0, funcs.stdout + funcs.stderr); // the target checks every result of scale()
  const rec = await runTraced(seg, TARGETS.pie, ["recurse", "200", "30", "4"]);
  assert.equal(rec.code, 0, rec.stdout + rec.stderr);
});
