/** `bpftime start [--] PROGRAM [ARGS...]`: run a program with the agent preloaded. */
import { Command } from "commander";
import { libraryPath } from "../mod.ts";
import { runPreloaded } from "./preloaded.ts";

export function registerStart(program: Command): void {
  program.command("start")
    .description(
      "run PROGRAM with the bpftime agent (uprobes from the segment are installed in it)",
    )
    .argument("<program>", "the program to run")
    .argument("[args...]", "its arguments")
    .passThroughOptions()
    .action((prog: string, args: string[]) =>
      runPreloaded("start", libraryPath("agent"), prog, args)
    );
}
