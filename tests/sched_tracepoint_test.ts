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
import { Segment } from "../ffi/shm.ts";
import { kernelBpfAvailable } from "../testing/kernel_bpf.ts";
import { ROOT } from "./test_utils.ts";
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
        const forked = c.byLabel.get("fork of proc_child forks")!.map((e) => e.exit_code).sort();
        assert.deepEqual(forked, [0, 1, 2, 3, 4], "fork children's _exit(i % 7)");
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
      const unseen = (l: string) =>
        l.startsWith("exit [proc_child sleep]") || l.startsWith("exit [proc_child exec-thread]");
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
