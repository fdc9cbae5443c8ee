/**
 * Uprobe links coming and going while the target runs, the agent as an
 * ordinary user, and bad input: none of it may crash the target or leave
 * the segment damaged.
 */
import assert from "node:assert/strict";
import { BpfObject } from "../api/bpf_object.ts";
import { readSections } from "../lib/elf/sections.ts";
import { Segment } from "../ffi/shm.ts";
import { AGENT, cookieStats, loadProbes, PROBES, runTraced, TARGETS } from "./probe_env.ts";
import { asNobody, freshSegment, nobodyCanRun, ROOT } from "./test_utils.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts `probe_target loop` with the agent and waits for its threads to run. */
async function startLoop(seg: Segment, threads: number, env: Record<string, string> = {}) {
  const child = new Deno.Command(TARGETS.pie, {
    args: ["loop", "120", String(threads)],
    env: { LD_PRELOAD: AGENT, BPFTIME_GLOBAL_SHM_NAME: seg.name, ...env },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.getReader();
  const first = await reader.read();
  assert.match(new TextDecoder().decode(first.value), /ready/);
  reader.releaseLock();
  return child;
}

async function stopLoop(child: Deno.ChildProcess) {
  child.kill("SIGTERM");
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

async function until(what: string, ok: () => boolean, ms = 5000) {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(1);
  }
}

Deno.test("uprobe: 1,000 attach/detach cycles while 8 threads call the function", async () => {
  const { seg, obj } = loadProbes("t_up_cycles");
  using _ = seg;
  using __ = obj;
  const child = await startLoop(seg, 8);
  let seen = 0n;
  for (let i = 0; i < 1000; i++) {
    // Alternate entry and return probes: return stubs in flight must survive their link's removal.
    const retprobe = i % 2 === 1;
    const link = obj.program(retprobe ? "on_return" : "on_entry").attachUprobe({
      path: TARGETS.pie,
      func: "add",
      cookie: 1n,
      retprobe,
    });
    await until(`hook ${i}`, () => {
      const s = cookieStats(obj, 1);
      return s.calls + s.retCalls > seen;
    });
    link.destroy();
    const s = cookieStats(obj, 1);
    seen = s.calls + s.retCalls;
  }
  const r = await stopLoop(child);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.doesNotMatch(r.stdout, /WRONG/);
  assert.equal(r.stderr, "");
  assert.ok(JSON.parse(r.stdout.trim().split("\n").pop()!).calls > 0);
});

Deno.test("uprobe: the agent and its probes work for an ordinary user", async () => {
  if (!(await nobodyCanRun(TARGETS.pie))) {
    console.log("skip: needs root to switch to user nobody, and a checkout nobody can read");
    return;
  }
  // Root's segment, shared on purpose with the user's group (BPFTIME_SHM_GROUP: mode 0660).
  const seg = freshSegment("t_up_nobody", 8, "nogroup");
  assert.equal(Deno.statSync("/dev/shm/t_up_nobody").mode! & 0o777, 0o660);
  const obj = BpfObject.open(PROBES);
  try {
    obj.load(seg);
    obj.program("on_entry").attachUprobe({ path: TARGETS.pie, func: "add", cookie: 2n });
    const out = await asNobody([TARGETS.pie, "funcs", "1000"], {
      LD_PRELOAD: AGENT,
      BPFTIME_GLOBAL_SHM_NAME: seg.name,
      BPFTIME_SHM_GROUP: "nogroup",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    assert.equal(stderr, "");
    assert.equal(cookieStats(obj, 2).calls, 1000n);
  } finally {
    obj.close();
    seg.close();
  }
});

Deno.test("uprobe: unknown symbols and files are clear errors naming them; nothing is created", () => {
  const { seg, obj } = loadProbes("t_up_bad");
  using _ = seg;
  using __ = obj;
  const before = seg.objects().length;
  assert.throws(
    () => obj.program("on_entry").attachUprobe({ path: TARGETS.pie, func: "no_such_function" }),
    /probe_target: no function 'no_such_function'/,
  );
  assert.throws(
    () => obj.program("on_entry").attachUprobe({ path: "/nonexistent/bin", func: "main" }),
    /'\/nonexistent\/bin': no such file/,
  );
  assert.throws(
    () => obj.program("on_entry").attachUprobe({ path: "libnot-there.so.9", func: "f" }),
    /libnot-there\.so\.9': not found in the library path/,
  );
  assert.equal(seg.objects().length, before);
});

Deno.test("object: corrupt and truncated objects are refused by name; the segment is untouched", () => {
  using seg = freshSegment("t_obj_corrupt");
  const bytes = Deno.readFileSync(PROBES);
  const dir = Deno.makeTempDirSync();
  try {
    Deno.writeFileSync(`${dir}/trunc.bpf.o`, bytes.slice(0, 300));
    assert.throws(() => BpfObject.open(`${dir}/trunc.bpf.o`), /trunc\.bpf\.o: .*runs past the end/);
    Deno.writeFileSync(`${dir}/junk.bpf.o`, new TextEncoder().encode("not an object"));
    assert.throws(() => BpfObject.open(`${dir}/junk.bpf.o`), /junk\.bpf\.o: not an ELF file/);
    assert.throws(() => BpfObject.open(`${dir}/missing.bpf.o`), /missing\.bpf\.o: cannot read/);
    // Damage one instruction: the program is refused at load, with nothing left behind.
    const bad = bytes.slice();
    const text = findSection(bad, "uprobe");
    bad[text + 13 * 8] = 0xff; // on_entry's `r0 = 0`: not an opcode any more
    Deno.writeFileSync(`${dir}/badop.bpf.o`, bad);
    const obj = BpfObject.open(`${dir}/badop.bpf.o`);
    assert.throws(() => obj.load(seg), /badop\.bpf\.o: program 'on_entry' \(uprobe\): .*pc 13/);
    assert.deepEqual(seg.objects(), []);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

/** File offset of the first byte of section `name`. */
function findSection(bytes: Uint8Array, name: string): number {
  const found = readSections(bytes).find((s) => s.name === name);
  if (!found) throw new Error(`no section ${name}`);
  return found.offset;
}

Deno.test("uprobe: targets that exit while links come and go leave the segment intact", async () => {
  const { seg, obj } = loadProbes("t_up_exiting");
  using _ = seg;
  using __ = obj;
  const runs = [];
  for (let i = 0; i < 20; i++) {
    runs.push(runTraced(seg, TARGETS.pie, ["funcs", "200"]));
    const link = obj.program("on_entry").attachUprobe({
      path: TARGETS.pie,
      func: "add",
      cookie: 4n,
    });
    await sleep(5);
    link.destroy();
  }
  for (const r of await Promise.all(runs)) {
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(r.stderr, "");
  }
  // The maps and programs are still there and usable; no link is left.
  assert.deepEqual(seg.objects().map((o) => o.kind).sort(), [
    "map",
    "map",
    "prog",
    "prog",
    "prog",
    "prog",
  ]);
  const s = cookieStats(obj, 4);
  assert.ok(s.calls <= 20n * 200n);
});

Deno.test("uprobe: a program the VM refuses is logged by the agent; the target runs unhooked", async () => {
  using seg = freshSegment("t_up_badprog", 8);
  // Stored without the loader's checks: a call to a helper id that does not exist.
  const prog = seg.createProgram(
    "bad",
    new Uint8Array([0x85, 0, 0, 0, 0xff, 0xff, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]),
    2,
  );
  const { resolveFunction } = await import("../lib/elf/symbols.ts");
  const add = resolveFunction(Deno.readFileSync(TARGETS.pie), "add");
  seg.createLink("bad", {
    progId: prog,
    type: "uprobe",
    target: TARGETS.pie,
    offset: add.fileOffset,
  });
  const r = await runTraced(seg, TARGETS.pie, ["funcs", "100"]);
  assert.equal(r.code, 0, r.stdout);
  assert.match(r.stderr, /bpftime-agent\[\d+\]: program \d+ refused: pc 0: .*helper/);
  assert.match(r.stderr, /link \d+ \(.*probe_target\+0x[0-9a-f]+\): program \d+ cannot run/);
});

Deno.test("uretprobe: a function that never returns (exit) does not disturb the process", async () => {
  const { seg, obj } = loadProbes("t_up_exit");
  using _ = seg;
  using __ = obj;
  obj.program("on_entry").attachUprobe({ path: "libc.so.6", func: "exit", cookie: 7n });
  obj.program("on_return").attachUprobe({
    path: "libc.so.6",
    func: "exit",
    cookie: 7n,
    retprobe: true,
  });
  const r = await runTraced(seg, TARGETS.pie, ["funcs", "10"]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(r.stderr, "");
  const s = cookieStats(obj, 7);
  assert.equal(s.calls, 1n);
  assert.equal(s.retCalls, 0n);
});

Deno.test("uprobe: a program that writes its struct pt_regs faults, is logged once, and changes nothing", async () => {
  using seg = freshSegment("t_up_ctxwrite", 8);
  using obj = BpfObject.open(`${ROOT}build/tests/writes_ctx.bpf.o`);
  obj.load(seg);
  obj.program("clobber").attachUprobe({ path: TARGETS.pie, func: "add" });
  const r = await runTraced(seg, TARGETS.pie, ["funcs", "1000"]);
  assert.equal(r.code, 0, r.stdout + r.stderr); // add() still gets its own arguments
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, r.stderr);
  assert.match(
    lines[0],
    /link \d+: pc \d+: out-of-bounds store of 8 bytes .*\(logged once; the process goes on\)/,
  );
});
