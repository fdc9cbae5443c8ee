/**
 * Differential runs across engines: the same program on every engine must
 * end the same way. Valid programs (valid_program_gen) must leave identical
 * r0, context and scratch memory; arbitrary programs (program_gen) must be
 * refused alike and end alike (same value or the same fault).
 */
import { encodeInsns, type Insn } from "../../lib/isa/opcodes.ts";
import { assemble } from "../../lib/isa/assembler.ts";
import { type Engine, Vm, VmError } from "../../ffi/vm.ts";
import { FUZZ_HELPERS, randomProgram, Rng } from "../../testing/program_gen.ts";
import {
  CTX_SIZE,
  MIX_HELPER,
  mixHelper,
  UNWIND_HELPER,
  validProgramSource,
} from "../../testing/valid_program_gen.ts";

export const FUZZ_BUDGET = 10_000;

export interface DiffStats {
  programs: number;
  /** Programs that branch or compute on r10's value (a stack address each engine places
   * differently): run for crashes, not compared. */
  stackAddressDependent: number;
  refused: number;
  returned: number;
  faulted: number;
  /** Programs on which two engines disagreed (must stay 0). */
  mismatches: number;
  firstMismatch?: string;
}

/** How a run ended, with addresses masked (each engine has its own stack address). */
function outcome(vm: Vm, mem: Uint8Array<ArrayBuffer>, compareValues: boolean): string {
  try {
    const r0 = vm.exec(mem);
    if (!compareValues) return "returned";
    return `r0=0x${r0.toString(16)} mem=${mem.join(",")}`;
  } catch (e) {
    if (!(e instanceof VmError)) throw e;
    const m = e.message.replace(/0x[0-9a-f]+|\b\d{6,}\b/g, "ADDR");
    // Budgeted JIT code counts per basic block, so it may stop at another pc.
    return m.includes("instruction budget") ? "budget exhausted" : `fault: ${m}`;
  }
}

function arbitraryVm(engine: Engine): Vm {
  const vm = new Vm({ engine, instructionBudget: FUZZ_BUDGET });
  for (const id of FUZZ_HELPERS) vm.registerHelper(id, `h${id}`, { builtin: "identity" });
  vm.setUnwindHelper(5);
  return vm;
}

function validVm(engine: Engine): Vm {
  const vm = new Vm({ engine });
  vm.registerHelper(MIX_HELPER, "mix", mixHelper);
  vm.registerHelper(UNWIND_HELPER, "unwind", { builtin: "identity" });
  vm.setUnwindHelper(UNWIND_HELPER);
  return vm;
}

function compare(
  stats: DiffStats,
  engines: readonly Engine[],
  code: Uint8Array,
  newVm: (e: Engine) => Vm,
  init: Uint8Array<ArrayBuffer>,
  compareValues: boolean,
  describe: () => string,
): void {
  stats.programs++;
  const results: string[] = [];
  // One buffer for every engine: programs may compute with its address.
  const mem = new Uint8Array(init);
  for (const engine of engines) {
    using vm = newVm(engine);
    try {
      vm.load(code);
    } catch (e) {
      if (!(e instanceof VmError)) throw e;
      results.push(`refused: ${e.message}`);
      continue;
    }
    mem.set(init);
    results.push(outcome(vm, mem, compareValues));
  }
  if (results.some((r) => r !== results[0])) {
    stats.mismatches++;
    stats.firstMismatch ??= `${describe()}\n${
      engines.map((e, i) => `${e}: ${results[i]}`).join("\n")
    }`;
  }
  if (results[0].startsWith("refused")) stats.refused++;
  else if (results[0].startsWith("fault") || results[0].startsWith("budget")) stats.faulted++;
  else stats.returned++;
}

const newStats = (): DiffStats => ({
  programs: 0,
  stackAddressDependent: 0,
  refused: 0,
  returned: 0,
  faulted: 0,
  mismatches: 0,
});

/** Valid programs: values, context and stack must agree exactly. */
export function diffValidPrograms(engines: readonly Engine[], count: number, seed: number) {
  const rng = new Rng(seed);
  const stats = newStats();
  for (let i = 0; i < count; i++) {
    const source = validProgramSource(new Rng(rng.next()), { kernel: false });
    const init = Uint8Array.from({ length: CTX_SIZE }, (_, k) => (k * 131 + i) & 0xff);
    compare(stats, engines, assemble(source), validVm, init, true, () => source);
  }
  return stats;
}

/** Whether any instruction reads r10 as a value rather than as a memory base. */
export function readsFramePointerValue(insns: readonly Insn[]): boolean {
  return insns.some((i) => {
    const cls = i.opcode & 7;
    const byReg = (i.opcode & 0x08) !== 0;
    if (cls === 4 || cls === 7) return byReg && i.src === 10; // ALU source
    if (cls === 5 || cls === 6) return i.dst === 10 || (byReg && i.src === 10); // compare, callx
    if (cls === 3) return i.src === 10; // stored value
    return false;
  });
}

/** Arbitrary instruction streams: refused alike, and ending alike. */
export function diffArbitraryPrograms(engines: readonly Engine[], count: number, seed: number) {
  const rng = new Rng(seed);
  const stats = newStats();
  for (let i = 0; i < count; i++) {
    const insns = randomProgram(rng);
    const init = Uint8Array.from({ length: 64 }, (_, k) => (k * 37 + i) & 0xff);
    const before = stats.mismatches;
    compare(stats, engines, encodeInsns(insns), arbitraryVm, init, false, () => `program ${i}`);
    if (stats.mismatches > before && readsFramePointerValue(insns)) {
      stats.mismatches--;
      stats.stackAddressDependent++;
      if (stats.mismatches === 0) stats.firstMismatch = undefined;
    }
  }
  return stats;
}
