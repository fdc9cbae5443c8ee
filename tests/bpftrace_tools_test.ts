/**
 * bpftrace's own tools (/usr/sbin/*.bt, Debian's bpftrace package), unchanged: each is run by
 * bpftrace on the kernel, and by the same bpftrace under `bpftime load` (no BPFTRACE_* variable:
 * only our segment's name, so parallel tests do not share it) with its targets under
 * `bpftime start`, around the same scripted activity (tests/targets/bt_tools_target.c, bash on a
 * pty, an openssl client and server). The output lines must agree.
 *
 * What is compared: every line after "Attaching N probes..." (headers, BEGIN and END output)
 * verbatim, except the tool's event lines, where times and latencies are masked and the ids of our
 * processes become P0, P1... (in the order the activity reports them). On the kernel, event lines
 * of other processes on the machine are dropped (the kernel sees every process, bpftime only the
 * ones started under it); on our side nothing is dropped. What the kernel sees and an agent cannot
 * is the start of a process before its agent is loaded (its execve and the dynamic loader's opens):
 * those kernel lines are dropped and printed (opensnoop's lines before the target's marker open,
 * execsnoop's line of the target's own exec). Order within the event lines is not compared (each
 * CPU has its own perf ring, read in turn); a table of the results is printed at the end.
 *
 * Root only, with bpftrace installed and tracefs mounted.
 */
import assert from "node:assert/strict";
import { Segment } from "../ffi/shm.ts";
import { kernelBpfAvailable } from "../testing/kernel_bpf.ts";
import { BIN, bpftracePid, Running } from "./server_env.ts";
import { descendants, freshSegment, ROOT } from "./test_utils.ts";

const TARGET = `${ROOT}build/tests/bt_tools_target`;

function skipReason(): string | null {
  const kernel = kernelBpfAvailable();
  if (!kernel.ok) return kernel.reason;
  for (const cmd of ["bpftrace", "script", "openssl"]) {
    const r = new Deno.Command("sh", { args: ["-c", `command -v ${cmd}`] }).outputSync();
    if (r.code !== 0) return `${cmd} is not installed`;
  }
  try {
    Deno.statSync("/usr/sbin/opensnoop.bt");
    Deno.statSync("/sys/kernel/tracing/events/syscalls");
  } catch (e) {
    return `bpftrace's tools or tracefs missing: ${(e as Error).message}`;
  }
  return null;
}

const skip = skipReason();
if (skip) console.log(`skip: bpftrace tools tests: ${skip}`);

type Mode = "kernel" | "bpftime";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What an activity did: the ids of our processes and threads (P0 first). */
interface Activity {
  ids: number[];
  /** Of the kernel's event lines (normalised, in order), those an agent cannot see: starts. */
  unseen?: (events: string[]) => string[];
}

