/** Options shared by several commands. */
import { Option } from "commander";
import { ENGINES } from "../../mod.ts";

/**
 * `--vm interp|jit|llvm`. Without it the runtime decides: the JIT, or what
 * BPFTIME_DISABLE_JIT / BPFTIME_VM_NAME say.
 */
export function engineOption(): Option {
  return new Option("--vm <engine>", "execution engine (default: jit)").choices([...ENGINES]);
}
