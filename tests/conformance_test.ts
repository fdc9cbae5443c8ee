/** The whole bpf_conformance suite on every engine, one test per case. */
import assert from "node:assert/strict";
import { parseDataFile } from "../lib/conformance/data_file.ts";
import { runCase } from "../api/conformance_runner.ts";
import type { Engine } from "../ffi/vm.ts";
import { conformanceFiles } from "./test_utils.ts";

const ENGINES: Engine[] = ["interp", "jit", "llvm"];

for (const file of conformanceFiles()) {
  const name = file.split("/").pop()!;
  const testCase = parseDataFile(name, Deno.readTextFileSync(file));
  for (const engine of ENGINES) {
    Deno.test(`conformance/${engine}: ${name}`, () => {
      const outcome = runCase(testCase, engine);
      assert.ok(outcome.passed, outcome.reason);
    });
  }
}
