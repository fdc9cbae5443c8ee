/** The LLVM tier is loaded only by processes that ask for it. */
import assert from "node:assert/strict";
import { DENO, ROOT } from "./test_utils.ts";

const PROBE = `
import { Vm } from "${ROOT}ffi/vm.ts";
import { assemble } from "${ROOT}lib/isa/assembler.ts";
const mapsLlvm = () => Deno.readTextFileSync("/proc/self/maps").includes("libLLVM");
const run = (engine) => { using vm = new Vm({ engine }); vm.load(assemble("mov %r0, 7\\nexit")); return vm.exec(); };
console.log(run("jit"), run("interp"), mapsLlvm(), run("llvm"), mapsLlvm());
`;

Deno.test("llvm: processes that do not use the LLVM tier never map LLVM", async () => {
  const out = await new Deno.Command(DENO, {
    args: ["eval", "--quiet", PROBE],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  assert.equal(text, "7n 7n false 7n true");
});

Deno.test("llvm: a missing tier library is a clear error, not a crash", async () => {
  const out = await new Deno.Command(DENO, {
    args: ["eval", "--quiet", PROBE],
    env: { BPFTIME_LLVM_LIB: "/nonexistent/libbpftime-llvm.so" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.notEqual(out.code, 0);
  assert.match(new TextDecoder().decode(out.stderr), /cannot load the LLVM tier: .*nonexistent/);
});
