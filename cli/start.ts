/** `bpftime start [--] PROGRAM [ARGS...]`: run a program with the agent preloaded. */
import { Command } from "commander";
import { agentPath } from "./agent_path.ts";

export function registerStart(program: Command): void {
  program.command("start")
    .description(
      "run PROGRAM with the bpftime agent (uprobes from the segment are installed in it)",
    )
    .argument("<program>", "the program to run")
    .argument("[args...]", "its arguments")
    .passThroughOptions()
    .action(async (prog: string, args: string[]) => {
      const agent = agentPath();
      try {
        Deno.statSync(agent);
      } catch {
        console.error(
          `bpftime start: agent library '${agent}' not found (run make, or set AGENT_SO)`,
        );
        Deno.exit(2);
      }
      const preload = [agent, Deno.env.get("LD_PRELOAD")].filter(Boolean).join(":");
      let child: Deno.ChildProcess;
      try {
        child = new Deno.Command(prog, { args, env: { LD_PRELOAD: preload }, stdin: "inherit" })
          .spawn();
      } catch (e) {
        console.error(`bpftime start: cannot run '${prog}': ${(e as Error).message}`);
        Deno.exit(127);
      }
      // Ctrl-C reaches the child through the terminal; SIGTERM sent to us is passed on.
      const forward = () => child.kill("SIGTERM");
      Deno.addSignalListener("SIGTERM", forward);
      Deno.addSignalListener("SIGINT", () => {});
      const status = await child.status;
      Deno.exit(
        status.signal
          ? 128 + (Deno.build.os === "linux" ? signalNumber(status.signal) : 0)
          : status.code,
      );
    });
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
