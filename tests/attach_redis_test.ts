/**
 * `bpftime attach` on a real server under load: Debian's redis-server, started normally,
 * driven by redis-benchmark while the agent is attached, detached and re-attached 20 times,
 * with a counting uprobe on processCommand (entered once per request) and a uretprobe on call
 * (which runs each command). The benchmark sees no error, the server answers, its data is
 * intact, and the counts match the commands the server says it processed: every command of
 * an attached window is counted, none while detached.
 */
import assert from "node:assert/strict";
import { Segment } from "../ffi/shm.ts";
import { Redis, redisBinary, redisInstalled } from "../testing/redis.ts";
import { cookieStats, loadProbes } from "./probe_env.ts";
import { bpftimeEnv } from "./test_utils.ts";

const CYCLES = 20;
const KEYS = 1000;
const WINDOW_MS = 150;
const ENTRY = 1, RET = 2; // cookies: slots of by_cookie
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("attach: redis-server under redis-benchmark, attached and detached 20 times: no errors, data intact, counts match", async () => {
  if (!redisInstalled()) {
    console.log(
      "skipped: redis-server, redis-cli and redis-benchmark not installed (scripts/setup.sh)",
    );
    return;
  }
  const { seg, obj } = loadProbes(`bpftime_attach2_redis_${Deno.pid}`);
  const env = { BPFTIME_GLOBAL_SHM_NAME: seg.name };
  const redis = await Redis.start();
  let stop = false;
  let bench: Promise<void> | undefined;
  try {
    await redis.writeKeys("attach", KEYS);
    const before = await redis.checksum("attach", KEYS);
    const bin = redisBinary();
    obj.program("on_entry").attachUprobe({
      path: bin,
      func: "processCommand",
      cookie: BigInt(ENTRY),
    });
    obj.program("on_return").attachUprobe({
      path: bin,
      func: "call",
      cookie: BigInt(RET),
      retprobe: true,
    });
    const counts = () => {
      const e = cookieStats(obj, ENTRY), r = cookieStats(obj, RET);
      return { entries: Number(e.calls), returns: Number(r.retCalls) };
    };

    // The load: redis-benchmark runs back to back until the cycles are done.
    const errors: string[] = [];
    let runs = 0;
    bench = (async () => {
      while (!stop) {
        const r = await redis.benchmark(["-t", "get,set", "-n", "20000", "-c", "10", "-P", "1"]);
        if (r.errors) errors.push(r.errors);
        runs++;
      }
    })();
    await sleep(300);

    const start = await redis.commandsProcessed();
    let attachedCommands = 0;
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      const a = await bpftimeEnv(["attach", String(redis.pid)], env);
      assert.equal(a.code, 0, `cycle ${cycle}: ${a.stdout}${a.stderr}`);
      assert.match(a.stdout, cycle === 0 ? /loaded the bpftime agent/ : /re-armed/);
      // Until both probes run (the agent installs them from its follower thread).
      const c0 = counts();
      const end = Date.now() + 5000;
      for (let c = counts(); c.entries === c0.entries || c.returns === c0.returns; c = counts()) {
        assert.ok(Date.now() < end, `cycle ${cycle}: the probes never ran`);
        await sleep(20);
      }
      // An attached window: every command the server processed in it was counted.
      const p0 = counts();
      const s0 = await redis.commandsProcessed();
      await sleep(WINDOW_MS);
      const s1 = await redis.commandsProcessed();
      const p1 = counts();
      assert.ok(s1 - s0 > 0, `cycle ${cycle}: no request served while attached`);
      assert.ok(
        p1.entries - p0.entries >= s1 - s0 && p1.returns - p0.returns >= s1 - s0,
        `cycle ${cycle}: ${s1 - s0} commands, counted ${JSON.stringify({ p0, p1 })}`,
      );
      attachedCommands += s1 - s0;

      const d = await bpftimeEnv(["detach", String(redis.pid)], env);
      assert.equal(d.code, 0, `cycle ${cycle}: ${d.stdout}${d.stderr}`);
      // Until the hooks are gone, then a detached window: nothing counted while requests run.
      const gone = Date.now() + 5000;
      let last = counts();
      for (;;) {
        await sleep(60);
        const now = counts();
        if (now.entries === last.entries && now.returns === last.returns) break;
        assert.ok(Date.now() < gone, `cycle ${cycle}: the probes still run after detach`);
        last = now;
      }
      const q0 = counts();
      const t0 = await redis.commandsProcessed();
      await sleep(WINDOW_MS);
      const t1 = await redis.commandsProcessed();
      const q1 = counts();
      assert.ok(t1 - t0 > 0, `cycle ${cycle}: no request served while detached`);
      assert.deepEqual(q1, q0, `cycle ${cycle}: counted while detached (${t1 - t0} commands)`);
    }
    const total = (await redis.commandsProcessed()) - start;
    const final = counts();
    stop = true;
    await bench;

    assert.deepEqual(errors, [], "redis-benchmark reported errors");
    assert.ok(runs > 0);
    // Never more counted than processed (a few commands in flight at the edges aside).
    assert.ok(final.entries <= total + 50, `counted ${final.entries} of ${total} commands`);
    assert.ok(final.entries >= attachedCommands, `${final.entries} < ${attachedCommands}`);
    assert.equal((await redis.cli(["PING"])).out, "PONG");
    assert.equal(await redis.checksum("attach", KEYS), before, "the data changed");
    console.log(
      `${CYCLES} cycles, ${runs} benchmark runs, ${total} commands, counted ${final.entries} ` +
        `entries / ${final.returns} returns (${attachedCommands} in the attached windows)`,
    );
  } finally {
    stop = true;
    await redis.stop();
    await bench;
    const name = seg.name;
    obj.close();
    seg.close();
    Segment.remove(name);
  }
});