/** Starts `args` (under `bpftime start` for bpftime), returns its stdout lines once it exited. */
async function runTarget(mode: Mode, seg: string, args: string[], stdin?: string) {
  const [cmd, rest] = mode === "kernel" ? [args[0], args.slice(1)] : [BIN, ["start", ...args]];
  const child = new Deno.Command(cmd, {
    args: rest,
    env: { BPFTIME_GLOBAL_SHM_NAME: seg },
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    for (const line of stdin.split("\n").filter(Boolean)) {
      await w.write(new TextEncoder().encode(line + "\n"));
      await sleep(300); // bash reads each line with readline, at its prompt
    }
    await w.close();
  }
  const out = await child.output();
  const text = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, `${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  return text.split(/\r?\n/);
}

/**
 * The bt_tools_target mode's ids: "tid N" / "child N" lines, then "done PID" (P0). With `shell`,
 * run by a shell (`sh -c`, under `bpftime start` for ours), so its parent is single-threaded.
 */
async function targetMode(
  mode: Mode,
  seg: string,
  which: string,
  shell = false,
): Promise<Activity> {
  const args = shell ? ["/bin/sh", "-c", `${TARGET} ${which}; true`] : [TARGET, which];
  const lines = await runTarget(mode, seg, args);
  const done = lines.find((l) => l.startsWith("done "));
  assert.ok(done, lines.join("\n"));
  const others = lines.filter((l) => /^(tid|child) \d+$/.test(l)).map((l) =>
    Number(l.split(" ")[1])
  );
  return { ids: [Number(done.split(" ")[1]), ...others] };
}

/** A tool: its activity and the shape of its event lines (a regex whose `pid` group filters). */
interface Tool {
  name: string;
  /** The script, when not /usr/sbin/NAME.bt: its path (a variant written for the test). */
  script?: () => string;
  activity: (mode: Mode, seg: string) => Promise<Activity>;
  /** An event line: `pid` names the process (or thread) it is about; `mask` groups are masked. */
  event: RegExp;
  /** Named groups replaced by their name (times, latencies). */
  mask: string[];
  /** A line bpftrace prints late on a busy machine: waited for (up to 15 s) before Ctrl-C. */
  until?: RegExp;
  /**
   * Tools that print aggregations (counts over the whole machine on the kernel): what of the
   * normalised lines is compared, instead of all of them (default: the lines, sorted).
   */
  compared?: (lines: string[], mode: Mode) => string[];
  /**
   * Run alone: the kernel's run and ours otherwise run side by side (each sees its own ids
   * only), but this tool's output covers the whole machine.
   */
  alone?: boolean;
  /** The file whose function names the tool prints (see functionAsAddress). */
  symbols?: string;
}

let scripts = 0; // variants written, one file per run
const TIME = String.raw`(?<time>\d\d:\d\d:\d\d)`;

const TOOLS: Tool[] = [
  {
    name: "opensnoop",
    activity: async (mode, seg) => ({
      ...await targetMode(mode, seg, "open"),
      // The dynamic loader's opens come before main's first, the marker.
      unseen: (events) => {
        const at = events.findIndex((l) => l.endsWith("/tmp/bt-tools-begin-missing"));
        return at > 0 ? events.slice(0, at) : [];
      },
    }),
    event: /^(?<pid>\d+)\s+.+?\s+-?\d+\s+\d+ .*$/, // COMM may hold spaces
    mask: [],
  },
  {
    name: "statsnoop",
    activity: (mode, seg) => targetMode(mode, seg, "stat"),
    event: /^(?<pid>\d+)\s+.+?\s+\d+ .*$/,
    mask: [],
  },
  {
    name: "syncsnoop",
    activity: (mode, seg) => targetMode(mode, seg, "sync"),
    event: new RegExp(String.raw`^${TIME}\s+(?<pid>\d+)\s+.*$`),
    mask: ["time"],
  },
  {
    name: "killsnoop",
    activity: (mode, seg) => targetMode(mode, seg, "kill"),
    event: new RegExp(String.raw`^${TIME}\s+(?<pid>\d+)\s+.*$`),
    mask: ["time"],
  },
  {
    name: "setuids",
    activity: (mode, seg) => targetMode(mode, seg, "setuid"),
    event: new RegExp(String.raw`^${TIME}\s+(?<pid>\d+)\s+.*$`),
    mask: ["time"],
  },
  {
    name: "naptime",
    // Under a shell: the parent's name is its forking thread's (a Deno runtime thread's, when
    // Deno starts it directly).
    activity: (mode, seg) => targetMode(mode, seg, "nap", true),
    event: new RegExp(String.raw`^${TIME}\s+(?<ppid>\d+)\s+.{16} (?<pid>\d+)\s+.*$`),
    mask: ["time", "ppid"],
  },
  {
    name: "execsnoop",
    activity: async (mode, seg) => ({
      ...await targetMode(mode, seg, "exec"),
      // The target's own exec, by its parent, before any agent.
      unseen: (lines) => lines.filter((l) => l.includes(`${TARGET} exec`)),
    }),
    event: /^(?<time>\d+)\s+(?<pid>\d+)\s+.*$/,
    mask: ["time"],
  },
  {
    name: "threadsnoop",
    activity: (mode, seg) => targetMode(mode, seg, "thread"),
    event: /^(?<time>\d+)\s+(?<pid>\d+)\s+.*$/,
    mask: ["time"],
  },
  {
    // On this glibc (2.34 on), libpthread has no pthread_create: the tool's probe is dropped and
    // it prints its header only, on the kernel as here. The same script on libc (where
    // pthread_create lives) is compared too: it must not see the agent's own thread.
    name: "threadsnoop",
    script: () => {
      const path = `/tmp/threadsnoop_libc_${Deno.pid}_${++scripts}.bt`;
      Deno.writeTextFileSync(
        path,
        Deno.readTextFileSync("/usr/sbin/threadsnoop.bt").replace(
          "uprobe:libpthread:pthread_create",
          "uprobe:libc:pthread_create",
        ),
      );
      return path;
    },
    activity: (mode, seg) => targetMode(mode, seg, "thread"),
    event: /^(?<time>\d+)\s+(?<pid>\d+)\s+.*$/,
    mask: ["time"],
    until: /bt_tools_target\s+(bt_tools_worker|0x[0-9a-f]+)$/,
    symbols: TARGET,
  },
  {
    name: "gethostlatency",
    activity: (mode, seg) => targetMode(mode, seg, "host"),
    event: new RegExp(String.raw`^${TIME}\s+(?<pid>\d+)\s+.{1,16}?\s+(?<lat>\d+) .*$`),
    mask: ["time", "lat"],
  },
  {
    name: "bashreadline",
    activity: async (mode, seg) => {
      const bash = ["/bin/bash", "--norc", "--noprofile", "-i"];
      const inner = mode === "kernel" ? bash : [BIN, "start", ...bash];
      const out = await runTarget("kernel", seg, [
        "script",
        "-qfec",
        inner.join(" "),
        "/dev/null",
      ], "echo bt-tools-pid $$\ntrue bt-tools-second\nexit\n");
      const m = out.map((l) => /bt-tools-pid (\d+)/.exec(l)).find((x) => x);
      assert.ok(m, out.join("\n"));
      return { ids: [Number(m[1])] };
    },
    event: new RegExp(String.raw`^${TIME}\s+(?<pid>\d+)\s+.*$`),
    mask: ["time"],
  },
  {
    // Counts per syscall id and per process name over the machine on the kernel, over the
    // processes started under bpftime here. Compared: the text around the maps; the count of
    // getitimer (id 36), which only the target calls (200000 times), on both; under bpftime, the
    // processes counted are the target alone, with at least its 200000 calls and no more than the
    // kernel counted for it (which adds the process's start, before the agent).
    name: "syscount",
    alone: true,
    activity: (mode, seg) => targetMode(mode, seg, "count"),
    event: /(?!)/, // no event lines: every line is compared through `compared`
    mask: [],
    compared: (lines, mode) => {
      const count = (re: RegExp) =>
        lines.map((l) => re.exec(l)).filter((m) => m).map((m) => Number(m![1]));
      const target = count(/^@process\[bt_tools_target\]: (\d+)$/);
      assert.equal(target.length, 1, `${mode}: the target in the top 10 processes`);
      assert.ok(target[0] >= 200000, `${mode}: the target's syscalls: ${target[0]}`);
      if (mode === "bpftime") {
        assert.deepEqual(
          lines.filter((l) => l.startsWith("@process[")).length,
          1,
          "ours: target only",
        );
      }
      return [
        ...lines.filter((l) => !l.startsWith("@")),
        `getitimer: ${count(/^@syscall\[36\]: (\d+)$/)}`,
      ];
    },
  },
  ...["sslsnoop", "ssllatency"].map((name): Tool => ({
    name,
    // Alone, both: sslsnoop prints at its end the calls still in flight on the whole machine
    // (`@start_ssl[tid]`), which side by side can be a call of the other run's processes.
    alone: true,
    symbols: "/usr/lib/x86_64-linux-gnu/libssl.so.3",
    activity: sslSession,
    // sslsnoop: TIME(us) TID COMM LAT(us) RET FUNC
    event: /^(?<time>\d+)\s+(?<pid>\d+)\s+\S+\s+(?<lat>\d+)\s+-?\d+ .*$/,
    mask: ["time", "lat"],
    // ssllatency: latency histograms and stats per function; the calls are counted. Its maps
    // cover the machine on the kernel: only openssl runs libssl here while the test runs.
    compared: name === "ssllatency"
      ? (lines) =>
        lines.filter((l) => !/^(\[|@hist|@stat)/.test(l) && l !== "").concat(
          lines.map((l) => /^(@statF?\[.*\]): count (\d+),/.exec(l)).filter((m) => m)
            .map((m) => `${m![1].replace(ADDRESS, addressInPage)} count ${m![2]}`).sort(),
        )
      : undefined,
  })),
];

