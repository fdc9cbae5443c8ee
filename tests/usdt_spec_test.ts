/**
 * USDT parsing in lib/: .note.stapsdt read as readelf reads it, argument specs decoded (and bad
 * ones refused by name), usdt/ section names.
 */
import assert from "node:assert/strict";
import { readUsdtNotes } from "../lib/elf/usdt_notes.ts";
import { encodeUsdtSpec, parseUsdtArg, parseUsdtArgs, USDT_ARG } from "../lib/object/usdt_spec.ts";
import { parseSection } from "../lib/object/section_names.ts";
import { USDT_TARGET } from "./usdt_env.ts";

Deno.test("usdt notes: the probes readelf -n lists, with their locations, semaphores and arguments", () => {
  const out = new Deno.Command("readelf", { args: ["-n", USDT_TARGET] }).outputSync();
  assert.equal(out.code, 0);
  const text = new TextDecoder().decode(out.stdout);
  const re =
    /Provider: (\S+)\s+Name: (\S+)\s+Location: (0x[0-9a-f]+), Base: 0x[0-9a-f]+, Semaphore: (0x[0-9a-f]+)\s+Arguments: ([^\n]*)/g;
  const theirs = [...text.matchAll(re)].map((m) =>
    `${m[1]}:${m[2]} ${BigInt(m[3])} ${BigInt(m[4])} ${m[5].trim()}`
  );
  const ours = readUsdtNotes(Deno.readFileSync(USDT_TARGET), USDT_TARGET).map((n) =>
    `${n.provider}:${n.name} ${n.address} ${n.semaphore} ${n.args}`
  );
  assert.equal(ours.length, 4);
  assert.deepEqual(ours, theirs);
});

Deno.test("usdt args: constants, registers and memory operands, sizes and signs", () => {
  const a = parseUsdtArgs("-4@%edi 8@-16(%rbp) -1@$-7 2@%r9w 8@(%rsp) 1@%al -8@$0x10", "t");
  assert.deepEqual(a.map((x) => [x.type, x.valOff, x.regOff, x.signed, x.bitshift]), [
    [USDT_ARG.REG, 0n, 112, true, 32],
    [USDT_ARG.REG_DEREF, 2n ** 64n - 16n, 32, false, 0],
    [USDT_ARG.CONST, 2n ** 64n - 7n, 0, true, 56],
    [USDT_ARG.REG, 0n, 64, false, 48],
    [USDT_ARG.REG_DEREF, 0n, 152, false, 0],
    [USDT_ARG.REG, 0n, 80, false, 56],
    [USDT_ARG.CONST, 16n, 0, true, 0],
  ]);
  assert.deepEqual(parseUsdtArgs("  ", "t"), []);
  const spec = encodeUsdtSpec(a.slice(0, 2), 42n);
  const v = new DataView(spec.buffer);
  assert.equal(spec.length, 208);
  assert.equal(v.getUint32(8, true), USDT_ARG.REG);
  assert.equal(v.getInt16(12, true), 112);
  assert.equal(v.getUint8(14), 1);
  assert.equal(v.getInt8(15), 32);
  assert.equal(v.getBigUint64(16, true), 2n ** 64n - 16n);
  assert.equal(v.getBigUint64(192, true), 42n);
  assert.equal(v.getInt16(200, true), 2);
});

Deno.test("usdt args: what cannot be computed is refused, naming the probe and the argument", () => {
  const bad: [string, RegExp][] = [
    ["8@(%r8,%rax,8)", /probe x: argument '8@\(%r8,%rax,8\)': location '\(%r8,%rax,8\)' is none/],
    ["8@(%r8,%rax,8)", /index registers and symbols are not supported/],
    ["8@counter(%rip)", /%rip-relative operands/],
    ["3@%eax", /size 3 is not 1, 2, 4 or 8/],
    ["4@%xmm0", /unknown register '%xmm0'/],
    ["%eax", /expected SIZE@LOCATION/],
  ];
  for (const [text, re] of bad) assert.throws(() => parseUsdtArg(text, "probe x"), re, text);
  assert.throws(
    () => parseUsdtArgs(Array(13).fill("4@$1").join(" "), "p"),
    /13 arguments, at most 12/,
  );
});

Deno.test("usdt sections: usdt, usdt/PATH:PROVIDER:NAME (a path may hold ':'), malformed ones named", () => {
  assert.deepEqual(parseSection("usdt"), { progType: 2 });
  assert.deepEqual(parseSection("usdt/a:b/bin:prov:name")?.attach, {
    kind: "usdt",
    path: "a:b/bin",
    provider: "prov",
    name: "name",
  });
  assert.throws(
    () => parseSection("usdt/bin:name"),
    /section 'usdt\/bin:name': expected usdt\/PATH:PROVIDER:NAME/,
  );
});
