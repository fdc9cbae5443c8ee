/** Runs random programs through the validator and the interpreter; counts outcomes. */
import { encodeInsns } from "../../lib/isa/opcodes.ts";
import { Vm, VmError } from "../../ffi/vm.ts";
import { FUZZ_HELPERS, randomProgram, Rng } from "./program_gen.ts";

export interface FuzzStats {
  programs: number;
  refused: number;
  returned: number;
  faulted: number;
  /** Programs whose two runs on equal inputs ended differently (must stay 0). */
  inconsistent: number;
}

export const FUZZ_BUDGET = 10_000;

function newVm(): Vm {
  const vm = new Vm({ instructionBudget: FUZZ_BUDGET });
  for (const id of FUZZ_HELPERS) vm.registerHelper(id, `h${id}`, { builtin: "identity" });
  vm.setUnwindHelper(5);
  return vm;
}

/**
 * The outcome class of a run: returned, or the fault with its numbers
 * masked. Values are not compared: a program may legitimately compute with
 * its stack or context address, which can differ between two runs.
 */
function outcome(vm: Vm, mem: Uint8Array<ArrayBuffer>): string {
  try {
    vm.exec(mem);
    return "returned";
  } catch (e) {
    if (!(e instanceof VmError)) throw e;
    return `fault: ${e.message.replace(/0x[0-9a-f]+|\b\d+\b/g, "N")}`;
  }
}

export function fuzz(count: number, seed: number): FuzzStats {
  const rng = new Rng(seed);
  const stats: FuzzStats = {
    programs: 0,
    refused: 0,
    returned: 0,
    faulted: 0,
    inconsistent: 0,
  };
  for (let i = 0; i < count; i++) {
    const code = encodeInsns(randomProgram(rng));
    stats.programs++;
    using vm = newVm();
    try {
      vm.load(code);
    } catch (e) {
      if (!(e instanceof VmError)) throw e;
      stats.refused++;
      continue;
    }
    const init = Uint8Array.from({ length: 64 }, (_, k) => (k * 37 + i) & 0xff);
    const mem = new Uint8Array(init);
    const first = outcome(vm, mem);
    mem.set(init);
    const second = outcome(vm, mem);
    if (first !== second) stats.inconsistent++;
    if (first.startsWith("fault")) stats.faulted++;
    else stats.returned++;
  }
  return stats;
}
