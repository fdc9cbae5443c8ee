/**
 * Termination: no program runs unbounded. The validator refuses loops it can see have no exit
 * (as the kernel does: "infinite loop detected"), and every engine counts back-edges and calls
 * against an instruction budget (default: the kernel's 1,000,000 per run, BPFTIME_INSN_BUDGET),
 * stopping the run with an error naming the pc.
 */
import assert from "node:assert/strict";
import { type Engine, Vm, VmError } from "../ffi/vm.ts";
import { assemble } from "../lib/isa/assembler.ts";
import { cookieStats, loadProbes, runTraced, TARGETS } from "./probe_env.ts";
import { bpftime, bpftimeEnv, freshSegment } from "./test_utils.ts";

const ENGINES: Engine[] = ["interp", "jit", "llvm"];
/** A loop whose exit is never taken (r0 would have to wrap around 2^64). */
const ENDLESS = "mov %r0, 0\nloop:\nadd %r0, 1\njne %r0, 0, loop\nexit";

function refused(source: string, pattern: RegExp): void {
  using vm = new Vm({ engine: "interp" });
  assert.throws(() => vm.load(assemble(source)), pattern);
}

Deno.test("validator: a loop with no way out is refused, as the kernel refuses it", () => {
  const loop = /infinite loop detected/;
  refused("ja -1\nexit", /^VmError: pc 0: infinite loop detected/); // for (;;) {}
  refused("mov %r0, 0\nloop:\nadd %r0, 1\nja loop\nexit", /^VmError: pc 2: infinite loop/);
  // A cycle of unconditional jumps and fallthrough.
  refused("mov %r0, 1\na:\nadd %r0, 1\nja b\nexit\nb:\nmov %r1, 2\nja a", loop);
  // The conditional jump inside stays inside the loop.
  refused("a:\njeq %r1, 0, b\nadd %r0, 1\nb:\nja a\nexit", loop);
  // In a subprogram too.
  refused("call local f\nexit\nf:\nmov %r0, 1\nja -1\nexit", /^VmError: pc 3: infinite loop/);
  // Loops that can leave are accepted; so is a conditional `ja`-style loop with an exit.
  for (
    const ok of [
      "mov %r0, 0\nloop:\nadd %r0, 1\njlt %r0, 10, loop\nexit",
      "mov %r0, 0\nloop:\njgt %r0, 9, out\nadd %r0, 1\nja loop\nout:\nexit",
      ENDLESS,
    ]
  ) {
    using vm = new Vm({ engine: "interp" });
    vm.load(assemble(ok));
  }
});

for (const engine of ENGINES) {
  Deno.test(`${engine}: budget: by default a run stops after 1,000,000 instructions`, () => {
    using vm = new Vm({ engine });
    vm.load(assemble(ENDLESS));
    const start = performance.now();
    assert.throws(
      () => vm.exec(),
      /^VmError: pc 2: instruction budget of 1000000 exhausted/,
    );
    assert.ok(performance.now() - start < 5000);
    // Loops inside the budget run to the end, as often as asked.
    using ok = new Vm({ engine });
    ok.load(assemble("mov %r0, 0\nloop:\nadd %r0, 1\njlt %r0, 300000, loop\nexit"));
    for (let i = 0; i < 3; i++) assert.equal(ok.exec(), 300000n);
  });

  Deno.test(`${engine}: budget: calls count (recursion within 8 frames is bounded too)`, () => {
    // Each level calls the next ten times: 10^7 calls without a single back-edge.
    let s = "mov %r0, 0\ncall local f1\nexit\n";
    for (let i = 1; i <= 7; i++) {
      s += `f${i}:\n` + (i < 7 ? `call local f${i + 1}\n`.repeat(10) : "add %r0, 1\n") + "exit\n";
    }
    using vm = new Vm({ engine, instructionBudget: 100000 });
    vm.load(assemble(s));
    assert.throws(() => vm.exec(), /instruction budget of 100000 exhausted/);
  });

  Deno.test(`${engine}: budget: straight-line code counts nothing`, () => {
    using vm = new Vm({ engine, instructionBudget: 1 });
    vm.load(assemble("mov %r0, 1\nadd %r0, 2\nja +1\nmov %r0, 9\nexit"));
    assert.equal(vm.exec(), 3n);
  });
}

