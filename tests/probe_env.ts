/** Shared pieces of the uprobe tests: the agent, the traced targets, and reading probe counts. */
import { BpfObject } from "../api/bpf_object.ts";
import { Segment } from "../ffi/shm.ts";
import { libraryPath } from "../ffi/library_path.ts";
import { freshSegment, ROOT } from "./test_utils.ts";

export const AGENT = libraryPath("agent");
export const TARGETS = {
  pie: `${ROOT}build/tests/probe_target`,
  nopie: `${ROOT}build/tests/probe_target_nopie`,
  lib: `${ROOT}build/tests/probe_target_lib`,
};
export const ASM_LIB = `${ROOT}build/tests/libprobe_asm.so`;
export const PROBES = `${ROOT}build/tests/probe_counts.bpf.o`;

export interface TargetRun {
  code: number;
  stdout: string;
  stderr: string;
  // deno-lint-ignore no-explicit-any
  json: any;
}

/** Runs a target with the agent on segment `seg`. */
export async function runTraced(
  seg: Segment,
  target: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<TargetRun> {
  const out = await new Deno.Command(target, {
    args,
    env: { LD_PRELOAD: AGENT, BPFTIME_GLOBAL_SHM_NAME: seg.name, ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  const stdout = dec.decode(out.stdout);
  const last = stdout.trim().split("\n").pop() ?? "";
  let json;
  try {
    json = JSON.parse(last);
  } catch { /* not JSON: the caller's assertion on code or stdout tells */ }
  return { code: out.code, stdout, stderr: dec.decode(out.stderr), json };
}

/** A fresh segment with the test probes loaded. */
export function loadProbes(name: string): { seg: Segment; obj: BpfObject } {
  const seg = freshSegment(name, 8);
  const obj = BpfObject.open(PROBES);
  obj.load(seg);
  return { seg, obj };
}

export interface CookieStats {
  calls: bigint;
  argSum: bigint;
  retCalls: bigint;
  retSum: bigint;
}

/** The `by_cookie` slot of a probe (see tests/bpf/probe_counts.bpf.c); sums are signed. */
export function cookieStats(obj: BpfObject, cookie: number): CookieStats {
  const key = new Uint8Array(4);
  new DataView(key.buffer).setUint32(0, cookie, true);
  const v = obj.map("by_cookie").lookup(key)!;
  const d = new DataView(v.buffer, v.byteOffset);
  return {
    calls: d.getBigUint64(0, true),
    argSum: d.getBigInt64(8, true),
    retCalls: d.getBigUint64(16, true),
    retSum: d.getBigInt64(24, true),
  };
}

/** The `by_tid` map as tid -> count. */
export function tidCounts(obj: BpfObject): Map<number, bigint> {
  const out = new Map<number, bigint>();
  for (const [k, v] of obj.map("by_tid").entries()) {
    out.set(
      new DataView(k.buffer, k.byteOffset).getUint32(0, true),
      new DataView(v.buffer, v.byteOffset).getBigUint64(0, true),
    );
  }
  return out;
}
