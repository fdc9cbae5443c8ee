/**
 * The probe fast path (csrc/agent/probe_fast.h): hooks whose only program the
 * stubs run themselves, and the return stubs that push and pop the shadow
 * stack in assembly. Each test tries to break them: every register and the
 * flags (DF and OF included) checked after every probed call, the registers
 * the programs read summed and compared, many threads, a profiling signal
 * whose handler calls the probed functions while probes run, fork halfway
 * through a probed loop, and programs that fault on the fast path.
 */
import assert from "node:assert/strict";
import { BpfObject } from "../api/bpf_object.ts";
import { Segment } from "../ffi/shm.ts";
import { runTraced } from "./probe_env.ts";
import { freshSegment, ROOT } from "./test_utils.ts";

const TARGET = `${ROOT}build/tests/probe_fast_target`;
const OBJ = `${ROOT}build/tests/probe_fast.bpf.o`;

function u64(v: Uint8Array, at = 0): bigint {
  return new DataView(v.buffer, v.byteOffset).getBigUint64(at, true);
}

/** The programs attached to their functions of the target, on a fresh segment. */
function setup(name: string, fault = false): { seg: Segment; obj: BpfObject } {
  const seg = freshSegment(`probe3_${name}_${Deno.pid}`, 8);
  const obj = BpfObject.open(OBJ);
  obj.load(seg);
  if (fault) {
    obj.program("fast_fault").attachUprobe({ path: TARGET, func: "fast_probed_fault" });
    obj.program("fast_fault_ctx").attachUprobe({ path: TARGET, func: "fast_probed_fault_ctx" });
  } else {
    obj.program("fast_ctx").attachUprobe({ path: TARGET, func: "fast_probed" });
    obj.program("fast_noctx").attachUprobe({ path: TARGET, func: "fast_probed_noctx" });
    obj.program("fast_ret").attachUprobe({ path: TARGET, func: "fast_probed_ret", retprobe: true });
  }
  return { seg, obj };
}

/** The programs' global variables (.bss), by name. */
function globals(obj: BpfObject): Record<string, bigint> {
  const bss = obj.map("probe_fa.bss").lookup(new Uint8Array(4))!;
  const names = [
    "ctx_calls",
    "di_sum",
    "r15_sum",
    "flags_bad",
    "noctx_calls",
    "ret_calls",
    "ret_sum",
    "fault_calls",
    "fault_ctx_calls",
  ];
  return Object.fromEntries(names.map((n, i) => [n, u64(bss, 8 * i)]));
}

Deno.test("probe fast path: registers, flags (DF, OF) and the registers programs read, one thread", async () => {
  const { seg, obj } = setup("regs");
  using _ = seg;
  using __ = obj;
  const r = await runTraced(seg, TARGET, ["regs", "100000"]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(r.json.bad, 0, r.stderr);
  const g = globals(obj);
  assert.equal(g.ctx_calls, 100000n);
  assert.equal(g.noctx_calls, 100000n);
  assert.equal(g.ret_calls, 100000n);
  assert.equal(g.di_sum, BigInt(r.json.di_sum));
  assert.equal(g.r15_sum, BigInt(r.json.r15_sum));
  assert.equal(g.ret_sum, BigInt(r.json.ret_sum));
  assert.equal(g.flags_bad, 0n);
  assert.equal(r.stderr, "");
});

Deno.test("probe fast path: 8 threads, every call counted, registers kept", async () => {
  const { seg, obj } = setup("threads");
  using _ = seg;
  using __ = obj;
  const r = await runTraced(seg, TARGET, ["threads", "50000"]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(r.json.bad, 0, r.stderr);
  const g = globals(obj);
  assert.equal(g.ctx_calls, 400000n);
  assert.equal(g.noctx_calls, 400000n);
  assert.equal(g.ret_calls, 400000n);
});

Deno.test("probe fast path: a signal handler calls the probed functions while probes run", async () => {
  const { seg, obj } = setup("signal");
  using _ = seg;
  using __ = obj;
  const r = await runTraced(seg, TARGET, ["signal", "2000000"]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(r.json.bad, 0, r.stderr);
  assert(r.json.handler_calls > 0, "no profiling signal arrived");
  const g = globals(obj);
  const main = BigInt(r.json.calls), all = main + BigInt(r.json.handler_calls);
  // A handler's call is skipped when it lands inside a probe's run (as the kernel does), counted otherwise.
  for (const k of ["ctx_calls", "noctx_calls", "ret_calls"]) {
    assert(g[k] >= main && g[k] <= all, `${k} ${g[k]} not in [${main}, ${all}]`);
  }
});

Deno.test("probe fast path: fork halfway through a probed loop; parent and child counted, registers kept", async () => {
  const { seg, obj } = setup("fork");
  using _ = seg;
  using __ = obj;
  const r = await runTraced(seg, TARGET, ["fork", "20000"]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(r.json.bad, 0, r.stderr);
  const g = globals(obj);
  assert.equal(g.ctx_calls, 30000n);
  assert.equal(g.noctx_calls, 30000n);
  assert.equal(g.ret_calls, 30000n);
});

Deno.test("probe fast path: programs that fault every 4th run are logged once each; registers kept", async () => {
  const { seg, obj } = setup("fault", true);
  using _ = seg;
  using __ = obj;
  const r = await runTraced(seg, TARGET, ["fault", "20000"]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(r.json.bad, 0, r.stderr);
  const g = globals(obj);
  assert.equal(g.fault_calls, 20000n);
  assert.equal(g.fault_ctx_calls, 20000n);
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 2, r.stderr);
  for (const l of lines) assert.match(l, /link \d+: .*\(logged once; the process goes on\)/);
});