/** A TLS session between openssl s_server and s_client (both under bpftime start for ours). */
async function sslSession(mode: Mode, seg: string): Promise<Activity> {
  const dir = Deno.makeTempDirSync({ prefix: "bt_tools_ssl" });
  let running: Deno.ChildProcess | undefined;
  try {
    const gen = await new Deno.Command("openssl", {
      args: [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        `${dir}/key.pem`,
        "-out",
        `${dir}/cert.pem`,
        "-subj",
        "/CN=localhost",
        "-days",
        "1",
      ],
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.equal(gen.code, 0, new TextDecoder().decode(gen.stderr));
    const port = 20000 + (Deno.pid % 20000) * 2 + (mode === "kernel" ? 0 : 1);
    const serverArgs = [
      "openssl",
      "s_server",
      "-accept",
      `127.0.0.1:${port}`,
      "-cert",
      `${dir}/cert.pem`,
      "-key",
      `${dir}/key.pem`,
      "-naccept",
      "1",
      "-quiet",
    ];
    const [cmd, args] = mode === "kernel"
      ? [serverArgs[0], serverArgs.slice(1)]
      : [BIN, ["start", ...serverArgs]];
    const server = running = new Deno.Command(cmd, {
      args,
      env: { BPFTIME_GLOBAL_SHM_NAME: seg },
      stdin: "piped", // open until the client is done: at EOF s_server ends the session
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    // Listening: its port in /proc/net/tcp in state 0A (a test connection would be its one accept).
    const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
    for (let i = 0;; i++) {
      const tcp = Deno.readTextFileSync("/proc/net/tcp");
      if (new RegExp(`^\\s*\\d+: 0100007F:${hexPort} 00000000:0000 0A `, "m").test(tcp)) break;
      if (i > 100) throw new Error("openssl s_server did not listen");
      await sleep(100);
    }
    const serverPid = mode === "kernel"
      ? server.pid
      : descendants(server.pid).find((p) => comm(p) === "openssl")!;
    // The client reads "hello" from a pipe kept open 1.5 s more: bpftrace resolves the
    // functions' names (`func`) in the maps of processes still alive.
    const clientArgs = [
      "openssl",
      "s_client",
      "-connect",
      `127.0.0.1:${port}`,
      "-quiet",
      "-no_ign_eof",
    ];
    const client = new Deno.Command(mode === "kernel" ? "openssl" : BIN, {
      args: mode === "kernel" ? clientArgs.slice(1) : ["start", ...clientArgs],
      env: { BPFTIME_GLOBAL_SHM_NAME: seg },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let clientPid = client.pid;
    for (let i = 0; mode === "bpftime"; i++) {
      const p = descendants(client.pid).find((p) => comm(p) === "openssl");
      if (p) {
        clientPid = p;
        break;
      }
      if (i > 100) throw new Error("no openssl s_client below bpftime start");
      await sleep(50);
    }
    // "hello" once the handshake is done (s_client prints the certificate's check), so its
    // SSL_write calls do not depend on how fast the handshake went.
    let err = "";
    const errDone = (async () => {
      for await (const t of client.stderr.pipeThrough(new TextDecoderStream())) err += t;
    })();
    for (let i = 0; !/verify return:1/.test(err); i++) {
      if (i > 300) throw new Error(`s_client did not finish its handshake: ${err}`);
      await sleep(50);
    }
    const w = client.stdin.getWriter();
    await w.write(new TextEncoder().encode("hello\n"));
    await sleep(1500);
    await w.close();
    const [status] = await Promise.all([client.status, errDone, client.stdout.cancel()]);
    assert.equal(status.code, 0, err);
    await server.stdin.close();
    const out = await server.output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    return { ids: [clientPid, serverPid] };
  } finally {
    if (running) { // a failed session leaves it waiting for its one client
      killTree(running.pid);
      await running.status;
    }
    Deno.removeSync(dir, { recursive: true });
  }
}

/** SIGKILL to `pid` and the processes below it (those that already exited are skipped). */
function killTree(pid: number) {
  for (const p of [...descendants(pid), pid]) {
    try {
      Deno.kill(p, "SIGKILL");
    } catch { /* exited */ }
  }
}

function comm(pid: number): string {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/comm`).trim();
  } catch {
    return "";
  }
}

interface Outcome {
  tool: string;
  kernel: string[];
  ours: string[];
  unseen: string[];
  stderr: string;
}

/** Code addresses (bpftrace's `func` without symbols) move with ASLR; their page offset does not. */
const ADDRESS = /0x[0-9a-f]{6,}([0-9a-f]{3})\b/g;
const addressInPage = (_: string, low: string) => `ADDR+${low}`;

/**
 * bpftrace names functions (`func`, `usym()`) when it prints, from the maps of the process: once
 * the process exited, it prints the address (on the kernel as here, as timing has it). A tool's
 * `symbols` file's function names become their address's page offset, so both forms compare equal.
 */
const offsetsOf = new Map<string, Map<string, string>>();
function functionAsAddress(line: string, file: string): string {
  let offsets = offsetsOf.get(file);
  if (!offsets) {
    offsets = new Map();
    const nm = new Deno.Command("nm", {
      args: ["--defined-only", ...(file.endsWith(".so.3") ? ["-D"] : []), file],
      stdout: "piped",
      stderr: "null",
    }).outputSync();
    for (const l of new TextDecoder().decode(nm.stdout).split("\n")) {
      const m = /^([0-9a-f]+) T (\w+)(@.*)?$/.exec(l);
      if (m) offsets.set(m[2], `ADDR+${m[1].slice(-3)}`);
    }
    offsetsOf.set(file, offsets);
  }
  return line.replace(/ (\w+)$/, (all, name) => {
    const a = offsets!.get(name);
    return a ? ` ${a}` : all;
  });
}

/** The lines, event lines normalised (other processes' dropped on the kernel); and the events. */
function normalise(tool: Tool, lines: string[], act: Activity, mode: Mode) {
  const out: string[] = [], events: string[] = [];
  for (const line of lines) {
    const m = new RegExp(tool.event.source, "d").exec(line);
    if (!m) {
      out.push(line);
      continue;
    }
    const pid = Number(m.groups!.pid);
    if (mode === "kernel" && !act.ids.includes(pid)) continue;
    let s = line;
    const masked = tool.mask.map((g) => [g, ...m.indices!.groups![g]!] as const)
      .sort((a, b) => b[1] - a[1]); // from the right: earlier offsets stay valid
    for (const [g, from, to] of masked) s = s.slice(0, from) + g.toUpperCase() + s.slice(to);
    s = s.replace(/\b\d+\b/g, (n) => {
      const at = act.ids.indexOf(Number(n));
      return at >= 0 ? `P${at}` : n;
    });
    s = s.replace(/\s+/g, " ").replace(ADDRESS, addressInPage);
    if (tool.symbols) s = functionAsAddress(s, tool.symbols);
    out.push(s);
    events.push(s);
  }
  return { lines: out, events };
}

/** Runs the tool on `mode` around its activity; its normalised lines. */
async function runTool(mode: Mode, tool: Tool): Promise<Outcome> {
  const seg = freshSegment(`bpftrace_tools_${mode}_${Deno.pid}`, 32);
  const script = tool.script ? tool.script() : `/usr/sbin/${tool.name}.bt`;
  const env = { BPFTIME_GLOBAL_SHM_NAME: seg.name };
  const tracer = mode === "kernel"
    ? new Running("bpftrace", [script], env)
    : new Running(BIN, ["load", "bpftrace", script], env);
  try {
    await tracer.waitLine(/^Attaching \d+ probes?\.\.\.$/);
    // Attached when bpftrace's fds stop growing for a second.
    const bt = bpftracePid(tracer);
    const fds = () => [...Deno.readDirSync(`/proc/${bt}/fd`)].length;
    for (let last = -1, same = 0, i = 0; same < 10; i++) {
      if (i > 600) throw new Error(`bpftrace did not finish attaching; stderr:\n${tracer.stderr}`);
      await sleep(100);
      const n = fds();
      same = n === last ? same + 1 : 0;
      last = n;
    }
    const act = await tool.activity(mode, seg.name);
    // The last records reach bpftrace: on the kernel it may be behind (it resolves symbols of
    // every process on the machine), and it does not read what is left after Ctrl-C.
    const seen = () => tool.until && tracer.lines.some((l) => tool.until!.test(l));
    for (let n = -1, i = 0; i < 100; i++) {
      const quiet = n === tracer.lines.length && i >= 5;
      if (tool.until ? seen() && quiet : quiet) break;
      n = tracer.lines.length;
      await sleep(150);
    }
    const exited = tracer.finish();
    for (let i = 0; i < 10; i++) {
      try {
        Deno.kill(bt, "SIGINT");
      } catch { /* exited */ }
      if (await Promise.race([exited.then(() => true), sleep(2000).then(() => false)])) break;
    }
    const status = await exited;
    assert.equal(status.code, 0, `${mode} ${tool.name}: bpftrace's status; ${tracer.stderr}`);
    const at = tracer.lines.findIndex((l) => /^Attaching \d+ probes?\.\.\.$/.test(l));
    const n = normalise(tool, tracer.lines.slice(at + 1), act, mode);
    const unseen = mode === "kernel" && act.unseen ? act.unseen(n.events) : [];
    const lines = n.lines.filter((l) => !unseen.includes(l));
    return { tool: tool.name, kernel: [], ours: lines, unseen, stderr: tracer.stderr };
  } finally {
    killTree(tracer.child.pid); // under bpftime load, bpftrace is below the CLI
    await tracer.finish();
    seg.close();
    Segment.remove(seg.name);
    if (tool.script) Deno.removeSync(script);
  }
}

/** Sorted: the order of lines across perf rings (one per CPU, read in turn) is not compared. */
function comparable(lines: string[]): string[] {
  return [...lines].sort();
}

const table: string[] = [];

for (const tool of TOOLS) {
  Deno.test({
    name: `bpftrace tool ${tool.name}${
      tool.script ? " (on libc)" : ""
    }: the same lines on the kernel and under bpftime`,
    ignore: skip !== null,
    sanitizeResources: false,
    async fn() {
      const [k, b] = tool.alone
        ? [await runTool("kernel", tool), await runTool("bpftime", tool)]
        : await Promise.all([runTool("kernel", tool), runTool("bpftime", tool)]);
      console.log(`kernel:\n${k.ours.join("\n")}\nbpftime:\n${b.ours.join("\n")}`);
      if (k.unseen.length) console.log(`kernel lines before the agent: ${k.unseen.join(" | ")}`);
      // Known open bug, said in the issue note: at bpftrace's exit, one probe's perf event fd is
      // sometimes found closed already (EBADF on its PERF_EVENT_IOC_DISABLE and close), after
      // every event was delivered. Printed, not failed on, until it is found.
      const exitFdBug = /^ERROR: failed to close perf event FDs for probe/;
      if (b.stderr.split("\n").some((l) => exitFdBug.test(l))) {
        console.log(`KNOWN BUG seen: a perf event fd closed before bpftrace's exit:\n${b.stderr}`);
      }
      const complaints = b.stderr.split("\n").filter((l) =>
        /^(bpftime-server|ERROR|WARNING)/.test(l) && !/attach type 42 |RLIMIT_MEMLOCK/.test(l) &&
        !exitFdBug.test(l)
      );
      const kc = tool.compared ? tool.compared(k.ours, "kernel") : comparable(k.ours);
      const bc = tool.compared ? tool.compared(b.ours, "bpftime") : comparable(b.ours);
      const same = JSON.stringify(kc) === JSON.stringify(bc);
      table.push(
        `${tool.name}${tool.script ? " (libc)" : ""} | ${k.ours.length} lines | ${
          same ? "same" : "DIFFERENT"
        }`,
      );
      assert.deepEqual(complaints, [], b.stderr);
      assert.deepEqual(bc, kc);
    },
  });
}

Deno.test({
  name: "bpftrace tools: the table",
  ignore: skip !== null,
  fn() {
    console.log(`tool | kernel | ours\n${table.join("\n")}`);
  },
});

Deno.test({
  name:
    "bpftrace interval:ms:500 and interval:s:1 probes (timer perf events) run as on the kernel, and exit() from one ends bpftrace",
  ignore: skip !== null,
  sanitizeResources: false,
  async fn() {
    const script = 'BEGIN { @n = 0; } interval:ms:500 { printf("tick\\n"); } ' +
      'interval:s:1 { printf("sec\\n"); @n = @n + 1; if (@n == 3) { exit(); } } ' +
      'END { printf("end\\n"); }';
    const run = async (mode: Mode) => {
      const seg = freshSegment(`bpftrace_tools_iv_${mode}_${Deno.pid}`, 16);
      const env = { BPFTIME_GLOBAL_SHM_NAME: seg.name };
      const t = mode === "kernel"
        ? new Running("bpftrace", ["-e", script], env)
        : new Running(BIN, ["load", "bpftrace", "-e", script], env);
      try {
        const status = await Promise.race([t.finish(), sleep(20000).then(() => null)]);
        assert.ok(status && status.code === 0, `${mode}: ${t.stderr}`);
        const lines = t.lines.filter((l) => l !== "");
        return lines.slice(lines.findIndex((l) => l.startsWith("Attaching")) + 1);
      } finally {
        killTree(t.child.pid);
        await t.finish();
        seg.close();
        Segment.remove(seg.name);
      }
    };
    const [k, b] = await Promise.all([run("kernel"), run("bpftime")]);
    console.log(`kernel: ${k.join(" ")}\nbpftime: ${b.join(" ")}`);
    for (const [mode, lines] of [["kernel", k], ["bpftime", b]] as const) {
      assert.equal(lines.filter((l) => l === "sec").length, 3, mode);
      // Ticks at 0.5 s ... 3 s: the one at 3 s races with the third second's exit().
      const ticks = lines.filter((l) => l === "tick").length;
      assert.ok(ticks === 5 || ticks === 6, `${mode}: ${ticks} ticks`);
      assert.deepEqual(lines.slice(-2), ["end", "@n: 3"], mode);
    }
  },
});
