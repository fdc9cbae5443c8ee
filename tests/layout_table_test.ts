/**
 * One source of truth, checked: the TypeScript map type table and every C
 * layout the bindings encode by hand (ffi/layout.ts) against the C side.
 */
import assert from "node:assert/strict";
import { cMapTypeName } from "../ffi/lib.ts";
import { C_CONSTANTS, C_STRUCTS } from "../ffi/layout.ts";
import { MAP_TYPES } from "../lib/maps/types.ts";

const ROOT = new URL("../", import.meta.url).pathname;

Deno.test("layout: C and TypeScript map type tables agree on names and kernel ids", () => {
  const byId = new Map<number, string>(Object.entries(MAP_TYPES).map(([name, id]) => [id, name]));
  assert.equal(byId.size, Object.keys(MAP_TYPES).length, "one name per kernel id");
  for (let type = 0; type < 256; type++) {
    assert.equal(cMapTypeName(type), byId.get(type) ?? null, `map type ${type}`);
  }
});

/** A C program printing "name value" for every offset, size and constant ffi/layout.ts lists. */
function layoutProgram(): string {
  const lines: string[] = [];
  const print = (label: string, expr: string) =>
    lines.push(`\tprintf("%s %llu\\n", "${label}", (unsigned long long)(${expr}));`);
  for (const [struct, fields] of Object.entries(C_STRUCTS)) {
    for (const field of Object.keys(fields)) {
      print(
        `${struct}.${field}`,
        field === "sizeof" ? `sizeof(${struct})` : `offsetof(${struct}, ${field})`,
      );
    }
  }
  for (const name of Object.keys(C_CONSTANTS)) print(name, name);
  return [
    "#include <stddef.h>",
    "#include <stdio.h>",
    '#include "csrc/include/bpftime.h"',
    '#include "csrc/maps/perf_event_array.h"',
    '#include "csrc/maps/ringbuf.h"',
    "int main(void)",
    "{",
    ...lines,
    "\treturn 0;",
    "}",
    "",
  ].join("\n");
}

Deno.test("layout: every struct offset, size and constant TypeScript encodes matches C", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bpftime_layout_" });
  try {
    await Deno.writeTextFile(`${dir}/layout.c`, layoutProgram());
    const cc = await new Deno.Command("gcc", {
      args: [
        "-std=gnu11",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-I",
        ROOT,
        "-o",
        `${dir}/layout`,
        `${dir}/layout.c`,
      ],
      cwd: ROOT,
    }).output();
    assert.ok(
      cc.success,
      `the layout program does not compile:\n${new TextDecoder().decode(cc.stderr)}`,
    );
    const run = await new Deno.Command(`${dir}/layout`).output();
    assert.ok(run.success);
    const c = new Map(
      new TextDecoder().decode(run.stdout).trim().split("\n").map((line) => {
        const at = line.lastIndexOf(" ");
        return [line.slice(0, at), Number(line.slice(at + 1))] as const;
      }),
    );
    const ts = new Map<string, number>();
    for (const [struct, fields] of Object.entries(C_STRUCTS)) {
      for (const [field, value] of Object.entries(fields)) ts.set(`${struct}.${field}`, value);
    }
    for (const [name, value] of Object.entries(C_CONSTANTS)) ts.set(name, value);
    assert.equal(c.size, ts.size);
    for (const [name, value] of ts) assert.equal(value, c.get(name), name);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
