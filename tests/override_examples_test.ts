/**
 * The override and replace examples, end to end:
 * - examples/errinject (a libbpf application under `bpftime load`, bpf_override_return at libc's
 *   malloc through the syscall server): the target under `bpftime start` sees exactly the share
 *   of its malloc calls fail that was asked, then none once errinject ends;
 * - examples/hotpatch (the TypeScript loader, a `uprobe.replace` program): the server answers an
 *   out-of-bounds index with the secret after its table (and crashes on a far one) until the
 *   patch is attached, then with a clean error, valid indexes still right; unpatched again after.
 */
import assert from "node:assert/strict";
import { Segment } from "../mod.ts";
import { BIN } from "./server_env.ts";
import { DENO, freshSegment, killQuietly, ROOT } from "./test_utils.ts";
import { descendantsNamed, Driven } from "./usdt_env.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function segment(what: string): Segment & Disposable {
  const seg = freshSegment(`override_ex_${what}_${Deno.pid}`, 16);
  return Object.assign(seg, {
    [Symbol.dispose]() {
      seg.close();
      Segment.remove(seg.name);
    },
  });
}

Deno.test("examples/errinject: malloc fails for the asked share of one process's calls, then not at all", async () => {
  using seg = segment("errinject");
  const env = { BPFTIME_GLOBAL_SHM_NAME: seg.name };
  const victim = new Driven(BIN, ["start", `${ROOT}build/examples/errinject_victim`], env);
  const bystander = new Driven(BIN, ["start", `${ROOT}build/examples/errinject_victim`], env);
  let tool: Driven | undefined;
  try {
    await victim.waitLine(/^victim ready$/, 30000);
    await bystander.waitLine(/^victim ready$/, 30000);
    const pid = descendantsNamed(victim.child.pid, "errinject_victi")[0] ?? victim.child.pid;
    assert.equal(await victim.ask("alloc 100", /^alloc/), "alloc 100 failed=0");
    tool = new Driven(BIN, [
      "load",
      `${ROOT}build/examples/errinject`,
      "-p",
      String(pid),
      "-r",
      "50",
    ], env);
    await tool.waitLine(/^injecting$/, 30000);
    // The agent installs the hook asynchronously: wait for the first failures.
    let line = "";
    for (let i = 0; i < 100 && !/failed=[1-9]/.test(line); i++) {
      line = await victim.ask("alloc 1", /^alloc/);
      await sleep(50);
    }
    assert.match(line, /^alloc 1 failed=[01]$/);
    assert.equal(await victim.ask("alloc 100", /^alloc/), "alloc 100 failed=50", "exactly half");
    assert.equal(await victim.ask("alloc 10", /^alloc/), "alloc 10 failed=5");
    assert.equal(
      await bystander.ask("alloc 100", /^alloc/),
      "alloc 100 failed=0",
      "another process",
    );
    const app = descendantsNamed(tool.child.pid, "errinject")[0];
    assert.ok(app, "errinject's pid");
    Deno.kill(app, "SIGTERM");
    assert.equal((await tool.close()).code, 0, tool.stderr);
    const stats = tool.lines.find((l) => l.startsWith("calls="));
    assert.match(stats ?? "", /^calls=\d+ failed=\d+$/);
    const [calls, failed] = stats!.match(/\d+/g)!.map(Number);
    assert.ok(calls >= 110 && failed === Math.floor(calls / 2), stats);
    let after = "";
    for (let i = 0; i < 100 && after !== "alloc 100 failed=0"; i++) {
      after = await victim.ask("alloc 100", /^alloc/);
      await sleep(50);
    }
    assert.equal(after, "alloc 100 failed=0", "errinject gone: malloc works again");
  } finally {
    if (tool) {
      killQuietly(tool.child);
      await tool.close().catch(() => {});
    }
    for (const p of [victim, bystander]) assert.equal((await p.close()).code, 0, p.stderr);
  }
});

/** One request to the price server, on a connection of its own. */
async function ask(port: number, req: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(new TextEncoder().encode(req + "\n"));
    const buf = new Uint8Array(256);
    let text = "";
    while (!text.includes("\n")) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    return text.trim();
  } finally {
    conn.close();
  }
}

Deno.test("examples/hotpatch: a replace program fixes the server's out-of-bounds read while it runs", async () => {
  const SERVER = `${ROOT}build/examples/hotpatch_server`;
  // Unpatched, a far index crashes it.
  const plain = new Driven(SERVER, []);
  const plainPort = Number((await plain.waitLine(/^listening \d+$/)).split(" ")[1]);
  assert.equal(await ask(plainPort, "get 100000000"), "", "no answer: it crashed");
  assert.equal((await plain.close()).signal, "SIGSEGV");

  using seg = segment("hotpatch");
  const env = { BPFTIME_GLOBAL_SHM_NAME: seg.name };
  const server = new Driven(BIN, ["start", SERVER], env);
  let patch: Driven | undefined;
  try {
    const port = Number((await server.waitLine(/^listening \d+$/, 30000)).split(" ")[1]);
    assert.equal(await ask(port, "get 2"), "value 30");
    assert.equal(await ask(port, "get 8"), `value ${0x5ec2e7}`, "the bug: the secret leaks");
    patch = new Driven(DENO, ["run", "-A", `${ROOT}examples/hotpatch/hotpatch.ts`, SERVER], env);
    await patch.waitLine(/^patched /, 30000);
    let answer = "";
    for (let i = 0; i < 100 && answer !== "error: no entry 8"; i++) {
      answer = await ask(port, "get 8");
      await sleep(50);
    }
    assert.equal(answer, "error: no entry 8", "patched: a clean error");
    assert.equal(await ask(port, "get 100000000"), "error: no entry 100000000", "no crash");
    assert.equal(await ask(port, "get -1"), "error: no entry -1");
    assert.equal(await ask(port, "get 0"), "value 10", "valid indexes still answered");
    assert.equal(await ask(port, "get 7"), "value 80");
    Deno.kill(patch.child.pid, "SIGINT");
    assert.equal((await patch.close()).code, 0, patch.stderr);
    assert.ok(patch.lines.includes("unpatched"));
    let back = "";
    for (let i = 0; i < 100 && back !== `value ${0x5ec2e7}`; i++) {
      back = await ask(port, "get 8");
      await sleep(50);
    }
    assert.equal(back, `value ${0x5ec2e7}`, "the patch removed: the original code again");
  } finally {
    if (patch) {
      killQuietly(patch.child);
      await patch.close().catch(() => {});
    }
    server.child.kill("SIGTERM");
    await server.close().catch(() => {});
  }
});
