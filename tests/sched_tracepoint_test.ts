/**
 * sched/sched_process_exec, _exit and _fork in userspace, against the kernel: one libbpf
 * application (tests/targets/sched_trace.c with tests/bpf/sched_proc.bpf.c: filename from the
 * record, argv from mm->arg_start, ppid and uid through CO-RE reads of bpf_get_current_task, exit
 * code and ppid through the BTF pointer of bpf_get_current_task_btf) traces a scripted process
 * tree (tests/targets/proc_tree.sh: exits by exit(), _exit(), return from main, exit_group from a
 * thread, a subshell, fork children, an exec from a thread, a kill -9) on the kernel, and under
 * `bpftime load` with the tree under `bpftime start`. Both must give the same events, except what
 * a process cannot report of itself (documented in csrc/agent/sched_probes.c): the exit of a
 * process killed by a signal, and the old leader's exit when a thread execs.
 *
 * Root only (the kernel half, and libbpf reads tracepoint ids from tracefs).
 */
import assert from "node:assert/strict";
import { BpfObject } from "../api/bpf_object.ts";
import { RingBuffer } from "../ffi/ringbuf.ts";
import { Segment } from "../ffi/shm.ts";
import { AGENT } from "./probe_env.ts";
import { kernelBpfAvailable } from "../testing/kernel_bpf.ts";
import { freshSegment, ROOT } from "./test_utils.ts";
import { BIN, Running } from "./server_env.ts";

const LOADER = `${ROOT}build/tests/sched_trace`;
const OBJ = `${ROOT}build/tests/sched_proc.bpf.o`;
const TREE = `${ROOT}tests/targets/proc_tree.sh`;
const CHILD = `${ROOT}build/tests/proc_child`;

const kernel = kernelBpfAvailable();
const skip = !kernel.ok ? kernel.reason : "";
if (skip) console.log(`skip: sched tracepoint tests: ${skip}`);

interface Ev {
  kind: "exec" | "exit" | "fork";
  pid: number;
  tid: number;
  ppid: number;
  ppid_btf: number;
  ctx_pid: number;
  other_pid: number;
  uid: number;
  leader_pid: number;
  exit_code: number;
  exit_signal: number;
  start_boottime: number;
  comm: string;
  ctx_comm: string;
  filename: string;
  argv0: string;
  argv1: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const bootNs = () => Number(Deno.readTextFileSync("/proc/uptime").split(" ")[0]) * 1e9;

/** Runs the tree with the loader attached; the loader's events, and the tree's exit code. */
async function trace(
  mode: "kernel" | "bpftime",
  seg: string,
): Promise<{ events: Ev[]; code: number }> {
  const env = { BPFTIME_GLOBAL_SHM_NAME: seg };
  const loader = mode === "kernel"
    ? new Running(LOADER, [OBJ])
    : new Running(BIN, ["load", LOADER, OBJ], env);
  try {
    await loader.waitLine(/^ready$/, 30000);
    const cmd = mode === "kernel" ? "/bin/sh" : BIN;
    const args = mode === "kernel" ? [TREE, CHILD] : ["start", "--", "/bin/sh", TREE, CHILD];
    const tree = await new Deno.Command(cmd, { args, env, stdout: "null", stderr: "piped" })
      .output();
    await sleep(300);
    return {
      events: loader.lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l)),
      code: tree.code,
    };
  } finally {
    try {
      loader.child.kill("SIGTERM"); // `bpftime load` passes it on
    } catch { /* gone */ }
    await loader.finish();
  }
}

/** The events of the tree rooted at the exec of proc_tree.sh, with each process labelled. */
function canonical(events: Ev[]): { lines: string[]; byLabel: Map<string, Ev[]> } {
  const inTree = new Set<number>();
  const label = new Map<number, string>();
  const name = (pid: number) => label.get(pid) ?? "outside";
  const lines: string[] = [];
  const byLabel = new Map<string, Ev[]>();
  for (const e of events) {
    if (e.kind === "exec" && e.argv1 === TREE) inTree.add(e.pid);
    if (!inTree.has(e.pid) && !inTree.has(e.ppid)) continue;
    inTree.add(e.pid);
    if (e.kind === "fork") {
      if (e.other_pid !== e.pid) {
        inTree.add(e.other_pid);
        if (!label.has(e.other_pid)) label.set(e.other_pid, `fork of ${name(e.pid)}`);
      }
      continue;
    }
    if (e.kind === "exec") {
      const base = e.argv0.split("/").pop();
      label.set(e.pid, `${base} ${e.argv1 === TREE ? "TREE" : e.argv1}`);
    }
    const l = label.get(e.pid) ?? `fork of ${name(e.ppid)}`;
    const parent = name(e.ppid);
    const line = e.kind === "exec"
      ? `exec [${l}] file=${e.filename.split("/").pop()} comm=${e.comm} parent=[${parent}] ` +
        `leader=${e.leader_pid === e.pid} ctx_pid=${e.ctx_pid === e.pid} uid=${e.uid}`
      : `exit [${l}] code=${e.exit_code} signal=${e.exit_signal} comm=${e.comm}/${e.ctx_comm} ` +
        `parent=[${parent}] ppid_btf=${e.ppid_btf === e.ppid} ctx_pid=${e.ctx_pid === e.pid}`;
    lines.push(line);
    byLabel.set(l, [...(byLabel.get(l) ?? []), e]);
  }
  return { lines: lines.sort(), byLabel };
}

