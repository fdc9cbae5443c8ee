/**
 * `bpftime daemon [-p PID] [-u UID] [-w OFFSET]... [-v]`: runs the uprobe programs that kernel
 * eBPF tools (unmodified libbpf applications, run as root) load, in userspace, in the processes
 * started with `bpftime start` or `bpftime attach`. The work is done by build/bpftime-daemon (a
 * process of its own: libbpf for its kernel tracer); this command runs it and passes SIGINT and
 * SIGTERM on.
 */
import { Command } from "commander";
import { daemonPath } from "../mod.ts";

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

export function registerDaemon(program: Command): void {
  program.command("daemon")
    .description(
      "run kernel eBPF tools' uprobe programs in userspace, with maps shared with the kernel (root)",
    )
    .option("-p, --pid <pid>", "watch only this process")
    .option("-u, --uid <uid>", "watch only this user's processes")
    .option("-w, --whitelist <offset>", "redirect only uprobes at these file offsets", collect, [])
    .option("-v, --verbose", "log every event", false)
    .action(async (opts: { pid?: string; uid?: string; whitelist: string[]; verbose: boolean }) => {
      const args: string[] = [];
      if (opts.pid !== undefined) args.push("-p", opts.pid);
      if (opts.uid !== undefined) args.push("-u", opts.uid);
      for (const w of opts.whitelist) args.push("-w", w);
      if (opts.verbose) args.push("-v");
      let child: Deno.ChildProcess;
      try {
        child = new Deno.Command(daemonPath(), { args, stdin: "null" }).spawn();
      } catch (e) {
        console.error(`bpftime daemon: cannot run ${daemonPath()}: ${(e as Error).message}`);
        Deno.exit(1);
      }
      const forward = (sig: Deno.Signal) => () => {
        try {
          child.kill(sig);
        } catch { /* already gone */ }
      };
      const onInt = forward("SIGINT"), onTerm = forward("SIGTERM");
      Deno.addSignalListener("SIGINT", onInt);
      Deno.addSignalListener("SIGTERM", onTerm);
      const status = await child.status;
      Deno.removeSignalListener("SIGINT", onInt);
      Deno.removeSignalListener("SIGTERM", onTerm);
      Deno.exit(status.code);
    });
}
