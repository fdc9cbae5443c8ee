/**
 * Syscall tracepoints in the agent (csrc/agent/syscall_probes.c): programs of
 * tests/bpf/syscall_tp.bpf.c, loaded with BpfObject, run in a target started
 * with the agent preloaded, and the kernel (bpftrace, root) watches the same
 * run: per-syscall raw_syscalls counts must agree (the agent's own syscalls
 * accounted by number), and the sys_enter_openat/sys_exit_openat fields too.
 * Then links added and removed while the target runs, bad input, and an
 * unmodified libbpf application under `bpftime load`.
 */
import assert from "node:assert/strict";
import { BpfObject } from "../mod.ts";
import { LinkError } from "../ffi/errors.ts";
import { Segment } from "../ffi/shm.ts";
import { AGENT } from "./probe_env.ts";
import { BIN, Running } from "./server_env.ts";
import { freshSegment, ROOT } from "./test_utils.ts";
import { bpftraceSkipReason, rawSyscallCountScript, readLines } from "./kernel_syscall_counts.ts";

const TARGET = `${ROOT}build/tests/tp_target`;
const DL_LIB = `${ROOT}build/tests/libsyscall_dl.so`;
const PROGS = `${ROOT}build/tests/syscall_tp.bpf.o`;
const TP_APP = `${ROOT}build/tests/tp_opens`;
const TRACEFS = "/sys/kernel/tracing/events";

function tracepointId(path: string): number {
  return Number(Deno.readTextFileSync(`${TRACEFS}/${path}/id`).trim());
}

function agentEnv(seg: Segment, extra: Record<string, string> = {}): Record<string, string> {
  return { LD_PRELOAD: AGENT, BPFTIME_GLOBAL_SHM_NAME: seg.name, ...extra };
}

/** The `opens` map: path -> the fields the programs recorded (tests/bpf/syscall_tp.bpf.c). */
interface OpenRec {
  enters: bigint;
  exits: bigint;
  enterType: number;
  exitType: number;
  enterPid: number;
  exitPid: number;
  enterNr: number;
  exitNr: number;
  tid: number;
  dfd: bigint;
  filename: bigint;
  flags: bigint;
  mode: bigint;
  ret: bigint;
  cookie: bigint;
}

function openRecords(obj: BpfObject): Map<string, OpenRec> {
  const out = new Map<string, OpenRec>();
  const dec = new TextDecoder();
  for (const [k, v] of obj.map("opens").entries()) {
    const d = new DataView(v.buffer, v.byteOffset, v.byteLength);
    out.set(dec.decode(k).replace(/\0.*$/s, ""), {
      enters: d.getBigUint64(0, true),
      exits: d.getBigUint64(8, true),
      enterType: d.getUint32(16, true),
      exitType: d.getUint32(20, true),
      enterPid: d.getInt32(24, true),
      exitPid: d.getInt32(28, true),
      enterNr: d.getInt32(32, true),
      exitNr: d.getInt32(36, true),
      tid: Number(d.getBigUint64(40, true) & 0xffffffffn),
      dfd: d.getBigInt64(48, true),
      filename: d.getBigUint64(56, true),
      flags: d.getBigInt64(64, true),
      mode: d.getBigInt64(72, true),
      ret: d.getBigInt64(80, true),
      cookie: d.getBigUint64(88, true),
    });
  }
  return out;
}

/** The `counts` map: [enter, exit] per syscall number (511 is nr -1). */
function rawCounts(
  obj: BpfObject,
): { enter: Record<string, number>; exit: Record<string, number> } {
  const m = obj.map("counts");
  const enter: Record<string, number> = {}, exit: Record<string, number> = {};
  for (let i = 0; i < 1024; i++) {
    const key = new Uint8Array(4);
    new DataView(key.buffer).setUint32(0, i, true);
    const v = m.lookup(key)!;
    const n = Number(new DataView(v.buffer, v.byteOffset).getBigUint64(0, true));
    if (!n) continue;
    const nr = i % 512 === 511 ? "-1" : String(i % 512);
    (i < 512 ? enter : exit)[nr] = n;
  }
  return { enter, exit };
}

