import assert from "node:assert/strict";
import { LIBRARIES, libraryPath } from "../ffi/library_path.ts";
import { ROOT } from "./test_utils.ts";

Deno.test("library path: each library's variable, else build/ of this checkout (empty is unset)", () => {
  const { env, file } = LIBRARIES.syscallServer;
  const saved = Deno.env.get(env);
  try {
    Deno.env.set(env, "/elsewhere/server.so");
    assert.equal(libraryPath("syscallServer"), "/elsewhere/server.so");
    Deno.env.set(env, "");
    assert.equal(libraryPath("syscallServer"), `${ROOT}build/${file}`);
    Deno.env.delete(env);
    assert.equal(libraryPath("syscallServer"), `${ROOT}build/${file}`);
  } finally {
    if (saved === undefined) Deno.env.delete(env);
    else Deno.env.set(env, saved);
  }
  assert.deepEqual(
    Object.values(LIBRARIES).map((l) => l.env),
    ["BPFTIME_LIB", "AGENT_SO", "SERVER_SO", "PROCTRACE_SO"],
  );
});
