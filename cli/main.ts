/** The `bpftime` command. */
import { Command } from "commander";
import { registerAttach } from "./attach.ts";
import { registerDaemon } from "./daemon.ts";
import { registerDetach } from "./detach.ts";
import { registerGen } from "./gen.ts";
import { registerLoad } from "./load.ts";
import { registerProctrace } from "./proctrace.ts";
import { registerRun } from "./run.ts";
import { registerStart } from "./start.ts";
import { registerAsm } from "./tool/asm.ts";
import { registerConformance } from "./tool/conformance.ts";
import { registerPlugin } from "./tool/plugin.ts";
import { registerSegment } from "./tool/segment.ts";

export function buildCli(): Command {
  const program = new Command("bpftime")
    .description("userspace eBPF runtime")
    .enablePositionalOptions()
    .showHelpAfterError()
    .exitOverride((err) => Deno.exit(err.exitCode === 0 ? 0 : 2));
  registerStart(program);
  registerLoad(program);
  registerRun(program);
  registerAttach(program);
  registerDetach(program);
  registerProctrace(program);
  registerGen(program);
  registerDaemon(program);
  const tool = program.command("tool")
    .description("inspect, assemble and run eBPF programs")
    .showHelpAfterError();
  registerConformance(tool);
  registerPlugin(tool);
  registerAsm(tool);
  registerSegment(tool);
  return program;
}

if (import.meta.main) {
  const cli = buildCli();
  if (Deno.args.length === 0) cli.help({ error: true });
  await cli.parseAsync(Deno.args, { from: "user" });
}
