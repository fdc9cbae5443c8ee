/** Test utilities (not the eBPF helper tests, which are helpers_test.ts): paths, running the CLI, fresh segments. */
import { Segment } from "../ffi/shm.ts";

export const ROOT = new URL("../", import.meta.url).pathname;

/**
 * The deno binary for child processes. Deno manages node_modules itself
 * ("nodeModulesDir": "auto") and may replace the very binary that runs the
 * tests, so Deno.execPath() can name a deleted file: child processes use a
 * copy of the running binary (read through /proc/self/exe) in build/.
 */
export const DENO = copyOfRunningDeno();

function copyOfRunningDeno(): string {
  const target = `${ROOT}build/deno-for-tests`;
  const size = Deno.statSync("/proc/self/exe").size;
  try {
    if (Deno.statSync(target).size === size) return target;
  } catch { /* not copied yet */ }
  const tmp = `${target}.${Deno.pid}`;
  Deno.copyFileSync("/proc/self/exe", tmp);
  Deno.chmodSync(tmp, 0o755);
  Deno.renameSync(tmp, target);
  return target;
}

/** The conformance suite: $BPFTIME_CONFORMANCE_DIR, else ../shared/conformance beside the repo. */
export function conformanceDir(): string | undefined {
  const dir = Deno.env.get("BPFTIME_CONFORMANCE_DIR") ??
    `${ROOT}../shared/conformance/bpf_conformance`;
  try {
    return Deno.statSync(dir).isDirectory ? dir : undefined;
  } catch {
    return undefined;
  }
}

export function conformanceFiles(): string[] {
  const dir = conformanceDir();
  if (!dir) {
    console.log("skip: conformance suite not found (set BPFTIME_CONFORMANCE_DIR)");
    return [];
  }
  return [...Deno.readDirSync(dir)].filter((e) => e.name.endsWith(".data"))
    .map((e) => `${dir}/${e.name}`).sort();
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs bin/bpftime with args (and optional stdin). */
export function bpftime(args: string[], stdin?: string): Promise<CliResult> {
  return bpftimeEnv(args, {}, stdin);
}

/** Runs bin/bpftime with extra environment variables. */
export async function bpftimeEnv(
  args: string[],
  env: Record<string, string>,
  stdin?: string,
): Promise<CliResult> {
  const child = new Deno.Command(`${ROOT}bin/bpftime`, {
    args,
    env,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Segments freshSegment made: removed when the test process ends, so none is left in /dev/shm. */
const madeSegments = new Set<string>();
globalThis.addEventListener("unload", () => {
  for (const name of madeSegments) {
    try {
      Segment.remove(name);
    } catch { /* removed by its test */ }
  }
});

/** A new, empty segment `name`; a leftover of an earlier run is removed first. */
export function freshSegment(name: string, sizeMb = 4, group?: string): Segment {
  try {
    Segment.remove(name);
  } catch { /* nothing left over */ }
  madeSegments.add(name);
  return Segment.open(name, { create: true, sizeMb, group });
}

/** `args` run as user nobody with `env` (through runuser; root only). */
export function asNobody(args: string[], env: Record<string, string> = {}): Deno.Command {
  return new Deno.Command("runuser", {
    args: [
      "-u",
      "nobody",
      "--",
      "env",
      ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
      ...args,
    ],
    stdout: "piped",
    stderr: "piped",
  });
}

/** Whether tests can run `path` as nobody (we are root, and nobody can reach the checkout). */
export async function nobodyCanRun(path: string): Promise<boolean> {
  if (Deno.uid() !== 0) return false;
  const r = await asNobody(["test", "-x", path]).output().catch(() => ({ code: 1 }));
  return r.code === 0;
}

/** The pids of the processes below `pid`, depth first (through /proc/PID/task/TID/children). */
export function descendants(pid: number): number[] {
  const out: number[] = [];
  let tasks: string[] = [];
  try {
    tasks = [...Deno.readDirSync(`/proc/${pid}/task`)].map((e) => e.name);
  } catch {
    return out;
  }
  for (const tid of tasks) {
    let kids = "";
    try {
      kids = Deno.readTextFileSync(`/proc/${pid}/task/${tid}/children`);
    } catch {
      continue;
    }
    for (const k of kids.split(/\s+/).filter(Boolean)) {
      out.push(Number(k), ...descendants(Number(k)));
    }
  }
  return out;
}

/** The command name of process `pid` ("" once it is gone). */
export function commOf(pid: number): string {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/comm`).trim();
  } catch {
    return "";
  }
}

/** The processes below `pid` named `comm`. */
export function descendantsNamed(pid: number, comm: string): number[] {
  return descendants(pid).filter((p) => commOf(p) === comm);
}

/** SIGKILL to each child (a Deno.ChildProcess or a pid) that is still there. */
export function killQuietly(...children: (Deno.ChildProcess | number)[]) {
  for (const c of children) {
    try {
      if (typeof c === "number") Deno.kill(c, "SIGKILL");
      else c.kill("SIGKILL");
    } catch { /* gone already */ }
  }
}