// The kernel's view of the same run: raw_syscalls counts from close(7770001) to close(7770002)
// for the target and the processes it forks until they exec, and its openat calls on our files.
const SCRIPT = rawSyscallCountScript(
  "tp_target",
  `tracepoint:syscalls:sys_enter_openat /@t[pid] && strncmp(str(args->filename), "/tmp/bpftime_tp_", 16) == 0/ {
  printf("E %s %d %d %ld %lu %ld %ld\\n", str(args->filename), tid, args->__syscall_nr, args->dfd,
         args->filename, args->flags, args->mode);
  @o[tid] = 1;
}
tracepoint:syscalls:sys_exit_openat /@o[tid]/ {
  printf("X %d %d %ld\\n", tid, args->__syscall_nr, args->ret);
  delete(@o[tid]);
}
`,
);

for (const sud of [false, true]) {
  Deno.test(
    `syscall tracepoints: raw_syscalls counts per syscall and the openat fields equal the kernel's for the same run${
      sud ? " (Syscall User Dispatch on: vDSO fallbacks seen too)" : ""
    }`,
    () => compareWithKernel(sud),
  );
}

async function compareWithKernel(sud: boolean) {
  const why = bpftraceSkipReason();
  if (why) {
    console.log(`skipped: ${why}`);
    return;
  }
  const seg = freshSegment("t_tp_kernel_cmp", 16);
  using _ = seg;
  using obj = BpfObject.open(PROGS);
  obj.load(seg);
  for (const p of ["count_enter", "count_exit", "open_enter", "open_exit"]) {
    obj.program(p).attach({ cookie: 77n });
  }
  const ownFile = await Deno.makeTempFile({ prefix: "bpftime_tp_own_" });
  Deno.truncateSync(ownFile, 8192);

  const tracer = new Deno.Command("bpftrace", {
    args: ["-f", "json", "-e", SCRIPT],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const maps: Record<string, Record<string, number>> = {};
  const kernelOpens: string[] = [];
  let ready: () => void;
  const isReady = new Promise<void>((r) => ready = r);
  const lines = readLines(tracer.stdout, (l) => {
    if (!l.startsWith("{")) return;
    const m = JSON.parse(l);
    if (m.type === "printf" && m.data === "ready\n") ready();
    else if (m.type === "printf") kernelOpens.push(m.data.trim());
    if (m.type === "map") Object.assign(maps, m.data);
  });
  const stderr = new Response(tracer.stderr).text();
  const timeout = setTimeout(() => tracer.kill("SIGINT"), 60000);
  await Promise.race([isReady, tracer.status]);

  const out = await new Deno.Command(TARGET, {
    args: ["work", DL_LIB, ownFile, ...(sud ? ["vdso"] : [])],
    env: agentEnv(seg, {
      BPFTIME_AGENT_OWN_COUNTS: ownFile,
      ...(sud ? { BPFTIME_SYSCALL_SUD: "1" } : {}),
    }),
    stdout: "piped",
    stderr: "piped",
  }).output();
  Deno.removeSync(ownFile);
  const dec = new TextDecoder();
  const targetErr = dec.decode(out.stderr);
  assert.equal(out.code, 0, `target failed: ${targetErr}`);
  const r = JSON.parse(dec.decode(out.stdout).trim().split("\n").pop()!);
  const status = await tracer.status;
  clearTimeout(timeout);
  await lines;
  assert.ok(status.success, await stderr);

  // What the workload did.
  assert.equal(r.execve_errno, 2, "the failing execve: ENOENT");
  assert.equal(r.restart_read, 0, "the read restarted after a SA_RESTART handler returned");
  assert.equal(r.eintr_read, 4, "the read interrupted without SA_RESTART: EINTR");
  assert.equal(r.dl_ok, 1);
  assert.equal(r.signals, 5, "SIGUSR1 three times, SIGUSR2, SIGALRM");
  assert.ok(r.follower > 0, "the agent's follower thread was found");
  assert.equal(r.forks_with_follower, 1, "the forked child's agent restarted its follower");
  assert.match(
    targetErr,
    sud ? /Syscall User Dispatch on/ : /not seen \(BPFTIME_SYSCALL_SUD=1/,
  );

  // (1) Counts: the kernel's = ours + the agent's own (by number) + what cannot be seen.
  const ours = rawCounts(obj);
  const rows: string[] = [];
  let differing = 0;
  for (const side of ["enter", "exit"] as const) {
    const kernel = maps[`@${side}`] ?? {};
    const own: Record<string, number> = r[`own_${side}`];
    const mine = ours[side];
    const nrs = new Set([...Object.keys(kernel), ...Object.keys(mine), ...Object.keys(own)]);
    for (const nr of [...nrs].sort((a, b) => Number(a) - Number(b))) {
      const k = kernel[nr] ?? 0, o = mine[nr] ?? 0, w = own[nr] ?? 0;
      // The forked child's follower thread sleeps in futex when the child exits: the kernel
      // reports that call's exit as the thread dies, no code of the process runs to see it.
      const unseen = side === "exit" && nr === "202" ? r.forks_with_follower : 0;
      const ok = k === o + w + unseen;
      if (!ok) differing++;
      rows.push(
        `${side.padEnd(5)} ${nr.padStart(4)} kernel ${String(k).padStart(4)} ours ${
          String(o).padStart(4)
        } agent's own ${String(w).padStart(3)}${unseen ? ` unseen ${unseen}` : ""}${
          ok ? "" : "  <- differs"
        }`,
      );
    }
  }
  console.log(rows.join("\n"));
  assert.ok(Object.keys(ours.enter).length > 20, "many syscalls seen");
  assert.equal(differing, 0, `${differing} counts differ from the kernel's`);

  // (2) openat: every field, ours against the kernel's, for the same three opens.
  const recs = openRecords(obj);
  const enterId = tracepointId("syscalls/sys_enter_openat");
  const exitId = tracepointId("syscalls/sys_exit_openat");
  assert.equal(r.opens.length, 3);
  const kernelByPath = new Map<string, { enter: string[]; exit: string[] }>();
  let lastPath = "";
  for (const l of kernelOpens) {
    const f = l.split(" ");
    if (f[0] === "E") {
      lastPath = f[1];
      kernelByPath.set(f[1], { enter: f, exit: [] });
    } else if (f[0] === "X" && lastPath) {
      kernelByPath.get(lastPath)!.exit = f;
    }
  }
  for (const o of r.opens) {
    const mine = recs.get(o.path);
    const k = kernelByPath.get(o.path);
    assert.ok(mine, `${o.path}: our programs saw no open`);
    assert.ok(k, `${o.path}: the kernel saw no open`);
    // E path tid nr dfd filename flags mode / X tid nr ret
    const [, , kTid, kNr, kDfd, kFilename, kFlags, kMode] = k.enter;
    const [, kXTid, kXNr, kRet] = k.exit;
    console.log(
      `${o.path}: kernel ${k.enter.slice(2).join(" ")} -> ${kRet}; ours tid ${mine.tid} ` +
        `nr ${mine.enterNr} dfd ${mine.dfd} filename 0x${mine.filename.toString(16)} flags ` +
        `${mine.flags} mode ${mine.mode} -> ${mine.ret} (common_type ${mine.enterType}/` +
        `${mine.exitType}, common_pid ${mine.enterPid}/${mine.exitPid})`,
    );
    assert.equal(mine.enters, 1n);
    assert.equal(mine.exits, 1n);
    assert.equal(mine.enterNr, Number(kNr), "__syscall_nr (enter)");
    assert.equal(mine.exitNr, Number(kXNr), "__syscall_nr (exit)");
    // 8-byte fields holding the registers as they were (AT_FDCWD: 0xffffff9c, zero-extended).
    assert.equal(mine.dfd, BigInt(kDfd), "dfd");
    assert.equal(mine.filename, BigInt(kFilename), "filename pointer");
    assert.equal(mine.flags, BigInt(kFlags), "flags");
    assert.equal(mine.mode, BigInt(kMode), "mode");
    assert.equal(mine.ret, BigInt(kRet), "ret");
    assert.equal(mine.ret, BigInt(o.ret) < 0n ? BigInt(o.ret) : mine.ret, "ret: the errno");
    // The kernel's BPF may not read the common fields (its verifier refuses offsets below 8):
    // common_pid is the thread id the kernel reports, common_type the tracefs id.
    assert.equal(mine.enterPid, Number(kTid), "common_pid (enter): the thread id");
    assert.equal(mine.exitPid, Number(kXTid), "common_pid (exit)");
    assert.equal(mine.tid, Number(kTid), "bpf_get_current_pid_tgid");
    assert.equal(mine.enterType, enterId, "common_type: sys_enter_openat's id");
    assert.equal(mine.exitType, exitId, "common_type: sys_exit_openat's id");
    assert.equal(mine.cookie, 77n, "bpf_get_attach_cookie");
  }
}

async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return cond();
}

Deno.test("syscall tracepoints: a link added, removed and added again while the target runs", async () => {
  const seg = freshSegment("t_tp_live", 8);
  using _ = seg;
  using obj = BpfObject.open(PROGS);
  obj.load(seg);
  const stop = `/tmp/bpftime_tp_stop_${Deno.pid}`;
  try {
    Deno.removeSync(stop);
  } catch { /* none */ }
  const target = new Running(TARGET, ["loop", stop], agentEnv(seg, { BPFTIME_AGENT_LOG: "1" }));
  const pid = Number((await target.waitLine(/^ready \d+$/)).line.split(" ")[1]);
  const path = `/tmp/bpftime_tp_live_${pid}`;
  const count = () => openRecords(obj).get(path)?.enters ?? 0n;
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(count(), 0n);
  assert.doesNotMatch(target.stderr, /syscall hooks/, "no link: nothing installed");

  let link = obj.program("open_enter").attach({ pid });
  assert.ok(await waitFor(() => count() > 20n, 10000), `counting after attach: ${target.stderr}`);
  link.destroy();
  await new Promise((r) => setTimeout(r, 300));
  const c1 = count();
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(count(), c1, "no more hits once the link is gone");

  link = obj.program("open_enter").attach({ pid });
  assert.ok(await waitFor(() => count() > c1 + 20n, 10000), "counting again");
  link.destroy();
  // Another process's link (pid filter): not installed here.
  obj.program("open_enter").attach({ pid: 1 });
  await new Promise((r) => setTimeout(r, 300));
  const c2 = count();
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(count(), c2, "a link for another pid runs nothing here");

  Deno.writeTextFileSync(stop, "");
  const status = await target.finish();
  Deno.removeSync(stop);
  assert.equal(status.code, 0, target.stderr);
  assert.match(target.stderr, /installed while threads run|Syscall User Dispatch/);
});

Deno.test("syscall tracepoints: links there before the target starts see none of the agent's follower threads' syscalls (its start, and the forked child's)", async () => {
  const seg = freshSegment("t_tp_tids", 8);
  using _ = seg;
  using obj = BpfObject.open(PROGS);
  obj.load(seg);
  obj.program("tid_enter").attach();
  obj.program("tid_exit").attach();
  const out = await new Deno.Command(TARGET, {
    args: ["tids"],
    env: agentEnv(seg),
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  assert.equal(out.code, 0, `target failed: ${dec.decode(out.stderr)}`);
  const r = JSON.parse(dec.decode(out.stdout).trim().split("\n").pop()!);
  assert.ok(r.followers.every((t: number) => t > 0), `both followers found: ${JSON.stringify(r)}`);
  const seen = new Map<number, bigint>();
  for (const [k, v] of obj.map("by_tid").entries()) {
    seen.set(
      new DataView(k.buffer, k.byteOffset).getUint32(0, true),
      new DataView(v.buffer, v.byteOffset).getBigUint64(0, true),
    );
  }
  for (const t of [r.pid, r.thread, r.child]) {
    assert.ok(seen.has(t), `thread ${t} seen: ${[...seen]}`);
  }
  const others = [...seen].filter(([t]) => ![r.pid, r.thread, r.child].includes(t));
  assert.deepEqual(
    others,
    [],
    `only the target's threads (followers ${r.followers}): ${JSON.stringify(r)}`,
  );
});

Deno.test("syscall tracepoints: bad input is refused by name, nothing half-installed", async () => {
  const seg = freshSegment("t_tp_bad", 8);
  using _ = seg;
  using obj = BpfObject.open(PROGS);
  obj.load(seg);
  const before = seg.stats().objects;
  assert.throws(
    () => obj.program("on_sched").attach(),
    (e: Error) =>
      e instanceof LinkError &&
      /section 'tracepoint\/sched\/sched_switch'.*category 'sched' cannot run in userspace/.test(
        e.message,
      ),
  );
  assert.throws(
    () => obj.program("on_nosuch").attach(),
    (e: Error) =>
      e instanceof LinkError &&
      /section 'tracepoint\/syscalls\/sys_enter_no_such_call'.*unknown tracepoint/.test(e.message),
  );
  // The segment refuses them too, whoever creates the link.
  const progId = obj.program("open_enter").id;
  for (
    const [target, re] of [
      ["sched/sched_switch", /category 'sched' cannot run in userspace/],
      ["irq/irq_handler_entry", /category 'irq' cannot run in userspace/],
      ["syscalls/sys_enter_no_such_call", /unknown tracepoint.*no syscall 'no_such_call'/],
      ["raw_syscalls/sys_foo", /unknown tracepoint 'raw_syscalls\/sys_foo'/],
      ["syscalls/openat", /unknown tracepoint/],
    ] as const
  ) {
    assert.throws(
      () => seg.createLink("bad", { progId, type: "syscall_tracepoint", target }),
      (e: Error) => e instanceof LinkError && re.test(e.message),
      target,
    );
  }
  assert.equal(seg.stats().objects, before, "no link stored");

  // A program that writes its context: refused (its store faults, logged once by program and
  // pc), the context unchanged for the program after it, the process unharmed.
  obj.program("clobber_ctx").attach();
  obj.program("open_enter").attach();
  const file = `/tmp/bpftime_tp_ctx_${Deno.pid}`;
  Deno.writeTextFileSync(file, "unchanged\n");
  const out = await new Deno.Command("/bin/cat", {
    args: [file, file],
    env: agentEnv(seg),
    stdout: "piped",
    stderr: "piped",
  }).output();
  Deno.removeSync(file);
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, stderr);
  assert.equal(new TextDecoder().decode(out.stdout), "unchanged\nunchanged\n");
  assert.match(stderr, /program \d+ 'clobber_ctx'.*pc \d+:.*store/, stderr);
  assert.equal(stderr.match(/clobber_ctx/g)?.length, 1, "logged once");
  const rec = openRecords(obj).get(file);
  assert.ok(rec);
  assert.equal(rec.enters, 2n);
  assert.equal(BigInt.asIntN(32, rec.dfd), -100n, "dfd is still AT_FDCWD");
});

Deno.test("syscall tracepoints: an unmodified libbpf application (tp/syscalls/sys_enter_openat) under bpftime load sees a started target's opens", async () => {
  const seg = freshSegment("t_tp_server", 16);
  using _ = seg;
  const tool = new Running(BIN, ["load", TP_APP], { BPFTIME_GLOBAL_SHM_NAME: seg.name });
  await tool.waitLine(/^tick$/, 30000);
  // A shell under `bpftime start` opens a /tmp/bpftime_tp_srv_* file ten times, and two `cat`s it
  // forks and execs (new images, the agent preloaded again) open it once each.
  const file = `/tmp/bpftime_tp_srv_${Deno.pid}`;
  const script = `for i in 1 2 3 4 5 6 7 8 9 10; do : < ${file}; done; /bin/cat ${file}; ` +
    `/bin/cat ${file}; echo "pid $$"`;
  Deno.writeTextFileSync(file, "");
  const target = await new Deno.Command(BIN, {
    args: ["start", "/bin/sh", "-c", script],
    env: { BPFTIME_GLOBAL_SHM_NAME: seg.name },
    stdout: "piped",
    stderr: "piped",
  }).output();
  Deno.removeSync(file);
  const dec = new TextDecoder();
  assert.equal(target.code, 0, dec.decode(target.stderr));
  const shPid = Number(dec.decode(target.stdout).trim().split(" ")[1]);
  await tool.waitLine(new RegExp(`^pid=${shPid} opens=10$`), 10000);
  // Two ticks later: the last whole block holds the shell's 10, and 1 for each cat.
  let at = tool.lines.length;
  for (let i = 0; i < 3; i++) at = (await tool.waitLine(/^tick$/, 10000, at)).index + 1;
  const end = at - 1;
  let start = end - 1;
  while (start > 0 && tool.lines[start] !== "tick") start--;
  const block = tool.lines.slice(start + 1, end);
  console.log(`libbpf application (shell ${shPid}):\n${block.join("\n")}`);
  assert.ok(block.includes(`pid=${shPid} opens=10`));
  assert.deepEqual(
    block.filter((l) => !l.startsWith(`pid=${shPid} `)).map((l) => l.replace(/^pid=\d+ /, "")),
    ["opens=1", "opens=1"],
    "each exec'd cat (agent preloaded in the new image) seen once",
  );
  tool.child.kill("SIGTERM");
  assert.equal((await tool.finish()).code, 0, tool.stderr);
});

Deno.test("syscall tracepoints: what a syscall costs with nothing attached to it and with a return-0 program (printed, informal)", async () => {
  const seg = freshSegment("t_tp_cost", 8);
  using _ = seg;
  using obj = BpfObject.open(PROGS);
  obj.load(seg);
  const run = async (env: Record<string, string>) => {
    const out = await new Deno.Command(TARGET, { args: ["getppid"], env, stdout: "piped" })
      .output();
    assert.equal(out.code, 0);
    return JSON.parse(new TextDecoder().decode(out.stdout)).getppid_ns as number;
  };
  const native = await run({});
  const noLinks = await run(agentEnv(seg));
  const other = obj.program("open_enter").attach();
  const otherNr = await run(agentEnv(seg));
  other.destroy();
  obj.program("ret0").attach();
  const ret0 = await run(agentEnv(seg));
  console.log(
    `getppid: native ${native} ns; agent, no syscall link ${noLinks} ns; hooks installed, ` +
      `nothing on getppid ${otherNr} ns (+${(otherNr - native).toFixed(1)}); return-0 program on ` +
      `sys_enter_getppid ${ret0} ns (+${(ret0 - native).toFixed(1)}) (thread CPU time, best of ` +
      `200 rounds of 2000 calls)`,
  );
  assert.ok(ret0 > 0 && native > 0);
});

Deno.test("syscall tracepoints: the server's perf_event_open answers syscall tracepoint ids, leaves others to the kernel, refuses syscalls it cannot map, with log lines", async () => {
  const why = bpftraceSkipReason();
  if (why) {
    console.log(`skipped: ${why}`);
    return;
  }
  const seg = freshSegment("t_tp_server_bad", 8);
  using _ = seg;
  const names = new Set(
    [...Deno.readDirSync(`${TRACEFS}/syscalls`)].map((e) => e.name).filter((n) =>
      n.startsWith("sys_enter_")
    ),
  );
  // A syscall newer than this build's headers (asm/unistd_64.h), if the kernel has one.
  const headers = new TextDecoder().decode(
    new Deno.Command("sh", {
      args: ["-c", "echo '#include <asm/unistd_64.h>' | gcc -dM -E - | grep -o '__NR_[a-z0-9_]*'"],
      stdout: "piped",
    }).outputSync().stdout,
  );
  const known = new Set(headers.split("\n").map((l) => l.slice(5)));
  const newer = [...names].map((n) => n.slice(10)).find((n) =>
    !known.has(n) && !known.has(n.replace(/^new/, "")) && n !== "sendfile64" && n !== "umount"
  );
  const ids: Record<string, number> = {
    openat: tracepointId("syscalls/sys_enter_openat"),
    raw: tracepointId("raw_syscalls/sys_exit"),
    sched: tracepointId("sched/sched_switch"),
    none: 999999,
  };
  if (newer) ids.newer = tracepointId(`syscalls/sys_enter_${newer}`);
  const run = async (cmd: string, args: string[]) => {
    const out = await new Deno.Command(cmd, {
      args,
      env: { BPFTIME_GLOBAL_SHM_NAME: seg.name },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    const answers = new Map(
      dec.decode(out.stdout).trim().split("\n").map((l) => {
        const [id, ...rest] = l.split(" ");
        return [Number(id), rest.join(" ")] as const;
      }),
    );
    return { answers, stderr: dec.decode(out.stderr) };
  };
  const args = ["perf", ...Object.values(ids).map(String)];
  const ours = await run(BIN, ["load", TP_APP, ...args]);
  const kernel = await run(TP_APP, args);
  console.log(
    `ids ${JSON.stringify(ids)}: ours ${JSON.stringify([...ours.answers])}, kernel ${
      JSON.stringify([...kernel.answers])
    }\n${ours.stderr}`,
  );
  assert.equal(ours.answers.get(ids.openat), "ok");
  assert.equal(ours.answers.get(ids.raw), "ok");
  assert.equal(ours.answers.get(ids.sched), kernel.answers.get(ids.sched), "sched/: the kernel's");
  assert.equal(
    ours.answers.get(ids.none),
    kernel.answers.get(ids.none),
    "no such id: the kernel's",
  );
  assert.match(ours.stderr, new RegExp(`tracepoint id ${ids.sched} is not a syscall tracepoint`));
  if (newer) {
    assert.equal(ours.answers.get(ids.newer), "errno 2", `sys_enter_${newer}: ENOENT`);
    assert.match(ours.stderr, new RegExp(`no syscall '${newer}' in this build's table`));
  }
  assert.equal(seg.stats().objects, 0, "nothing left in the segment");
});
