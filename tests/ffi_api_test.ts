/**
 * ffi/ binds csrc/include/bpftime.h symbol for symbol, and the library exports nothing else but
 * the libc functions it stands in front of: sigaction and signal (csrc/base/safe_copy.c keeps its
 * fault handler first and passes the application's faults on to the handler it sets).
 */
import assert from "node:assert/strict";
import { SYMBOLS } from "../ffi/lib.ts";
import { ROOT } from "./test_utils.ts";

const INTERPOSED = ["sigaction", "signal"];

Deno.test("ffi: bindings, header and exported symbols are the same set", async () => {
  const header = await Deno.readTextFile(`${ROOT}csrc/include/bpftime.h`);
  const declared = [...header.matchAll(/BPFTIME_API[^;]*?\b(bpftime_\w+)\s*\(/g)].map((m) => m[1])
    .sort();
  const nm = await new Deno.Command("nm", {
    args: ["-D", "--defined-only", `${ROOT}build/libbpftime.so`],
  }).output();
  assert.equal(nm.code, 0);
  const exported = new TextDecoder().decode(nm.stdout).trim().split("\n")
    .map((l) => l.split(/\s+/).at(-1)!).filter((s) => s !== "").sort();
  assert.deepEqual(Object.keys(SYMBOLS).sort(), declared);
  assert.deepEqual(exported, [...declared, ...INTERPOSED].sort());
});
