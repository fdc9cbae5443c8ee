/** mod.ts, the public API: its doc example runs as written and prints what its comments say. */
import assert from "node:assert/strict";
import { DENO, ROOT } from "./test_utils.ts";

/** The first ```ts block of a file's leading doc comment. */
function docExample(path: string): string {
  const text = Deno.readTextFileSync(path);
  const block = /```ts\n([\s\S]*?)\n \* ```/.exec(text);
  assert.ok(block, `${path}: no \`\`\`ts example in its doc comment`);
  return block[1].split("\n").map((l) => l.replace(/^ \* ?|^ \*$/, "")).join("\n");
}

Deno.test("mod.ts: the doc example runs and prints what its comments say", async () => {
  const segment = `bpftime_test_mod_example_${Deno.pid}`;
  const source = docExample(`${ROOT}mod.ts`);
  // Its own segment name, so that concurrent runs do not meet.
  assert.ok(source.includes(`"my_tool"`));
  const file = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    await Deno.writeTextFile(
      file,
      source.replaceAll(`"./mod.ts"`, JSON.stringify(`${ROOT}mod.ts`))
        .replaceAll(`"my_tool"`, JSON.stringify(segment)),
    );
    const out = await new Deno.Command(DENO, {
      args: ["run", "--allow-all", "--config", `${ROOT}deno.json`, file],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    assert.equal(out.code, 0, dec.decode(out.stderr));
    // Each `console.log(...); // X` prints X.
    const expected = [...source.matchAll(/console\.log\(.*\);.*\/\/ (.*)$/gm)].map((m) => m[1]);
    assert.deepEqual(dec.decode(out.stdout).trim().split("\n"), expected);
    assert.throws(() => Deno.statSync(`/dev/shm/${segment}`), Deno.errors.NotFound);
  } finally {
    await Deno.remove(file);
  }
});
