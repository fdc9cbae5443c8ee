/** Assembler and disassembler: the suite's raw words, round trips, clang objects, errors. */
import assert from "node:assert/strict";
import { AsmError, assemble } from "../lib/isa/assembler.ts";
import { disassemble } from "../lib/isa/disassembler.ts";
import { fromWords } from "../lib/isa/opcodes.ts";
import { parseDataFile } from "../lib/conformance/data_file.ts";
import { codeSections } from "../lib/elf/sections.ts";
import { Rng } from "../testing/program_gen.ts";
import { conformanceFiles, ROOT } from "./test_utils.ts";

const cases = conformanceFiles().map((f) =>
  parseDataFile(f.split("/").pop()!, Deno.readTextFileSync(f))
);

Deno.test("asm: output equals every -- raw section of the suite", () => {
  const withRaw = cases.filter((c) => c.raw);
  if (cases.length > 0) assert.ok(withRaw.length > 0, "the suite has raw sections");
  for (const c of withRaw) assert.deepEqual(assemble(c.asm), fromWords(c.raw!), c.name);
});

Deno.test("asm: disassembly of every suite program reassembles to the same bytes", () => {
  for (const c of cases) {
    const code = assemble(c.asm);
    const text = disassemble(code);
    assert.ok(!text.includes(".insn"), `${c.name}: needed raw words:\n${text}`);
    assert.deepEqual(assemble(text), code, c.name);
  }
});

Deno.test("asm: clang-compiled objects disassemble and reassemble byte for byte", () => {
  const objects = [
    ...[...Deno.readDirSync(`${ROOT}build/bpf`)].map((e) => `${ROOT}build/bpf/${e.name}`),
    `${ROOT}build/bench/workloads.bpf.o`,
  ].filter((p) => p.endsWith(".o"));
  assert.ok(objects.length >= 2, "make build compiles the bpf/ objects");
  let sections = 0;
  for (const path of objects) {
    for (const s of codeSections(Deno.readFileSync(path), path)) {
      const text = disassemble(s.data);
      assert.ok(!text.includes(".insn"), `${path} ${s.name}: needed raw words`);
      assert.deepEqual(assemble(text), new Uint8Array(s.data), `${path} ${s.name}`);
      sections++;
    }
  }
  assert.ok(sections >= 3);
});

Deno.test("asm: 50,000 random instruction words round-trip (raw .insn where needed)", () => {
  const rng = new Rng(42);
  const words = Array.from(
    { length: 50_000 },
    () => (BigInt(rng.next()) << 32n) | BigInt(rng.next()),
  );
  const code = fromWords(words);
  assert.deepEqual(assemble(disassemble(code)), code);
});

Deno.test("asm: labels, the implicit exit label, and numeric forms", () => {
  const code = assemble(`
    mov %r0, -1          # imm32 sign
    jeq %r0, 0xffffffff, exit
  back: add32 %r0, 1
    ja back
    exit
  `);
  assert.equal(
    disassemble(code),
    ["mov %r0, -1", "jeq %r0, -1, +2", "add32 %r0, 1", "ja -2", "exit"].join("\n"),
  );
  assert.equal(
    disassemble(assemble("lock fetch add32 [%r10-4], %r1\nmovsx1664 %r1, %r2\nsdiv32 %r1, -3")),
    "lock fetch add32 [%r10-4], %r1\nmovsx1664 %r1, %r2\nsdiv32 %r1, -3",
  );
  assert.equal(
    disassemble(assemble("call %r3\ncall local +0\nexit")),
    "call %r3\ncall local +0\nexit",
  );
});

Deno.test("asm: errors name the line and the problem", () => {
  const cases: [string, RegExp][] = [
    ["mov %r0, 1\nfrob %r1", /^line 2: unknown mnemonic 'frob'$/],
    ["ja nowhere\nexit", /^line 1: undefined label 'nowhere'$/],
    ["a:\na:\nexit", /^line 2: duplicate label 'a'$/],
    ["mov %r0", /^line 1: mov takes 2 operand\(s\), got 1$/],
    ["mov %r0, 0x100000000", /^line 1: immediate 0x100000000 out of range$/],
    ["ldxw %r0, %r1", /^line 1: expected a memory operand/],
    ["lock nand [%r1], %r2", /^line 1: expected 'lock \[fetch\]/],
    ["call bogus 3", /^line 1: unknown call mode 'bogus'/],
  ];
  for (const [source, message] of cases) {
    assert.throws(() => assemble(source), (e: unknown) => {
      assert.ok(e instanceof AsmError);
      assert.match(e.message, message);
      return true;
    });
  }
});
