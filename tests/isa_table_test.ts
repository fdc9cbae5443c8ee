/** One source of truth: the C opcode table must match the TypeScript one. */
import assert from "node:assert/strict";
import { cOpcodeName } from "../ffi/lib.ts";
import { opcodeInfo, OPCODES } from "../lib/isa/opcodes.ts";

Deno.test("isa: C and TypeScript opcode tables agree on all 256 opcodes", () => {
  for (let op = 0; op < 256; op++) {
    assert.equal(cOpcodeName(op), opcodeInfo(op)?.name ?? null, `opcode 0x${op.toString(16)}`);
  }
  assert.equal(OPCODES.length, 120);
});
