/**
 * The TypeScript layers keep one direction, lib/ (parsing, encoding) <- ffi/
 * (bindings) <- api/ <- mod.ts <- cli/, examples/, with testing/ (shared by
 * tests/ and bench/) beside them: every .ts file's imports are parsed and
 * checked against the rules below.
 */
import assert from "node:assert/strict";
import { ROOT } from "./test_utils.ts";

/** Not sources: dependencies, build output, benchmark output. */
const SKIP = new Set(["node_modules", "build", ".git", "bench/out"]);

/** Repository-relative paths of every .ts file. */
function tsFiles(dir = ""): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(`${ROOT}${dir}`)) {
    const path = `${dir}${e.name}`;
    if (e.isDirectory && !SKIP.has(path)) out.push(...tsFiles(`${path}/`));
    else if (e.isFile && e.name.endsWith(".ts")) out.push(path);
  }
  return out.sort();
}

/**
 * The source with comments removed and the contents of template literals
 * blanked (scripts written for child processes are not this file's imports);
 * quoted strings are kept unless `blankStrings`.
 */
function code(source: string, blankStrings = false): string {
  let out = "";
  for (let i = 0; i < source.length; i++) {
    const c = source[i], next = source[i + 1];
    if (c === "/" && next === "/") {
      while (i < source.length && source[i] !== "\n") i++;
      out += "\n";
    } else if (c === "/" && next === "*") {
      const end = source.indexOf("*/", i + 2);
      i = end < 0 ? source.length : end + 1;
      out += " ";
    } else if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < source.length && source[j] !== c && source[j] !== "\n") {
        j += source[j] === "\\" ? 2 : 1;
      }
      out += blankStrings ? c + c : source.slice(i, j + 1);
      i = j;
    } else if (c === "`") {
      let j = i + 1;
      while (j < source.length && source[j] !== "`") j += source[j] === "\\" ? 2 : 1;
      out += "``";
      i = j;
    } else {
      out += c;
    }
  }
  return out;
}

/** The module specifiers a source imports or re-exports, statically or with import("..."). */
export function importSpecifiers(source: string): string[] {
  const text = code(source);
  const found: string[] = [];
  const statement = /(?:^|[;{}\n])\s*(?:import|export)\s+(?:[^'";]*?\bfrom\s*)?["']([^"']+)["']/g;
  for (const m of text.matchAll(statement)) found.push(m[1]);
  for (const m of text.matchAll(/\bimport\s*\(\s*["']([^"']+)["']\s*\)/g)) found.push(m[1]);
  return found;
}

interface Import {
  from: string;
  specifier: string;
  /** Repository-relative path of a relative import, else undefined (npm:, node:, import map). */
  target?: string;
}

function importsOf(file: string): Import[] {
  const base = new URL(file, `file://${ROOT}`);
  return importSpecifiers(Deno.readTextFileSync(`${ROOT}${file}`)).map((specifier) => {
    if (!specifier.startsWith(".")) return { from: file, specifier };
    const path = new URL(specifier, base).pathname;
    return {
      from: file,
      specifier,
      target: path.startsWith(ROOT) ? path.slice(ROOT.length) : path,
    };
  });
}

const ALL = tsFiles().flatMap(importsOf);
const under = (dir: string) => (path: string) => path.startsWith(`${dir}/`);
const topFolder = (path: string) => path.includes("/") ? path.split("/")[0] : path;

/** Imports from files matching `from` to files (of this repository) failing `allowed`. */
function violations(from: (f: string) => boolean, allowed: (i: Import) => boolean): string[] {
  return ALL.filter((i) => from(i.from) && i.target !== undefined && !allowed(i))
    .map((i) => `${i.from} imports ${i.specifier}`);
}

Deno.test("ts layering: the import parser finds static, multi-line, re-exported and dynamic imports", () => {
  const sample = `
    import assert from "node:assert/strict";
    import {
      a,
      type B,
    } from "../lib/x.ts";
    export { c } from './ffi/y.ts';
    import "./side_effect.ts";
    // import { no } from "../commented.ts";
    /* import { no } from "../commented.ts"; */
    const child = \`import { no } from "\${ROOT}ffi/template.ts";\`;
    const m = await import("../api/dynamic.ts");
    export const z = "from" + 'x';
  `;
  assert.deepEqual(importSpecifiers(sample), [
    "node:assert/strict",
    "../lib/x.ts",
    "./ffi/y.ts",
    "./side_effect.ts",
    "../api/dynamic.ts",
  ]);
  assert.ok(ALL.filter((i) => i.from === "mod.ts").length >= 10, "mod.ts re-exports are seen");
});

Deno.test("ts layering: every relative import names an existing file; no jsr: or URL imports", () => {
  const missing = ALL.filter((i) => {
    if (i.target === undefined) return false;
    try {
      return !Deno.statSync(`${ROOT}${i.target}`).isFile;
    } catch {
      return true;
    }
  }).map((i) => `${i.from} imports ${i.specifier}`);
  assert.deepEqual(missing, []);
  const remote = ALL.filter((i) => /^(jsr:|https?:)/.test(i.specifier))
    .map((i) => `${i.from} imports ${i.specifier}`);
  assert.deepEqual(remote, []);
});

Deno.test("ts layering: lib/ (parsing and encoding) imports only lib/", () => {
  assert.deepEqual(violations(under("lib"), (i) => under("lib")(i.target!)), []);
});

Deno.test("ts layering: ffi/ (the bindings) imports only ffi/ and lib/, never the API above it", () => {
  assert.deepEqual(
    violations(under("ffi"), (i) => ["ffi", "lib"].includes(topFolder(i.target!))),
    [],
  );
});

Deno.test("ts layering: api/ imports only api/, ffi/ and lib/ (not mod.ts, cli/, tests/)", () => {
  assert.deepEqual(
    violations(under("api"), (i) => ["api", "ffi", "lib"].includes(topFolder(i.target!))),
    [],
  );
});

Deno.test("ts layering: mod.ts re-exports lib/, ffi/ and api/ only", () => {
  assert.deepEqual(
    violations((f) => f === "mod.ts", (i) => ["api", "ffi", "lib"].includes(topFolder(i.target!))),
    [],
  );
});

Deno.test("ts layering: cli/ and examples/ import the project only through mod.ts", () => {
  for (const dir of ["cli", "examples"]) {
    assert.deepEqual(
      violations(under(dir), (i) => i.target === "mod.ts" || under(dir)(i.target!)),
      [],
      dir,
    );
  }
  assert.ok(ALL.some((i) => under("cli")(i.from) && i.target === "mod.ts"), "the CLI uses mod.ts");
});

Deno.test("ts layering: bench/ and testing/ import nothing from tests/; testing/ nothing from bench/ or cli/", () => {
  assert.deepEqual(violations(under("bench"), (i) => !under("tests")(i.target!)), []);
  assert.deepEqual(
    violations(under("testing"), (i) => !["tests", "bench", "cli"].includes(topFolder(i.target!))),
    [],
  );
});

Deno.test("ts layering: native code (Deno.dlopen, pointers) only in ffi/, and testing/ and bench/ for their own", () => {
  const native = tsFiles().filter((f) =>
    /\bDeno\.(dlopen|UnsafePointer|UnsafePointerView|UnsafeCallback)\b/.test(
      code(Deno.readTextFileSync(`${ROOT}${f}`), true),
    )
  );
  assert.deepEqual(native.filter((f) => !["ffi", "testing", "bench"].includes(topFolder(f))), []);
  assert.ok(native.some(under("ffi")));
});
