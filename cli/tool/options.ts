/** Options shared by several commands. */
import { Option } from "commander";
import { ENGINES } from "../../ffi/vm.ts";

/** `--vm interp|jit|llvm`; the default follows BPFTIME_VM_NAME, else the interpreter. */
export function engineOption(): Option {
  return new Option("--vm <engine>", "execution engine")
    .choices([...ENGINES])
    .default(Deno.env.get("BPFTIME_VM_NAME") ?? "interp");
}
