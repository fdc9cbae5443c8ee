/** Runs bpf_conformance cases on one engine and reports each outcome. */
import { assemble } from "../lib/isa/assembler.ts";
import { fromWords, toWords } from "../lib/isa/opcodes.ts";
import { type Engine, Vm } from "../ffi/vm.ts";
import type { ConformanceCase } from "../lib/conformance/data_file.ts";

/** Helper ids the suite expects: 5 is unwind (returns r1; 0 stops the program). */
export const UNWIND_HELPER_ID = 5;

export interface CaseOutcome {
  name: string;
  passed: boolean;
  /** Why it failed (empty when passed). */
  reason: string;
}

const hex = (v: bigint) => `0x${v.toString(16)}`;

/** A VM set up the way the suite expects (unwind helper registered). */
export function conformanceVm(engine?: Engine): Vm {
  const vm = new Vm({ engine });
  vm.registerHelper(UNWIND_HELPER_ID, "unwind", { builtin: "identity" });
  vm.setUnwindHelper(UNWIND_HELPER_ID);
  return vm;
}

/** Runs raw program bytes as the suite does; returns r0 or throws the VM's error. */
export function runProgram(
  engine: Engine | undefined,
  code: Uint8Array,
  mem?: Uint8Array<ArrayBuffer>,
): bigint {
  using vm = conformanceVm(engine);
  vm.load(code);
  return vm.exec(mem && mem.length > 0 ? new Uint8Array(mem) : undefined);
}

export function runCase(c: ConformanceCase, engine?: Engine): CaseOutcome {
  const fail = (reason: string): CaseOutcome => ({ name: c.name, passed: false, reason });
  let code: Uint8Array;
  try {
    code = assemble(c.asm);
  } catch (e) {
    if (c.error !== undefined) return { name: c.name, passed: true, reason: "" };
    return fail(`assembler: ${(e as Error).message}`);
  }
  if (c.raw) {
    const words = toWords(code);
    const expected = toWords(fromWords(c.raw));
    if (words.length !== expected.length || words.some((w, i) => w !== expected[i])) {
      return fail(
        `assembled words [${words.map(hex).join(" ")}] differ from raw [${
          expected.map(hex).join(" ")
        }]`,
      );
    }
  }
  let r0: bigint;
  try {
    r0 = runProgram(engine, code, c.mem);
  } catch (e) {
    if (c.error !== undefined) return { name: c.name, passed: true, reason: "" };
    return fail((e as Error).message);
  }
  if (c.error !== undefined) return fail(`expected refusal (${c.error}), got r0=${hex(r0)}`);
  if (r0 !== c.result) return fail(`r0 = ${hex(r0)}, expected ${hex(c.result!)}`);
  return { name: c.name, passed: true, reason: "" };
}
