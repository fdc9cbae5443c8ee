/** Runs a program with one of our libraries preloaded, as `bpftime start` and `bpftime load` do. */

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
  const status = await child.status;
  afterExit(child.pid);
  Deno.exit(status.signal ? 128 + signalNumber(status.signal) : status.code);
}

function signalNumber(name: Deno.Signal): number {
  const table: Partial<Record<Deno.Signal, number>> = {
    SIGINT: 2,
    SIGKILL: 9,
    SIGSEGV: 11,
    SIGTERM: 15,
    SIGABRT: 6,
  };
  return table[name] ?? 1;
}
