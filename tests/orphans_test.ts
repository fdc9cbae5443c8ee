/**
 * Objects die with their owner unless pinned: a `bpftime run` loader killed
 * with SIGKILL cannot clean up, so the next process that notices (a traced
 * process's agent, the next loader) removes its links, programs and maps.
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

const onlyPinnedLeft = (seg: Segment) =>
  seg.objects().every((o) => o.kind === "map" && o.name === "trace_printk");

function startRun(name: string): Deno.ChildProcess {
  return new Deno.Command(`${ROOT}bin/bpftime`, {
    args: ["run", `${ROOT}build/bpf/malloc.bpf.o`],
    env: { BPFTIME_GLOBAL_SHM_NAME: name },
    stdout: "null",
    stderr: "null",
  }).spawn();
}

Deno.test("orphans: a killed `bpftime run` loses its links and programs to the traced process's agent", async () => {
  const name = "t_orphan_agent";
  using seg = freshSegment(name, 8);
  const runner = startRun(name);
  const target = new Deno.Command(TARGETS.pie, {
    args: ["malloc-signal", "1000"],
    env: { BPFTIME_GLOBAL_SHM_NAME: name, LD_PRELOAD: AGENT },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  try {
    await until("the loader's link", () => seg.objects().some((o) => o.kind === "link"));
    const reader = target.stdout.getReader();
    assert.match(dec.decode((await reader.read()).value), /ready/);
    await sleep(500);
    runner.kill("SIGKILL");
    await runner.status;
    // Nobody else touches the segment: the target's agent notices the owner is gone.
    const killedAt = Date.now();
    await until("the orphans' removal", () => onlyPinnedLeft(seg), 5000);
    console.log(`orphans removed ${Date.now() - killedAt} ms after the kill`);
    // The target runs on, its malloc unprobed, and exits normally.
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
    assert.equal(out.signal, null);
    assert.equal(out.code, 0, dec.decode(out.stderr));
    assert.match(text, /done/);
    // The trace ring is pinned: a traced process may write to it at any time.
    assert.ok(seg.objects().some((o) => o.name === "trace_printk"));
  } finally {
    killQuietly(runner, target);
    Segment.remove(name);
  }
});

Deno.test("orphans: the next `bpftime run` removes a killed one's objects; `tool import` pins its own", async () => {
  const name = "t_orphan_next";
  using seg = freshSegment(name, 8);
  const env = { BPFTIME_GLOBAL_SHM_NAME: name };
  try {
    // Objects imported by a command that has exited stay: they are pinned.
    const spare = freshSegment("t_orphan_src");
    spare.createMap({ type: "array", name: "kept", keySize: 4, valueSize: 4, maxEntries: 2 });
    spare.close();
    const file = Deno.makeTempFileSync({ suffix: ".json" });
    const ex = await bpftimeEnv(["tool", "export", file], {
      BPFTIME_GLOBAL_SHM_NAME: "t_orphan_src",
    });
    assert.equal(ex.code, 0, ex.stderr);
    Segment.remove("t_orphan_src");
    const imp = await bpftimeEnv(["tool", "import", file], env);
    Deno.removeSync(file);
    assert.equal(imp.code, 0, imp.stderr);
    const imported = seg.objects().map((o) => o.id);

    const first = startRun(name);
    await until("the first loader's link", () => seg.objects().some((o) => o.kind === "link"));
    first.kill("SIGKILL");
    await first.status;
    const orphans = seg.objects().filter((o) =>
      !imported.includes(o.id) && o.name !== "trace_printk"
    ).map((o) => o.id);
    assert.ok(orphans.length >= 3); // a map, the program, the link
    const second = startRun(name);
    try {
      await until("the first loader's objects gone", () => {
        const ids = seg.objects().map((o) => o.id);
        return orphans.every((id) => !ids.includes(id));
      });
      await until("the second loader's link", () => seg.objects().some((o) => o.kind === "link"));
    } finally {
      second.kill("SIGTERM");
      await second.status;
    }
    assert.ok(seg.objects().some((o) => o.name === "kept"), "the imported map went");
  } finally {
    Segment.remove(name);
  }
});
