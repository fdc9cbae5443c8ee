/** Bounded differential fuzzing: engines agree, and nothing crashes or hangs the host. */
import assert from "node:assert/strict";
import { diffArbitraryPrograms, diffValidPrograms } from "./fuzz/engine_diff.ts";

const ENGINES = ["interp", "jit"] as const;
const ALL_ENGINES = ["interp", "jit", "llvm"] as const;

Deno.test("fuzz: 3,000 valid programs give the same r0, context and stack on every engine", () => {
  const stats = diffValidPrograms(ENGINES, 3_000, 0xa11);
  console.log(JSON.stringify({ ...stats, firstMismatch: undefined }));
  assert.equal(stats.mismatches, 0, stats.firstMismatch);
  assert.equal(stats.refused, 0, "valid programs are accepted");
  assert.ok(stats.returned > 2_000);
});

Deno.test("fuzz: 20,000 arbitrary programs are refused alike and end alike", () => {
  const stats = diffArbitraryPrograms(ENGINES, 20_000, 0x5eed);
  console.log(JSON.stringify({ ...stats, firstMismatch: undefined }));
  assert.equal(stats.mismatches, 0, stats.firstMismatch);
  // The generator must exercise every path, not only the validator's refusals.
  assert.ok(stats.returned > 1000, `only ${stats.returned} programs ran to exit`);
  assert.ok(stats.faulted > 100, `only ${stats.faulted} programs faulted`);
  assert.ok(stats.refused > 1000, `only ${stats.refused} programs were refused`);
});

// The LLVM tier compiles in milliseconds, so it gets fewer programs.
Deno.test("fuzz: 250 valid programs agree on the LLVM tier too", () => {
  const stats = diffValidPrograms(ALL_ENGINES, 250, 0x11e);
  assert.equal(stats.mismatches, 0, stats.firstMismatch);
  assert.equal(stats.refused, 0);
});

Deno.test("fuzz: 1,000 arbitrary programs end alike on the LLVM tier too", () => {
  const stats = diffArbitraryPrograms(ALL_ENGINES, 1_000, 0x11f);
  assert.equal(stats.mismatches, 0, stats.firstMismatch);
});
