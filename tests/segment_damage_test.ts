/**
 * The segment under attack: truncated or overwritten while a loader and a
 * traced process use it, or too large for /dev/shm. Nobody crashes: the loader
 * exits with a message, the agent removes its hooks and says so, `tool list`
 * prints an error, and a segment /dev/shm cannot hold is refused at creation.
 */
import assert from "node:assert/strict";
import { Segment } from "../ffi/shm.ts";
import { AGENT, TARGETS } from "./probe_env.ts";
import { bpftimeEnv, freshSegment, killQuietly, ROOT } from "./test_utils.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const dec = new TextDecoder();

async function until(what: string, ok: () => boolean, ms = 10000) {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** `bpftime run malloc.bpf.o` on `name`, and a traced target waiting for SIGUSR1 to call malloc. */
async function loaderAndTarget(name: string) {
  freshSegment(name, 8).close();
  const env = { BPFTIME_GLOBAL_SHM_NAME: name };
  const runner = new Deno.Command(`${ROOT}bin/bpftime`, {
    args: ["run", `${ROOT}build/bpf/malloc.bpf.o`, "--dump-maps", "1"],
    env,
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const seg = Segment.open(name);
  await until("the link", () => seg.objects().some((o) => o.kind === "link"));
  seg.close();
  const target = new Deno.Command(TARGETS.pie, {
    args: ["malloc-signal", "1000"],
    env: { ...env, LD_PRELOAD: AGENT, BPFTIME_AGENT_LOG: "1" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = target.stdout.getReader();
  const first = await reader.read();
  assert.match(dec.decode(first.value), /ready/);
  await sleep(500); // the malloc hook is in
  return { runner, target, reader };
}

/** Lets the target call malloc (its hook gone), then ends it: it must exit normally. */
async function finishTarget(
  target: Deno.ChildProcess,
  reader: ReadableStreamDefaultReader<Uint8Array>,
) {
  target.kill("SIGUSR1");
  let text = "";
  while (!/done/.test(text)) {
    const r = await reader.read();
    if (r.done) break;
    text += dec.decode(r.value);
  }
  reader.releaseLock();
  target.kill("SIGTERM");
  const out = await target.output();
  return { code: out.code, signal: out.signal, stdout: text, stderr: dec.decode(out.stderr) };
}

Deno.test("segment damage: truncated under a loader and a traced process, both go on without SIGBUS", async () => {
  const name = "t_dmg_trunc";
  const { runner, target, reader } = await loaderAndTarget(name);
  try {
    Deno.truncateSync(`/dev/shm/${name}`, 0);
    const out = await runner.output();
    const stderr = dec.decode(out.stderr);
    assert.equal(out.signal, null, stderr);
    assert.equal(out.code, 1, stderr);
    assert.match(stderr, /segment 't_dmg_trunc' shrank from 8388608 to 0 bytes/);
    await sleep(1000); // the agent's follower checks at least twice a second
    const t = await finishTarget(target, reader);
    assert.equal(t.signal, null, t.stderr);
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stdout, /done/);
    assert.match(t.stderr, /shrank from 8388608 to 0 bytes.*removing every hook/);
  } finally {
    killQuietly(runner, target);
    Segment.remove(name);
  }
});

Deno.test("segment damage: overwritten with garbage, the loader and the agent stop, and `tool list` says why", async () => {
  const name = "t_dmg_garbage";
  const { runner, target, reader } = await loaderAndTarget(name);
  try {
    const file = Deno.openSync(`/dev/shm/${name}`, { write: true }); // no O_TRUNC: same size
    const chunk = new Uint8Array(65536);
    for (let off = 0; off < 8 << 20; off += chunk.length) {
      crypto.getRandomValues(chunk);
      file.writeSync(chunk);
    }
    file.close();
    const out = await runner.output();
    const stderr = dec.decode(out.stderr);
    assert.equal(out.signal, null, stderr);
    assert.equal(out.code, 1, stderr);
    assert.match(stderr, /not a bpftime segment \(bad magic\)/);
    await sleep(1000);
    const t = await finishTarget(target, reader);
    assert.equal(t.signal, null, t.stderr);
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stderr, /bad magic\).*removing every hook/);
    const list = await bpftimeEnv(["tool", "list"], { BPFTIME_GLOBAL_SHM_NAME: name });
    assert.equal(list.code, 1);
    assert.match(list.stderr, /^bpftime: segment 't_dmg_garbage': not a bpftime segment/);
    assert.doesNotMatch(list.stderr, /\n\s+at /);
  } finally {
    killQuietly(runner, target);
    Segment.remove(name);
  }
});

Deno.test("segment damage: a garbage object table is refused at open; `tool list` prints an error", async () => {
  const name = "t_dmg_table";
  const seg = freshSegment(name);
  seg.createMap({ type: "array", name: "a", keySize: 4, valueSize: 8, maxEntries: 4 });
  seg.close();
  const file = Deno.openSync(`/dev/shm/${name}`, { write: true });
  file.seekSync(96, Deno.SeekMode.Start); // the object table, after the header's fields
  file.writeSync(new Uint8Array(48 * 4).fill(0xff));
  file.close();
  try {
    assert.throws(() => Segment.open(name), /object table is damaged/);
    const list = await bpftimeEnv(["tool", "list"], { BPFTIME_GLOBAL_SHM_NAME: name });
    assert.equal(list.code, 1);
    assert.match(list.stderr, /^bpftime: segment 't_dmg_table': object table is damaged/);
    assert.doesNotMatch(list.stderr, /\n\s+at /);
  } finally {
    Segment.remove(name);
  }
});

Deno.test("segment damage: a segment larger than /dev/shm can hold is refused at creation, not SIGBUS later", async () => {
  const df = await new Deno.Command("df", { args: ["-B1M", "--output=size", "/dev/shm"] }).output();
  const totalMb = Number(dec.decode(df.stdout).trim().split("\n").pop());
  assert.ok(totalMb > 0);
  const name = "t_dmg_full";
  try {
    Segment.remove(name);
  } catch { /* none */ }
  assert.throws(
    () => Segment.open(name, { create: true, sizeMb: totalMb + 1024 }),
    /cannot reserve \d+ MiB in \/dev\/shm \(\d+ MiB free\): No space left on device/,
  );
  assert.throws(() => Deno.statSync(`/dev/shm/${name}`), Deno.errors.NotFound);
  const run = await bpftimeEnv(["run", `${ROOT}build/bpf/malloc.bpf.o`], {
    BPFTIME_GLOBAL_SHM_NAME: name,
    BPFTIME_SHM_MEMORY_MB: String(totalMb + 1024),
  });
  assert.equal(run.code, 1, run.stderr);
  assert.match(run.stderr, /cannot reserve .*BPFTIME_SHM_MEMORY_MB lower/);
});
