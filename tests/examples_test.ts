/** The examples as a user runs them: a tool from examples/ and a target under the agent. */
import assert from "node:assert/strict";
import { Segment } from "../ffi/shm.ts";
import { DENO, freshSegment, ROOT } from "./test_utils.ts";
import { AGENT, TARGETS } from "./probe_env.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts an example tool on segment `name` and waits until it has created `links` links. */
async function startTool(name: string, args: string[], links: number) {
  const seg = freshSegment(name, 8);
  const tool = new Deno.Command(DENO, {
    args: ["run", "--allow-all", ...args],
    env: { BPFTIME_GLOBAL_SHM_NAME: name },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  for (let i = 0; i < 300 && seg.objects().filter((o) => o.kind === "link").length < links; i++) {
    await sleep(50);
  }
  assert.equal(
    seg.objects().filter((o) => o.kind === "link").length,
    links,
    "the tool did not attach",
  );
  return { seg, tool };
}

Deno.test("examples: funclatency's histogram counts every call of the function", async () => {
  const { seg, tool } = await startTool(
    "t_ex_funclatency",
    [`${ROOT}examples/funclatency/funclatency.ts`, TARGETS.pie, "add", "--json"],
    2,
  );
  try {
    const target = await new Deno.Command(TARGETS.pie, {
      args: ["funcs", "1000"],
      env: { LD_PRELOAD: AGENT, BPFTIME_GLOBAL_SHM_NAME: seg.name },
    }).output();
    assert.equal(target.code, 0);
    tool.kill("SIGTERM");
    const out = await tool.output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const buckets = JSON.parse(new TextDecoder().decode(out.stdout));
    const total = buckets.reduce((n: number, b: { count: number }) => n + b.count, 0);
    assert.equal(total, 1000);
    assert.deepEqual(seg.objects(), []); // the tool removed what it created
  } finally {
    seg.close();
    Segment.remove(seg.name);
  }
});

Deno.test("examples: the malloc tool prints per-process counts every second", async () => {
  const { seg, tool } = await startTool(
    "t_ex_malloc",
    [`${ROOT}examples/malloc/malloc.ts`, "--duration", "2"],
    1,
  );
  try {
    const target = await new Deno.Command(TARGETS.pie, {
      args: ["malloc", "500", "1"],
      env: { LD_PRELOAD: AGENT, BPFTIME_GLOBAL_SHM_NAME: seg.name },
      stdout: "piped",
    }).output();
    assert.equal(target.code, 0);
    const pid = JSON.parse(new TextDecoder().decode(target.stdout)).tids[0];
    const out = await tool.output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const text = new TextDecoder().decode(out.stdout);
    assert.match(text, /^\d\d:\d\d:\d\d$/m);
    const line = text.split("\n").reverse().find((l) => l.includes(`pid=${pid}\t`));
    assert.ok(line, text);
    assert.ok(Number(/malloc calls: (\d+)/.exec(line)![1]) >= 500, line);
  } finally {
    seg.close();
    Segment.remove(seg.name);
  }
});
