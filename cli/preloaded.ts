/** Runs a program with one of our libraries preloaded, as `bpftime start` and `bpftime load` do. */
import { resolveProgram, whyNotPreloaded } from "./target_check.ts";

/**
 * Spawns `prog` with `library` in LD_PRELOAD, passes SIGTERM on (Ctrl-C reaches it through the
 * terminal), calls `afterExit` with its pid once it is gone, and exits with its status.
 */
export async function runPreloaded(
  command: string,
  library: string,
  prog: string,
  args: string[],
  afterExit: (pid: number) => void = () => {},
): Promise<never> {
  try {
    Deno.statSync(library);
  } catch {
    console.error(`bpftime ${command}: library '${library}' not found (run make)`);
    Deno.exit(2);
  }
  const path = resolveProgram(prog);
  const role = command === "load" ? "the syscall server" : "the agent";
  const why = path === undefined ? undefined : whyNotPreloaded(path, role);
  if (why) {
    console.error(
      `bpftime ${command}: warning: '${path}' ${why}; it runs ` +
        (command === "load" ? "with the kernel's eBPF, not bpftime's" : "without probes"),
    );
  }
  const preload = [library, Deno.env.get("LD_PRELOAD")].filter(Boolean).join(":");
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(prog, { args, env: { LD_PRELOAD: preload }, stdin: "inherit" })
      .spawn();
  } catch (e) {
    console.error(`bpftime ${command}: cannot run '${prog}': ${(e as Error).message}`);
    Deno.exit(127);
  }
  const forward = () => child.kill("SIGTERM");
  Deno.addSignalListener("SIGTERM", forward);
  Deno.addSignalListener("SIGINT", () => {});
  const status = await childStatus(child);
  afterExit(child.pid);
  if (status.signal !== undefined) {
    // As the shell reports it: 128 + the signal's number, and its name.
    console.error(`bpftime: ${prog} killed by ${signalName(status.signal)}`);
    Deno.exit(128 + status.signal);
  }
  Deno.exit(status.code);
}

/** How the child ended: its exit code, or the number of the signal that killed it. */
async function childStatus(
  child: Deno.ChildProcess,
): Promise<{ code: number; signal?: number }> {
  try {
    const s = await child.status;
    // Deno's code for a signal is already 128 + its number; the table is for the name's sake.
    return s.signal
      ? { code: s.code, signal: SIGNALS[s.signal] ?? s.code - 128 }
      : { code: s.code };
  } catch (e) {
    // Deno names no real-time signal and throws "Invalid signal: N" for them.
    const m = /Invalid signal: (\d+)/.exec((e as Error).message);
    if (!m) throw e;
    return { code: 128 + Number(m[1]), signal: Number(m[1]) };
  }
}

/** Linux signal numbers (x86-64, aarch64 and the other generic-ABI architectures). */
const SIGNALS: Readonly<Record<string, number>> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGILL: 4,
  SIGTRAP: 5,
  SIGABRT: 6,
  SIGIOT: 6,
  SIGBUS: 7,
  SIGFPE: 8,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGSEGV: 11,
  SIGUSR2: 12,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
  SIGSTKFLT: 16,
  SIGCHLD: 17,
  SIGCONT: 18,
  SIGSTOP: 19,
  SIGTSTP: 20,
  SIGTTIN: 21,
  SIGTTOU: 22,
  SIGURG: 23,
  SIGXCPU: 24,
  SIGXFSZ: 25,
  SIGVTALRM: 26,
  SIGPROF: 27,
  SIGWINCH: 28,
  SIGIO: 29,
  SIGPOLL: 29,
  SIGPWR: 30,
  SIGSYS: 31,
};

/** "SIGBUS", or for real-time signals "SIGRTMIN+3" (Linux: SIGRTMIN is 34). */
function signalName(n: number): string {
  const name = Object.entries(SIGNALS).find(([, v]) => v === n)?.[0];
  if (name) return name;
  return n >= 34 && n <= 64 ? `SIGRTMIN+${n - 34}` : `signal ${n}`;
}
