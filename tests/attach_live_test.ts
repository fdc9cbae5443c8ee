/**
 * Links attached and detached while the traced process already runs: the
 * patcher must never run into its own half-written hooks, must not cut short
 * the process's blocking calls, and must not deadlock through its own
 * wrappers (the LLVM tier's dlopen). Every wait is bounded: a regression
 * fails, it does not hang.
 */
import assert from "node:assert/strict";
import { Segment } from "../ffi/shm.ts";
import { AGENT, ASM_LIB, cookieStats, loadProbes, runTraced, TARGETS } from "./probe_env.ts";
import { killQuietly, ROOT } from "./test_utils.ts";
import { KernelUprobe } from "../testing/kernel_bpf.ts";
import { resolveFunction } from "../lib/elf/symbols.ts";

const LIVE = `${ROOT}build/tests/live_target`;
const CTOR_LIB = `${ROOT}build/tests/libctor_dlopen.so`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A target started under the agent, its stdout read line by line with deadlines. */
class Live {
  readonly child: Deno.ChildProcess;
  #lines: string[] = [];
  #partial = "";
  #stderr = "";
  #done: Promise<void>;
  status?: Deno.CommandStatus;

  constructor(seg: Segment, args: string[], env: Record<string, string> = {}, target = LIVE) {
    const child = new Deno.Command(target, {
      args,
      env: { LD_PRELOAD: AGENT, BPFTIME_GLOBAL_SHM_NAME: seg.name, ...env },
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.child = child;
    const dec = new TextDecoder();
    const readOut = (async () => {
      for await (const chunk of child.stdout) {
        this.#partial += dec.decode(chunk);
        const parts = this.#partial.split("\n");
        this.#partial = parts.pop()!;
        this.#lines.push(...parts);
      }
    })();
    const readErr = (async () => {
      for await (const chunk of child.stderr) this.#stderr += dec.decode(chunk);
    })();
    this.#done = Promise.all([readOut, readErr, child.status]).then(([, , s]) => {
      this.status = s;
    });
  }

  get stdout(): string {
    return this.#lines.join("\n");
  }
  get stderr(): string {
    return this.#stderr;
  }
  describe(): string {
    const s = this.status;
    const how = !s ? "running" : s.signal ? `killed by ${s.signal}` : `exit code ${s.code}`;
    return `${how}; stdout: ${this.stdout}; stderr: ${this.stderr}`;
  }

  /** Waits for a stdout line matching `re`; fails if the target dies or `ms` pass. */
  async line(re: RegExp, ms: number): Promise<string> {
    const end = Date.now() + ms;
    for (;;) {
      const found = this.#lines.find((l) => re.test(l));
      if (found) return found;
      if (this.status) throw new Error(`target ended before printing ${re}: ${this.describe()}`);
      if (Date.now() > end) throw new Error(`no ${re} after ${ms} ms: ${this.describe()}`);
      await sleep(5);
    }
  }

