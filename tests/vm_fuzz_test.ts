/** Bounded fuzz run: random programs never crash or hang the host, and runs are deterministic. */
import assert from "node:assert/strict";
import { fuzz } from "./fuzz/run_fuzz.ts";

Deno.test("fuzz: 20,000 random programs through validator and interpreter", () => {
  const stats = fuzz(20_000, 0x5eed);
  console.log(JSON.stringify(stats));
  assert.equal(stats.programs, 20_000);
  assert.equal(stats.inconsistent, 0);
  // The generator must exercise both paths, not only the validator's refusals.
  assert.ok(stats.returned > 1000, `only ${stats.returned} programs ran to exit`);
  assert.ok(stats.faulted > 100, `only ${stats.faulted} programs faulted`);
  assert.ok(stats.refused > 1000, `only ${stats.refused} programs were refused`);
});
