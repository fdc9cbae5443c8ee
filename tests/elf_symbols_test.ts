/** Function symbol lookup for uprobes, checked against readelf on real binaries. */
import assert from "node:assert/strict";
import { functionSymbols, resolveFunction, STT_GNU_IFUNC } from "../lib/elf/symbols.ts";
import { ElfError } from "../lib/elf/sections.ts";

const LIBC = "/lib/x86_64-linux-gnu/libc.so.6";

/** readelf's value for a dynamic symbol, e.g. "malloc@@GLIBC_2.2.5". */
async function readelfValue(file: string, symbol: string): Promise<bigint> {
  const out = await new Deno.Command("readelf", {
    args: ["-Ws", "--dyn-syms", file],
    stdout: "piped",
  }).output();
  const line = new TextDecoder().decode(out.stdout).split("\n").find((l) =>
    l.trim().split(/\s+/)[7] === symbol
  );
  assert.ok(line, `readelf lists ${symbol}`);
  return BigInt(`0x${line.trim().split(/\s+/)[1]}`);
}

Deno.test("elf: libc's malloc and free resolve to readelf's addresses (libc is not offset-shifted)", async () => {
  const bytes = await Deno.readFile(LIBC);
  for (const name of ["malloc", "free"]) {
    const sym = resolveFunction(bytes, name, LIBC);
    assert.equal(sym.value, await readelfValue(LIBC, `${name}@@GLIBC_2.2.5`));
    assert.equal(sym.version, "GLIBC_2.2.5");
    assert.ok(sym.fileOffset > 0n);
  }
  assert.ok(
    functionSymbols(bytes, LIBC).some((s) => s.type === STT_GNU_IFUNC),
    "libc has IFUNCs (memcpy...)",
  );
});

Deno.test("elf: a PIE executable's function maps to its file offset through PT_LOAD", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/t.c`,
      "int target(int x) { return x * 3; }\nint main(void) { return target(1); }\n",
    );
    const cc = await new Deno.Command("cc", { args: ["-O1", "-g", "-o", `${dir}/t`, `${dir}/t.c`] })
      .output();
    assert.equal(cc.code, 0);
    const bytes = await Deno.readFile(`${dir}/t`);
    const sym = resolveFunction(bytes, "target", "t");
    const out = await new Deno.Command("nm", { args: [`${dir}/t`], stdout: "piped" }).output();
    const nm = new TextDecoder().decode(out.stdout).split("\n").find((l) => l.endsWith(" target"))!;
    assert.equal(sym.value, BigInt(`0x${nm.split(" ")[0]}`));
    // The instruction bytes at the file offset are the function's first bytes as objdump shows them.
    assert.ok(sym.fileOffset < BigInt(bytes.length));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("elf: missing symbols and non-ELF files are errors naming the file and the symbol", async () => {
  const bytes = await Deno.readFile(LIBC);
  assert.throws(
    () => resolveFunction(bytes, "no_such_function_here", LIBC),
    (e: unknown) =>
      e instanceof ElfError && e.message === `${LIBC}: no function 'no_such_function_here'`,
  );
  assert.throws(
    () => resolveFunction(new Uint8Array(64), "x", "junk.bin"),
    /junk.bin: not an ELF file/,
  );
});
