/** The bpftime command line, run as a user would. */
import assert from "node:assert/strict";
import { bpftime, bpftimeEnv, conformanceDir } from "./test_utils.ts";

const suite = conformanceDir();

for (const engine of ["interp", "jit", "llvm"]) {
  Deno.test({
    name: `cli: tool conformance --vm ${engine} runs the whole suite`,
    ignore: !suite,
    fn: async () => {
      const r = await bpftime(["tool", "conformance", "--vm", engine, suite!]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.equal(r.stdout.trim().split("\n").at(-1), "313 passed, 0 failed");
    },
  });
}

Deno.test("cli: tool conformance reports a failing case and exits non-zero", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/good.data`, "-- asm\nmov %r0, 3\nexit\n-- result\n0x3\n");
  await Deno.writeTextFile(`${dir}/bad.data`, "-- asm\nmov %r0, 3\nexit\n-- result\n0x4\n");
  await Deno.writeTextFile(
    `${dir}/refused.data`,
    "-- asm\nja +4\nexit\n-- error\njump out of range\n",
  );
  const r = await bpftime(["tool", "conformance", dir]);
  assert.equal(r.code, 1);
  assert.match(r.stdout, /FAIL bad\.data: r0 = 0x3, expected 0x4/);
  assert.equal(r.stdout.trim().split("\n").at(-1), "2 passed, 1 failed");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("cli: unknown commands and bad arguments print usage and fail", async () => {
  for (
    const args of [["frobnicate"], ["tool", "frobnicate"], [
      "tool",
      "conformance",
      "--vm",
      "x",
      ".",
    ], []]
  ) {
    const r = await bpftime(args);
    assert.notEqual(r.code, 0, `bpftime ${args.join(" ")} exited 0`);
    assert.match(r.stderr, /Usage: bpftime/, `bpftime ${args.join(" ")}: ${r.stderr}`);
  }
});

Deno.test("cli: tool asm and tool disasm round-trip through files", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(
    `${dir}/p.asm`,
    "mov %r0, 1\nlddw %r1, 0x1122334455667788\nadd %r0, %r1\nexit\n",
  );
  const asm = await bpftime(["tool", "asm", `${dir}/p.asm`]);
  assert.equal(asm.code, 0, asm.stderr);
  assert.deepEqual(asm.stdout.trim().split("\n"), [
    "0x00000001000000b7",
    "0x5566778800000118",
    "0x1122334400000000",
    "0x000000000000100f",
    "0x0000000000000095",
  ]);
  await Deno.writeTextFile(`${dir}/p.hex`, asm.stdout);
  const dis = await bpftime(["tool", "disasm", `${dir}/p.hex`]);
  assert.equal(dis.stdout.trim(), "mov %r0, 1\nlddw %r1, 0x1122334455667788\nadd %r0, %r1\nexit");
  const bin = await bpftime(["tool", "asm", `${dir}/p.asm`, "-o", `${dir}/p.bin`]);
  assert.equal(bin.code, 0);
  const disBin = await bpftime(["tool", "disasm", `${dir}/p.bin`]);
  assert.equal(disBin.stdout, dis.stdout);
  const bad = await bpftime(["tool", "asm", `${dir}/missing.asm`]);
  assert.notEqual(bad.code, 0);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("cli: tool plugin speaks the bpf_conformance plugin protocol", async () => {
  // ldxb %r0, [%r1+1]; exit — memory "aa bb cc"
  const ok = await bpftime(["tool", "plugin", "aa bb cc"], "7110010000000000 9500000000000000\n");
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.stdout.trim(), "bb");
  const refused = await bpftime(["tool", "plugin"], "0500050000000000 9500000000000000");
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /pc 0: jump out of range/);
});

Deno.test("cli: tool list, map dump, export, remove, import and run on the segment", async () => {
  const env = { BPFTIME_GLOBAL_SHM_NAME: `bpftime_test_cli_${Deno.pid}` };
  const run = (args: string[]) => bpftimeEnv(args, env);
  const { Segment } = await import("../ffi/shm.ts");
  const { assemble } = await import("../lib/isa/assembler.ts");
  const seg = Segment.open(env.BPFTIME_GLOBAL_SHM_NAME, { create: true, sizeMb: 2 });
  const m = seg.createMap({
    type: "hash",
    name: "counts",
    keySize: 4,
    valueSize: 8,
    maxEntries: 4,
  });
  m.update(new Uint8Array([7, 0, 0, 0]), new Uint8Array([9, 0, 0, 0, 0, 0, 0, 0]));
  const prog = seg.createProgram("first", assemble("ldxb %r0, [%r1]\nexit"));
  seg.close();
  const dir = await Deno.makeTempDir();
  try {
    const list = await run(["tool", "list"]);
    assert.match(list.stdout, /^1\tmap\tcounts\thash key 4 value 8 max_entries 4$/m);
    assert.match(list.stdout, new RegExp(`^${prog}\\tprog\\tfirst\\t2 instructions$`, "m"));
    const dump = JSON.parse((await run(["tool", "map", "dump", "1"])).stdout);
    assert.deepEqual(dump.entries, [{ key: "07000000", value: "0900000000000000" }]);
    assert.equal((await run(["tool", "export", `${dir}/seg.json`])).code, 0);
    assert.equal((await run(["tool", "remove"])).code, 0);
    assert.notEqual((await run(["tool", "list"])).code, 0);
    assert.equal((await run(["tool", "import", `${dir}/seg.json`])).code, 0);
    assert.deepEqual(
      JSON.parse((await run(["tool", "map", "dump", "1"])).stdout).entries,
      dump.entries,
    );
    await Deno.writeFile(`${dir}/data.bin`, new Uint8Array([42]));
    const r = await run(["tool", "run", String(prog), `${dir}/data.bin`, "--repeat", "100"]);
    assert.match(r.stdout, /^r0 = 42 \(0x2a\)\n[\d.]+ ns per run over 100 run\(s\) on jit\n$/);
    const bad = await run(["tool", "map", "dump", "77"]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /no map with id 77/);
  } finally {
    await run(["tool", "remove"]);
    await Deno.remove(dir, { recursive: true });
  }
});