Deno.test({
  name: "sched tracepoints: a process tree gives the kernel's exec and exit events in userspace",
  ignore: !!skip,
  fn: async () => {
    const seg = `usertp_sched_${Deno.pid}`;
    try {
      const k = await trace("kernel", seg);
      const t0 = bootNs();
      const u = await trace("bpftime", seg);
      const t1 = bootNs();
      assert.equal(k.code, 4, "the tree exits 4 on the kernel");
      assert.equal(u.code, 4, "and under bpftime start");
      const kc = canonical(k.events), uc = canonical(u.events);
      console.log(`kernel:\n${kc.lines.join("\n")}\nbpftime:\n${uc.lines.join("\n")}`);
      // What the tree must show, whoever traces it.
      for (const c of [kc, uc]) {
        const exitOf = (l: string) => c.byLabel.get(l)?.find((e) => e.kind === "exit");
        assert.equal(exitOf("sh TREE")?.exit_code, 4);
        assert.equal(exitOf("true first")?.exit_code, 0);
        assert.equal(exitOf("fork of sh TREE")?.exit_code, 5, "( exit 5 )");
        assert.equal(exitOf("sh -c")?.exit_code, 3);
        assert.equal(exitOf("proc_child 7")?.exit_code, 7, "return from main");
        assert.equal(exitOf("proc_child thread-exit")?.exit_code, 9, "exit from a thread");
        assert.equal(exitOf("proc_child threads")?.exit_code, 11);
        assert.equal(exitOf("proc_child underscore")?.exit_code, 12, "_exit");
        assert.equal(exitOf("proc_child forks")?.exit_code, 13);
        assert.equal(exitOf("proc_child 6")?.exit_code, 6, "exec from a thread, then return");
        assert.equal(exitOf("proc_child 14")?.exit_code, 14, "env -i: the agent is passed on");
        const forked = c.byLabel.get("fork of proc_child forks")!.map((e) => e.exit_code).sort();
        assert.deepEqual(forked, [0, 1, 2, 3, 4], "fork children's _exit(i % 7)");
        // reparented when its parent ended first: the reaper (outside the tree) is its parent then
        const orphan = c.byLabel.get("fork of proc_child orphan")?.find((e) => e.kind === "exit");
        assert.equal(orphan?.exit_code, 8);
        const gone = c.byLabel.get("proc_child orphan")!.find((e) => e.kind === "exec")!;
        assert.notEqual(orphan?.ppid, gone.pid, "the new parent, not the one that ended");
        const root = c.byLabel.get("sh TREE")!.find((e) => e.kind === "exec")!;
        assert.equal(root.filename, "/bin/sh");
        assert.equal(root.argv1, TREE, "argv from mm->arg_start");
      }
      // Not seen in userspace: a process killed by a signal cannot report its end, and a thread's
      // exec replaces the old leader without a word from it.
      const killed = (c: typeof kc) =>
        c.byLabel.get("proc_child sleep")?.filter((e) => e.kind === "exit") ?? [];
      assert.deepEqual(killed(kc).map((e) => e.exit_signal), [9], "kernel: SIGKILL");
      assert.equal(killed(uc).length, 0, "userspace: no exit of the killed child");
      // (and the script's polling for its victim, "sleep 0.05", runs as often as it takes)
      const unseen = (l: string) =>
        l.startsWith("exit [proc_child sleep]") || l.startsWith("exit [proc_child exec-thread]") ||
        / \[sleep 0\.05\] /.test(l);
      assert.deepEqual(uc.lines.filter((l) => !unseen(l)), kc.lines.filter((l) => !unseen(l)));
      // Start times: boot-time ns within the run (10 ms steps from /proc, or exact after fork).
      for (const e of u.events.filter((e) => e.kind === "exec" && uc.lines.length)) {
        if (!uc.byLabel.has(`${e.argv0.split("/").pop()} ${e.argv1 === TREE ? "TREE" : e.argv1}`)) {
          continue;
        }
        assert.ok(
          e.start_boottime >= t0 - 2e7 && e.start_boottime <= t1 + 2e7,
          `start_boottime ${e.start_boottime} in [${t0}, ${t1}]`,
        );
      }
    } finally {
      try {
        Segment.remove(seg);
      } catch { /* not created */ }
    }
  },
});

