/**
 * `bpftime load [--] PROGRAM [ARGS...]`: run an unmodified libbpf application with the syscall
 * server preloaded, so its maps, programs and links live in the segment instead of the kernel.
 */
import { Command } from "commander";
import { libraryPath, Segment, segmentSizeMb } from "../mod.ts";
import { runPreloaded } from "./preloaded.ts";

export function registerLoad(program: Command): void {
  program.command("load")
    .description(
      "run a libbpf application with the syscall server: its eBPF objects go to the segment, " +
        "its probes run in processes started with `bpftime start`",
    )
    .argument("<program>", "the program to run")
    .argument("[args...]", "its arguments")
    .passThroughOptions()
    .action((prog: string, args: string[]) => {
      try {
        segmentSizeMb(); // the server creates the segment: its size is checked here, first
      } catch (e) {
        console.error(`bpftime load: ${(e as Error).message}`);
        Deno.exit(2);
      }
      return runPreloaded("load", libraryPath("syscallServer"), prog, args, releaseObjectsOf);
    });
}

/** A killed application closes no fds itself: its links, programs and maps go here, as in the kernel. */
function releaseObjectsOf(pid: number): void {
  try {
    const segment = Segment.open();
    segment.releaseObjectsOf(pid);
    segment.close();
  } catch {
    // No segment: the application created nothing.
  }
}