  /** Waits for `ok()`; fails if the target dies or `ms` pass. */
  async until(what: string, ok: () => boolean, ms: number): Promise<void> {
    const end = Date.now() + ms;
    while (!ok()) {
      if (this.status) {
        throw new Error(`target ended while waiting for ${what}: ${this.describe()}`);
      }
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${this.describe()}`);
      await sleep(2);
    }
  }

  /** Waits for the target to exit (killed, and the test failed, after `ms`). */
  async exit(ms: number): Promise<Deno.CommandStatus> {
    const timer = setTimeout(() => {
      killQuietly(this.child);
    }, ms);
    await this.#done;
    clearTimeout(timer);
    if (this.status!.signal === "SIGKILL") {
      throw new Error(`target did not exit within ${ms} ms: ${this.describe()}`);
    }
    return this.status!;
  }

  /** Last stdout line as JSON. */
  // deno-lint-ignore no-explicit-any
  json(): any {
    return JSON.parse(this.#lines[this.#lines.length - 1]);
  }

  /** Makes sure nothing is left running when a test fails. */
  async [Symbol.asyncDispose]() {
    if (!this.status) {
      killQuietly(this.child);
    }
    await this.#done;
  }
}

function segName(what: string): string {
  return `t_rel_live_${what}_${Deno.pid}`;
}

function removeSegment(name: string) {
  try {
    Segment.remove(name);
  } catch { /* already gone */ }
}

const LIBC_FUNCS = ["malloc", "free", "memcpy@GLIBC_2.14", "opendir", "pthread_mutex_lock"];

Deno.test("attach live: uprobes on malloc, free, memcpy, opendir and pthread_mutex_lock come and go while 4 threads call them", async () => {
  const name = segName("attach");
  const { seg, obj } = loadProbes(name);
  try {
    await using live = new Live(seg, ["busy", "120", "4"]);
    await live.line(/^ready$/, 10000);
    const rounds = 4;
    for (let round = 0; round < rounds; round++) {
      for (const [i, func] of LIBC_FUNCS.entries()) {
        const cookie = 10 + i;
        const before = cookieStats(obj, cookie).calls;
        const link = obj.program("on_entry").attachUprobe({
          path: "libc.so.6",
          func,
          cookie: BigInt(cookie),
        });
        await live.until(
          `round ${round}: ${func} counted`,
          () => cookieStats(obj, cookie).calls > before,
          10000,
        );
        link.destroy();
      }
    }
    // Everything at once, then all removed together.
    const links = LIBC_FUNCS.map((func, i) =>
      obj.program("on_entry").attachUprobe({ path: "libc.so.6", func, cookie: BigInt(20 + i) })
    );
    await live.until(
      "all five counted",
      () => LIBC_FUNCS.every((_, i) => cookieStats(obj, 20 + i).calls > 0n),
      10000,
    );
    for (const l of links) l.destroy();
    await sleep(50);
    assert.equal(live.status, undefined, live.describe());
    live.child.kill("SIGTERM");
    const status = await live.exit(20000);
    assert.equal(status.code, 0, live.describe());
    assert.doesNotMatch(live.stdout, /WRONG/);
    assert.equal(live.stderr, "");
    const r = live.json();
    assert.ok(r.rounds > 0 && r.rounds === r.locked, live.stdout);
  } finally {
    obj.close();
    seg.close();
    removeSegment(name);
  }
});

Deno.test("attach live: blocking calls run their full time while links are attached and detached", async () => {
  const name = segName("block");
  const { seg, obj } = loadProbes(name);
  const MS = 3000;
  try {
    await using live = new Live(seg, ["block", String(MS)]);
    await live.line(/^ready$/, 10000);
    await sleep(150); // every thread is inside its call
    const start = Date.now();
    let attaches = 0;
    // Attach (each patch moves threads out of the bytes it replaces) and detach for 2 s.
    for (let i = 0; Date.now() - start < 2000; i++) {
      const func = i % 2 ? "free" : "malloc";
      const before = cookieStats(obj, 30).calls;
      const link = obj.program("on_entry").attachUprobe({ path: "libc.so.6", func, cookie: 30n });
      await live.until(`${func} counted`, () => cookieStats(obj, 30).calls > before, 10000);
      link.destroy();
      attaches++;
      await sleep(20);
    }
    const status = await live.exit(20000);
    assert.equal(status.code, 0, live.describe());
    assert.equal(live.stderr, "");
    assert.ok(attaches >= 5, `only ${attaches} attaches`);
    const calls = live.json().calls;
    const expect: Record<string, [number, number]> = {
      sleep: [0, 0],
      nanosleep: [0, 0],
      clock_nanosleep: [0, 0],
      poll: [0, 0],
      epoll_wait: [0, 0],
      read: [1, 0],
      futex_timed: [-1, 110], // ETIMEDOUT
      futex: [0, 0],
    };
    const wrong = [];
    for (const [call, [ret, errno]] of Object.entries(expect)) {
      const c = calls[call];
      if (c.ret !== ret || c.errno !== errno || c.ms < MS - 1) {
        wrong.push(`${call}: returned ${c.ret} (errno ${c.errno}) after ${c.ms} ms`);
      }
    }
    assert.deepEqual(wrong, [], `${attaches} attaches; want each call to run ${MS} ms`);
  } finally {
    obj.close();
    seg.close();
    removeSegment(name);
  }
});

// The LLVM tier is loaded (dlopen) by the first program's load: in the constructor when a link
// is there at start, else in the follower thread.
for (const atStart of [true, false]) {
  const when = atStart ? "a link present at start" : "the first link added later";
  Deno.test(`attach live: BPFTIME_VM_NAME=llvm with ${when}, one more added later and a dlopen'ed library's: all run`, async () => {
    const name = segName(`llvm${atStart ? "_start" : "_later"}`);
    const { seg, obj } = loadProbes(name);
    const attach = (func: string, cookie: bigint, path = "libc.so.6") =>
      obj.program("on_entry").attachUprobe({ path, func, cookie });
    try {
      if (atStart) attach("malloc", 40n);
      attach("rip_first", 42n, ASM_LIB); // not mapped until the target's dlopen
      await using live = new Live(seg, ["dlopen", ASM_LIB, "1000"], { BPFTIME_VM_NAME: "llvm" });
      await live.line(/^ready$/, 30000);
      if (!atStart) attach("malloc", 40n);
      await live.until("malloc counted", () => cookieStats(obj, 40).calls > 0n, 30000);
      attach("free", 41n);
      await live.until("free counted", () => cookieStats(obj, 41).calls > 0n, 30000);
      live.child.kill("SIGUSR1"); // the target's dlopen syncs the links before it returns
      const status = await live.exit(30000);
      assert.equal(status.code, 0, live.describe());
      assert.equal(live.stderr, "");
      assert.equal(live.json().calls, 1000);
      assert.equal(cookieStats(obj, 42).calls, 1000n);
    } finally {
      obj.close();
      seg.close();
      removeSegment(name);
    }
  });
}

Deno.test("attach live: a constructor's dlopen while the follower waits for the loader (loading the LLVM tier) does not deadlock", async () => {
  const name = segName("ctor");
  const { seg, obj } = loadProbes(name);
  try {
    obj.program("on_entry").attachUprobe({ path: ASM_LIB, func: "rip_first", cookie: 50n });
    await using live = new Live(seg, ["ctor-dlopen", CTOR_LIB, "1000"], {
      BPFTIME_VM_NAME: "llvm",
      LIVE_NESTED_LIB: ASM_LIB,
    });
    // The constructor runs with the loader's lock held and waits 1.5 s; the first program to load
    // makes the follower take the agent's lock, then wait for the loader's (to load the LLVM tier).
    await live.line(/^ctor$/, 10000);
    obj.program("on_entry").attachUprobe({ path: "libc.so.6", func: "malloc", cookie: 51n });
    const status = await live.exit(30000);
    assert.equal(status.code, 0, live.describe());
    assert.equal(live.stderr, "");
    assert.doesNotMatch(live.stdout, /WRONG/);
    assert.equal(live.json().calls, 1000);
    assert.equal(cookieStats(obj, 50).calls, 1000n); // the outermost dlopen synced for both
    assert.ok(cookieStats(obj, 51).calls > 0n);
  } finally {
    obj.close();
    seg.close();
    removeSegment(name);
  }
});

// A kernel uprobe on the same function (another tool, or another test run on this machine: the
// server test's malloc example traces libc's malloc in every process) puts its int3 into the
// process's code. The hook is built from the file's bytes, not from that int3 (which, displaced
// into the trampoline, killed the target by SIGTRAP). While other threads run, it waits for the
// kernel's probe to go: the kernel, not the agent, takes the threads that hit an int3 there and
// resumes them inside the bytes being replaced. The kernel's probe is on this checkout's own
// target binary, in that process only.
Deno.test("attach live: add() with a kernel uprobe's int3 on it, 4 threads calling it: hooked once the kernel's probe is gone, unhooked and hooked again", async () => {
  const add = resolveFunction(Deno.readFileSync(TARGETS.pie), "add", TARGETS.pie).fileOffset;
  const name = segName("kuprobe");
  const { seg, obj } = loadProbes(name);
  let kprobe: KernelUprobe | undefined;
  try {
    await using live = new Live(seg, ["loop", "60", "4"], {}, TARGETS.pie);
    await live.line(/^ready$/, 10000);
    try {
      kprobe = KernelUprobe.open(TARGETS.pie, add, live.child.pid);
    } catch (e) {
      console.log(`skip: no kernel uprobe (${(e as Error).message})`);
      return;
    }
    const attach = (cookie: number) =>
      obj.program("on_entry").attachUprobe({
        path: TARGETS.pie,
        func: "add",
        cookie: BigInt(cookie),
      });
    const counted = (cookie: number, what: string) => {
      const before = cookieStats(obj, cookie).calls;
      return live.until(what, () => cookieStats(obj, cookie).calls > before + 1000n, 10000);
    };
    const link = attach(60);
    await live.until(
      "the deferral logged",
      () => /kernel uprobe or a debugger/.test(live.stderr),
      10000,
    );
    await sleep(300);
    assert.equal(cookieStats(obj, 60).calls, 0n);
    const hooked = counted(60, "add counted once the kernel's probe is gone");
    kprobe.close();
    kprobe = undefined;
    await hooked;
    for (let round = 0; round < 3; round++) {
      link.destroy();
      await sleep(50);
      const again = attach(61);
      await counted(61, `round ${round}: add counted again`);
      again.destroy();
      await sleep(50);
    }
    assert.equal(live.status, undefined, live.describe());
    live.child.kill("SIGTERM");
    const status = await live.exit(20000);
    assert.equal(status.code, 0, live.describe());
    assert.doesNotMatch(live.stdout, /WRONG/);
    assert.equal(live.stderr.trim().split("\n").length, 1, live.stderr); // logged once
  } finally {
    kprobe?.close();
    obj.close();
    seg.close();
    removeSegment(name);
  }
});

// Hooked at start (the agent's constructor, no other thread yet) over a kernel uprobe's int3:
// at once, from the file's bytes. The kernel's probe is on this checkout's own target binary.
Deno.test("attach live: a function with a kernel uprobe's int3 on it is hooked at start from its file's bytes", async () => {
  const name = segName("kuprobe_start");
  const { seg, obj } = loadProbes(name);
  let kprobe: KernelUprobe | undefined;
  try {
    const add = resolveFunction(Deno.readFileSync(TARGETS.pie), "add", TARGETS.pie).fileOffset;
    try {
      kprobe = KernelUprobe.open(TARGETS.pie, add, -1);
    } catch (e) {
      console.log(`skip: no kernel uprobe (${(e as Error).message})`);
      return;
    }
    obj.program("on_entry").attachUprobe({ path: TARGETS.pie, func: "add", cookie: 62n });
    const r = await runTraced(seg, TARGETS.pie, ["funcs", "100"]);
    assert.equal(r.code, 0, `${r.stdout} ${r.stderr}`);
    assert.equal(r.stderr, "");
    assert.equal(cookieStats(obj, 62).calls, 100n);
  } finally {
    kprobe?.close();
    obj.close();
    seg.close();
    removeSegment(name);
  }
});