/** A struct sched_event (tests/bpf/sched_proc.h) from the ring. */
function decode(r: Uint8Array): Ev {
  const v = new DataView(r.buffer, r.byteOffset, r.byteLength);
  const u = (o: number) => v.getUint32(o, true);
  const str = (o: number, n: number) =>
    new TextDecoder().decode(r.subarray(o, o + n)).replace(/\0.*$/s, "");
  return {
    kind: (["?", "exec", "exit", "fork"] as const)[u(0)] as Ev["kind"],
    pid: u(4),
    tid: u(8),
    ppid: u(12),
    ppid_btf: u(16),
    ctx_pid: u(20),
    other_pid: u(24),
    uid: u(28),
    leader_pid: u(32),
    exit_code: v.getInt32(36, true),
    exit_signal: v.getInt32(40, true),
    start_boottime: Number(v.getBigUint64(48, true)),
    comm: str(56, 16),
    ctx_comm: str(72, 16),
    filename: str(88, 128),
    argv0: str(216, 128),
    argv1: str(344, 64),
  };
}

/** Our loader (BpfObject, no root: tracepoint ids are 0 then): one segment for every case. */
class Ours {
  readonly seg = freshSegment(`usertp_tp_${Deno.pid}`, 16);
  // Loaded once: CO-RE against vmlinux takes seconds on a loaded machine.
  readonly obj = BpfObject.open(OBJ);
  readonly opens = BpfObject.open(`${ROOT}build/tests/tp_opens.bpf.o`);
  readonly ring: RingBuffer;
  constructor() {
    this.obj.load(this.seg);
    this.obj.attach();
    this.opens.load(this.seg);
    this.ring = new RingBuffer(this.seg, this.obj.map("events").id);
  }

  /**
   * Runs proc_child with `args` under the agent (with `hooks`, a syscall tracepoint is attached
   * too, so the agent's syscall hooks are installed): its events, thread exits and status.
   */
  async run(args: string[], hooks: boolean, kill?: number) {
    const links = hooks ? this.opens.attach() : [];
    const zero = new Uint8Array(8);
    this.obj.map("thread_exits").update(new Uint8Array(4), zero);
    try {
      const child = new Deno.Command(CHILD, {
        args,
        env: { LD_PRELOAD: AGENT, BPFTIME_GLOBAL_SHM_NAME: this.seg.name },
        stderr: "piped",
      }).spawn();
      const events: Ev[] = [];
      if (kill) {
        // once it runs (its exec raised: the agent has compiled the programs), SIGKILL
        for (let i = 0; i < 1000 && !events.some((e) => e.kind === "exec"); i++) {
          await sleep(20);
          this.ring.consume((r) => events.push(decode(r)));
        }
        await sleep(kill);
        child.kill("SIGKILL");
      }
      const out = await child.output();
      this.ring.consume((r) => events.push(decode(r)));
      const n = this.obj.map("thread_exits").lookup(new Uint8Array(4))!;
      return {
        events,
        threadExits: Number(new DataView(n.buffer, n.byteOffset).getBigUint64(0, true)),
        code: out.code,
        signal: out.signal,
        stderr: new TextDecoder().decode(out.stderr),
      };
    } finally {
      links.forEach((l) => l.destroy());
    }
  }

  close() {
    this.obj.close();
    this.opens.close();
    this.seg.close();
    Segment.remove(this.seg.name);
  }
}

const exitCodes = (events: Ev[]) => events.filter((e) => e.kind === "exit").map((e) => e.exit_code);