Deno.test("budget: BPFTIME_INSN_BUDGET sets the default; 0 is unlimited; nonsense is refused", () => {
  const old = Deno.env.get("BPFTIME_INSN_BUDGET");
  const loop = assemble("mov %r0, 0\nloop:\nadd %r0, 1\njlt %r0, 2000000, loop\nexit");
  try {
    Deno.env.set("BPFTIME_INSN_BUDGET", "0");
    using unlimited = new Vm({ engine: "jit" });
    unlimited.load(loop);
    assert.equal(unlimited.exec(), 2000000n);
    Deno.env.set("BPFTIME_INSN_BUDGET", "5000");
    using small = new Vm({ engine: "jit" });
    small.load(loop);
    assert.throws(() => small.exec(), /budget of 5000 exhausted/);
    for (const bad of ["abc", "-1", "1e6", "99999999999999999999999"]) {
      Deno.env.set("BPFTIME_INSN_BUDGET", bad);
      assert.throws(() => new Vm(), VmError);
      assert.throws(() => new Vm(), /BPFTIME_INSN_BUDGET='.*': expected a whole number/);
    }
  } finally {
    if (old === undefined) Deno.env.delete("BPFTIME_INSN_BUDGET");
    else Deno.env.set("BPFTIME_INSN_BUDGET", old);
  }
});

Deno.test("tool plugin refuses `ja -1`; tool run stops an endless program with an error", async () => {
  const plugin = await bpftime(
    ["tool", "plugin"],
    "05 00 ff ff 00 00 00 00 95 00 00 00 00 00 00 00",
  );
  assert.equal(plugin.code, 1);
  assert.match(plugin.stderr, /pc 0: infinite loop detected/);
  const name = "t_term_toolrun";
  const seg = freshSegment(name);
  const prog = seg.createProgram("endless", assemble(ENDLESS));
  seg.close();
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/data.bin`, new Uint8Array([1]));
    const r = await bpftimeEnv(["tool", "run", String(prog), `${dir}/data.bin`], {
      BPFTIME_GLOBAL_SHM_NAME: name,
    });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /pc 2: instruction budget of 1000000 exhausted/);
  } finally {
    await Deno.remove(dir, { recursive: true });
    await bpftimeEnv(["tool", "remove"], { BPFTIME_GLOBAL_SHM_NAME: name });
  }
});

Deno.test("uprobe: an endless program is stopped and logged; the traced process runs on", async () => {
  const { seg, obj } = loadProbes("t_term_uprobe");
  using _ = seg;
  using __ = obj;
  obj.program("on_entry").attachUprobe({ path: TARGETS.pie, func: "add", cookie: 3n });
  const { resolveFunction } = await import("../lib/elf/symbols.ts");
  const add = resolveFunction(Deno.readFileSync(TARGETS.pie), "add");
  // Stored without the loader's checks: one endless, one `ja -1`.
  for (const [name, code] of [["endless", assemble(ENDLESS)], ["spin", assemble("ja -1\nexit")]]) {
    const prog = seg.createProgram(name as string, code as Uint8Array, 2);
    seg.createLink(name as string, {
      progId: prog,
      type: "uprobe",
      target: TARGETS.pie,
      offset: add.fileOffset,
    });
  }
  const r = await runTraced(seg, TARGETS.pie, ["funcs", "50"]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(
    r.stderr,
    /link \d+: pc 2: instruction budget of 1000000 exhausted \(logged once; the process goes on\)/,
  );
  assert.match(r.stderr, /program \d+ refused: pc 0: infinite loop detected/);
  assert.equal(cookieStats(obj, 3).calls, 50n); // the other probe of the site still runs
});
