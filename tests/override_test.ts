/**
 * Override and replace in uprobes (tests/targets/override_target.c, tests/bpf/override.bpf.c):
 * bpf_override_return (58) makes compute() return at once, a replace program's r0 becomes its
 * return value, on each engine; the caller's callee-saved registers come back intact; a forked
 * child keeps the probes; a probe that is not at a function's entry cannot return for it.
 *
 * The kernel refuses bpf_override_return on uprobes (only error-injectable kernel functions may
 * be overridden), so there is no kernel side to compare with: the expected values follow from
 * the programs.
 */
import assert from "node:assert/strict";
import { BpfObject, Segment } from "../mod.ts";
import { AGENT } from "./probe_env.ts";
import { descendants, freshSegment, killQuietly, ROOT } from "./test_utils.ts";
import { descendantsNamed, Driven } from "./usdt_env.ts";
import { BIN } from "./server_env.ts";
import { resolveFunction } from "../lib/elf/symbols.ts";

const TARGET = `${ROOT}build/tests/override_target`;
const PROGS = `${ROOT}build/tests/override.bpf.o`;
const PERF_APP = `${ROOT}build/tests/override_perf`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function hits(obj: BpfObject): bigint[] {
  const m = obj.map("hits");
  return [0, 1, 2, 3].map((i) => {
    const k = new Uint8Array(4);
    new DataView(k.buffer).setUint32(0, i, true);
    return new DataView(m.lookup(k)!.buffer).getBigUint64(0, true);
  });
}

function ranOf(line: string): number {
  return Number(/ ran=(\d+) /.exec(line)![1]);
}

/** Asks `call X` until the answer matches (the agent installs links asynchronously). */
async function callUntil(t: Driven, x: number, want: RegExp): Promise<string> {
  const end = Date.now() + 10000;
  for (;;) {
    const line = await t.ask(`call ${x}`, /^compute/);
    if (want.test(line) || Date.now() > end) return line;
    await sleep(50);
  }
}

/**
 * `body` with the override target running under the agent (on `engine`, or the default one) in
 * a fresh segment holding the test programs; then all closed and removed, and the target must
 * have exited 0.
 */
async function withTarget(
  name: string,
  body: (t: Driven, obj: BpfObject) => Promise<void>,
  engine?: string,
) {
  const seg = freshSegment(`${name}_${Deno.pid}`, 8);
  const obj = BpfObject.open(PROGS);
  const t = new Driven(TARGET, [], {
    LD_PRELOAD: AGENT,
    BPFTIME_GLOBAL_SHM_NAME: seg.name,
    ...(engine ? { BPFTIME_VM_NAME: engine } : {}),
  });
  try {
    obj.load(seg);
    await body(t, obj);
  } finally {
    const st = await t.close();
    obj.close();
    seg.close();
    Segment.remove(seg.name);
    assert.equal(st.code, 0, t.stderr);
  }
}

for (const engine of ["interp", "jit", "llvm"]) {
  Deno.test(`override: bpf_override_return and replace programs return for compute() (${engine})`, () =>
    withTarget(`override_${engine}`, async (t, obj) => {
      assert.equal(await t.ask("call 3", /^compute/), "compute(3)=7 ran=1 kept=1");
      const ov = obj.program("override_even").attachUprobe({ path: TARGET, func: "compute" });
      // Even x: -x, the body skipped (`ran` stays); odd x: the body runs.
      const first = await callUntil(t, 4, /\)=-4 /);
      const base = ranOf(first);
      assert.equal(first, `compute(4)=-4 ran=${base} kept=1`);
      assert.equal(await t.ask("call 5", /^compute/), `compute(5)=11 ran=${base + 1} kept=1`);
      assert.equal(await t.ask("call -8", /^compute/), `compute(-8)=8 ran=${base + 1} kept=1`);
      // A forked child keeps the hook (same code, same links).
      await t.ask("fork 6", /^compute\(6\)/);
      assert.deepEqual(t.lines.slice(-2), [
        `child compute(6)=-6 ran=${base + 1} kept=1`,
        `compute(6)=-6 ran=${base + 1} kept=1`,
      ]);
      const [seen, done, refused] = hits(obj);
      assert.equal(done, 4n, "override_return answered 0 for each even x (4, -8, 6 twice)");
      assert.equal(refused, 0n);
      assert.equal(seen, 5n);
      ov.destroy();
      const back = await callUntil(t, 4, /\)=9 /);
      assert.match(back, /^compute\(4\)=9 ran=\d+ kept=1$/);
      // Replace: r0 (all 64 bits) is compute's value, for every x.
      const rep = obj.program("replace_compute").attachUprobe({ path: TARGET, func: "compute" });
      const replaced = await callUntil(t, 3, /\)=299 /);
      const base2 = ranOf(replaced);
      assert.equal(replaced, `compute(3)=299 ran=${base2} kept=1`);
      assert.equal(
        await t.ask("call -5000000000", /^compute/),
        `compute(-5000000000)=-500000000001 ran=${base2} kept=1`,
      );
      rep.destroy();
      assert.match(await callUntil(t, 2, /\)=5 /), /^compute\(2\)=5 ran=\d+ kept=1$/);
    }, engine));
}