Deno.test("sched tracepoints (our loader): fork storm, threads, raw exit_group, exec from a thread, kill -9", async (t) => {
  const ours = new Ours();
  try {
    await t.step("a fork storm: every child's exit, every fork, none lost", async () => {
      const r = await ours.run(["forks", "200", "17"], false);
      assert.equal(r.code, 17, r.stderr);
      const parent = r.events.find((e) => e.kind === "exec")!;
      assert.equal(parent.argv1, "forks");
      const forks = r.events.filter((e) => e.kind === "fork");
      const exits = r.events.filter((e) => e.kind === "exit" && e.pid !== parent.pid);
      assert.equal(forks.length, 200);
      assert.equal(exits.length, 200);
      assert.deepEqual(
        new Set(exits.map((e) => e.pid)),
        new Set(forks.map((e) => e.other_pid)),
        "each forked child exits, once",
      );
      for (const e of exits) {
        assert.equal(e.ppid, parent.pid);
        assert.equal(e.ppid_btf, parent.pid);
        assert.equal(e.exit_code, forks.findIndex((f) => f.other_pid === e.pid) % 7);
      }
      const last = r.events.at(-1)!;
      assert.equal(last.kind, "exit");
      assert.equal(last.pid, parent.pid);
      assert.equal(last.exit_code, 17);
    });

    await t.step("without syscall hooks: the process's exit only", async () => {
      const plain = await ours.run(["threads", "11"], false);
      assert.equal(plain.code, 11);
      assert.equal(plain.threadExits, 0, "thread exits are not seen");
      assert.deepEqual(exitCodes(plain.events), [11]);
      const raw = await ours.run(["raw-exit", "21"], false);
      assert.equal(raw.code, 21);
      assert.deepEqual(exitCodes(raw.events), [], "a raw exit_group is not seen");
    });

    await t.step("with syscall hooks: each thread's exit and a raw exit_group", async () => {
      const hooked = await ours.run(["threads", "11"], true);
      assert.equal(hooked.code, 11, hooked.stderr);
      assert.equal(hooked.threadExits, 4);
      assert.deepEqual(exitCodes(hooked.events), [11]);
      const raw = await ours.run(["raw-exit", "21"], true);
      assert.equal(raw.code, 21);
      assert.deepEqual(exitCodes(raw.events), [21]);
      // exit_group from a thread: once, as the leader (pid == tgid), with the thread's code
      const fromThread = await ours.run(["thread-exit", "9"], true);
      assert.equal(fromThread.code, 9);
      const exits = fromThread.events.filter((e) => e.kind === "exit");
      assert.deepEqual(exits.map((e) => e.exit_code), [9]);
      assert.equal(exits[0].leader_pid, exits[0].pid);
    });

    await t.step(
      "a cleared environment gets the agent's variables back, and nothing else",
      async () => {
        const out = await new Deno.Command("/usr/bin/env", {
          args: ["-i", "FOO=bar", "/usr/bin/env"],
          env: { LD_PRELOAD: AGENT, BPFTIME_GLOBAL_SHM_NAME: ours.seg.name },
        }).output();
        assert.equal(out.code, 0);
        const vars = new TextDecoder().decode(out.stdout).trim().split("\n").sort();
        assert.deepEqual(vars.map((v) => v.replace(/=\d+$/, "=N")), [
          `BPFTIME_GLOBAL_SHM_NAME=${ours.seg.name}`,
          "BPFTIME_SHM_FD=N",
          "FOO=bar",
          `LD_PRELOAD=${AGENT}`,
        ]);
        // an LD_PRELOAD of its own (even empty) is how a program runs a child without the agent
        const optOut = await new Deno.Command("/usr/bin/env", {
          args: ["-i", "LD_PRELOAD=", "/usr/bin/env"],
          env: { LD_PRELOAD: AGENT, BPFTIME_GLOBAL_SHM_NAME: ours.seg.name },
        }).output();
        assert.equal(new TextDecoder().decode(optOut.stdout), "LD_PRELOAD=\n");
        ours.ring.consume(() => {}); // env's own events
      },
    );

    await t.step("_exit from a signal handler: reported with its code", async () => {
      const r = await ours.run(["signal-exit", "23"], false);
      assert.equal(r.code, 23, r.stderr);
      assert.deepEqual(exitCodes(r.events), [23]);
    });

    await t.step("exec from a thread, and a child killed by SIGKILL", async () => {
      const r = await ours.run(["exec-thread"], true);
      assert.equal(r.code, 6, r.stderr);
      assert.deepEqual(r.events.filter((e) => e.kind === "exec").map((e) => e.argv1), [
        "exec-thread",
        "6",
      ]);
      assert.deepEqual(exitCodes(r.events), [6]);
      // the kill is as without us; the killed process cannot report its end
      const killed = await ours.run(["sleep"], false, 100);
      assert.equal(killed.signal, "SIGKILL");
      assert.deepEqual(killed.events.map((e) => e.kind), ["exec"]);
    });
  } finally {
    ours.close();
  }
});
