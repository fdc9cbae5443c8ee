/**
 * bpf_get_current_pid_tgid as compiled code reads it (a per-thread cache, checked against a
 * word the kernel wipes in forked children): always the kernel's ids, in the main thread, in
 * other threads, in children of fork(), of a raw fork system call and of clone(), and across
 * forks in a probed loop. The probes' programs also call a helper through the agent's gate
 * (they run without the vector registers saved): the target checks xmm0-15 around and inside
 * a probed function, as do programs calling only vector-safe helpers (get_attach_cookie,
 * get_func_ip). A syscall tracepoint sees a vfork child's own ids, and its parent's after. See
 * tests/bpf/pid_checks.bpf.c and tests/targets/pid_target.c.
 */
import assert from "node:assert/strict";
import { BpfObject } from "../api/bpf_object.ts";
import { runTraced } from "./probe_env.ts";
import { freshSegment, ROOT } from "./test_utils.ts";

const TARGET = `${ROOT}build/tests/pid_target`;
const PROBES = `${ROOT}build/tests/pid_checks.bpf.o`;

function counts(obj: BpfObject, map: string): bigint[] {
  const out: bigint[] = [];
  for (let i = 0; i < 4; i++) {
    const key = new Uint8Array(4);
    new DataView(key.buffer).setUint32(0, i, true);
    const v = obj.map(map).lookup(key)!;
    out.push(new DataView(v.buffer, v.byteOffset).getBigUint64(0, true));
  }
  return out;
}
const idChecks = (obj: BpfObject) => counts(obj, "id_checks");
const cookieCounts = (obj: BpfObject) => counts(obj, "by_cookie");

function lastSeen(obj: BpfObject): string {
  const rows = [];
  for (const [, v] of obj.map("last_seen").entries()) {
    const d = new DataView(v.buffer, v.byteOffset);
    rows.push(
      `got ${d.getBigUint64(0, true).toString(16)} want ${d.getBigUint64(8, true).toString(16)}`,
    );
  }
  return rows.join("; ");
}

async function checked(name: string, func: string, args: string[]) {
  using seg = freshSegment(`count_pid_${name}_${Deno.pid}`, 8);
  using obj = BpfObject.open(PROBES);
  obj.load(seg);
  obj.program("ids_entry").attachUprobe({ path: TARGET, func });
  obj.program("ids_return").attachUprobe({ path: TARGET, func, retprobe: true });
  obj.program("cookie_count").attachUprobe({ path: TARGET, func, cookie: 2n });
  obj.program("cookie_count").attachUprobe({ path: TARGET, func, cookie: 3n, retprobe: true });
  const r = await runTraced(seg, TARGET, args);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const [entryOk, entryBad, retOk, retBad] = idChecks(obj);
  assert.equal(entryBad, 0n, `entry mismatches (${lastSeen(obj)})`);
  assert.equal(retBad, 0n, `return mismatches (${lastSeen(obj)})`);
  assert.equal(entryOk, BigInt(r.json.calls));
  assert.equal(retOk, BigInt(r.json.calls));
  assert.deepEqual(cookieCounts(obj), [0n, 0n, BigInt(r.json.calls), BigInt(r.json.calls)]);
  return r.json;
}

Deno.test("pid_tgid from compiled code: the kernel's ids in the main thread and 4 others", async () => {
  await checked("threads", "probed_ids", ["threads", "20000", "4"]);
});

Deno.test("pid_tgid from compiled code: children of fork, a raw fork syscall, clone, and a thread in a child", async () => {
  await checked("fork", "probed_ids", ["fork", "2000"]);
});

Deno.test("pid_tgid from compiled code: forks in a probed loop", async () => {
  await checked("forkloop", "probed_ids", ["forkloop", "200"]);
});

Deno.test("programs calling a helper through the gate, or vector-safe helpers, keep xmm0-15 at a probed function's entry and return", async () => {
  const out = await checked("xmm", "xmm_probed", ["xmm", "20000"]);
  assert.equal(out.xmm_bad, 0);
});

Deno.test("pid_tgid from compiled code: a syscall tracepoint in a vfork child, and in its parent after", async () => {
  using seg = freshSegment(`count_pid_vfork_${Deno.pid}`, 8);
  using obj = BpfObject.open(PROBES);
  obj.load(seg);
  obj.program("tgkill_ids").attach();
  const r = await runTraced(seg, TARGET, ["vfork", "300"]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  // The child shares its parent's memory, the ids' cache too: the hooks' return from vfork
  // forgets them in the child and again in the parent.
  assert.deepEqual(counts(obj, "tgkill_checks"), [BigInt(r.json.calls), 0n, 0n, 0n]);
});
