/** The whole bpf_conformance suite under the interpreter, one test per case. */
import assert from "node:assert/strict";
import { parseDataFile } from "../lib/conformance/data_file.ts";
import { runCase } from "../lib/conformance/runner.ts";
import { conformanceFiles } from "./helpers.ts";

for (const file of conformanceFiles()) {
  const name = file.split("/").pop()!;
  Deno.test(`conformance/interp: ${name}`, () => {
    const outcome = runCase(parseDataFile(name, Deno.readTextFileSync(file)), "interp");
    assert.ok(outcome.passed, outcome.reason);
  });
}
