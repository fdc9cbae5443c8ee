/** The default engine follows bpftime's environment variables. */
import assert from "node:assert/strict";
import { Vm } from "../ffi/vm.ts";

function engineWith(env: Record<string, string | undefined>): string {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, Deno.env.get(k)]));
  const apply = (vars: Record<string, string | undefined>) => {
    for (const [k, v] of Object.entries(vars)) {
      v === undefined ? Deno.env.delete(k) : Deno.env.set(k, v);
    }
  };
  apply(env);
  try {
    using vm = new Vm();
    return vm.engine;
  } finally {
    apply(saved);
  }
}

Deno.test("engines: the JIT is the default", () => {
  assert.equal(engineWith({ BPFTIME_DISABLE_JIT: undefined, BPFTIME_VM_NAME: undefined }), "jit");
});

Deno.test("engines: BPFTIME_DISABLE_JIT=1 forces the interpreter", () => {
  assert.equal(engineWith({ BPFTIME_DISABLE_JIT: "1", BPFTIME_VM_NAME: "jit" }), "interp");
  assert.equal(engineWith({ BPFTIME_DISABLE_JIT: "0", BPFTIME_VM_NAME: undefined }), "jit");
});

Deno.test("engines: BPFTIME_VM_NAME picks the engine", () => {
  assert.equal(engineWith({ BPFTIME_DISABLE_JIT: undefined, BPFTIME_VM_NAME: "interp" }), "interp");
});