Deno.test("override: away from a function's entry, bpf_override_return answers -EINVAL and changes nothing", () =>
  withTarget("override_mid", async (t, obj) => {
    await t.ask("call 1", /^compute/);
    // compute+4: past its first instruction (the return address is no longer on top, maybe).
    const dis = new Deno.Command("objdump", {
      args: ["-d", "--no-show-raw-insn", `--disassemble=compute`, TARGET],
    }).outputSync();
    const insns = [...new TextDecoder().decode(dis.stdout).matchAll(/^\s+([0-9a-f]+):/gm)].map((
      m,
    ) => parseInt(m[1], 16));
    assert.ok(insns.length >= 2, "compute has a second instruction");
    const second = BigInt(insns[1] - insns[0]);
    obj.program("override_even").attachUprobe({ path: TARGET, func: "compute", offset: second });
    const end = Date.now() + 10000;
    while (hits(obj)[0] === 0n && Date.now() < end) await t.ask("call 2", /^compute/);
    assert.match(
      await t.ask("call 4", /^compute/),
      /^compute\(4\)=9 ran=\d+ kept=1$/,
      "the body ran",
    );
    const [seen, done, refused] = hits(obj);
    assert.equal(done, 0n);
    assert.equal(refused, seen, "every even call was refused (-EINVAL)");
    assert.throws(
      () =>
        obj.program("replace_compute").attachUprobe({
          path: TARGET,
          func: "compute",
          offset: second,
        }),
      /replace .*compute\+\d+: a replace program must be at a function's entry/,
    );
  }));

Deno.test("override: through the syscall server, bpftime's perf types 1008 (override) and 1009 (replace), and the uprobe PMU at a function's entry", async () => {
  const seg = freshSegment(`override_perf_${Deno.pid}`, 8);
  const env = { BPFTIME_GLOBAL_SHM_NAME: seg.name };
  const t = new Driven(TARGET, [], { LD_PRELOAD: AGENT, ...env });
  const offset = `0x${
    resolveFunction(Deno.readFileSync(TARGET), "compute").fileOffset.toString(16)
  }`;
  try {
    assert.equal(await t.ask("call 3", /^compute/), "compute(3)=7 ran=1 kept=1");
    for (
      const [kind, value, x] of [["replace", 4242, 3], ["override", 77, 4], [
        "uprobe",
        55,
        5,
      ]] as const
    ) {
      const app = new Driven(BIN, ["load", PERF_APP, kind, TARGET, offset, String(value)], env);
      try {
        await app.waitLine(/^attached$/, 30000);
        assert.match(
          await callUntil(t, x, new RegExp(`\\)=${value} `)),
          new RegExp(`^compute\\(${x}\\)=${value} ran=\\d+ kept=1$`),
          `${kind}: ${app.stderr}`,
        );
        const pid = descendantsNamed(app.child.pid, "override_perf")[0];
        Deno.kill(pid, "SIGTERM");
        assert.equal((await app.close()).code, 0, app.stderr);
        assert.match(await callUntil(t, x, new RegExp(`\\)=${2 * x + 1} `)), /kept=1$/);
      } finally {
        // bpftime load runs the app as its child: on a failure, neither may outlive the test.
        killQuietly(...descendants(app.child.pid), app.child.pid);
        await app.close().catch(() => {});
      }
    }
    assert.equal(seg.stats().objects, 0, "nothing left in the segment");
  } finally {
    const st = await t.close();
    seg.close();
    Segment.remove(seg.name);
    assert.equal(st.code, 0, t.stderr);
  }
});

Deno.test("override: four threads and a 1 ms signal handler call compute() while the override is attached and detached over and over", () =>
  withTarget("override_storm", async (t, obj) => {
    await t.ask("call 1", /^compute/);
    const reply = t.ask("storm 4 1000000", /^storm /, 60000);
    let done = false;
    reply.then(() => (done = true), () => (done = true));
    let cycles = 0;
    while (!done) {
      const l = obj.program("override_even").attachUprobe({ path: TARGET, func: "compute" });
      await sleep(30);
      l.destroy();
      await sleep(30);
      cycles++;
    }
    const line = await reply;
    console.log(`${line} (${cycles} attach/detach cycles)`);
    const m = /^storm orig=(\d+) other=(\d+) bad=(\d+) handler=1 handler_bad=0$/.exec(line);
    assert.ok(m, line);
    const [orig, other, bad] = m.slice(1).map(Number);
    assert.equal(bad, 0, "every result the body's or the override's, registers kept");
    assert.equal(orig + other, 4000000);
    assert.ok(other > 0, "some calls were overridden");
    assert.match(await t.ask("call 4", /^compute/), /^compute\(4\)=9 ran=\d+ kept=1$/);
  }));
