/**
 * `bpftime proctrace [--userspace] [-p PID] [-c COMM] [-d MIN_DURATION_MS] [-- COMMAND ...]`:
 * exec and exit events as JSON lines, written on the ProcessTracer API. Kernel mode (root)
 * traces the whole machine, or with -p a process and its descendants, or with a COMMAND that
 * command's process tree (until it exits). Userspace mode runs COMMAND under the agent.
 */
import { Command, Option } from "commander";
import { type ProcessBatch, ProcessTracer, type ProcessTracerOptions } from "../mod.ts";
import { integer, processId } from "./tool/options.ts";

const encoder = new TextEncoder();

/** Writes a batch's events as JSON lines, in one write. */
function printBatch(batch: ProcessBatch): void {
  let text = "";
  for (let i = 0; i < batch.length; i++) text += batch.jsonLine(i) + "\n";
  const bytes = encoder.encode(text);
  for (let done = 0; done < bytes.length;) done += Deno.stdout.writeSync(bytes.subarray(done));
}

interface ProctraceFlags {
  userspace?: boolean;
  pid?: number;
  comm?: string;
  minDuration?: number;
}

function fail(message: string): never {
  console.error(`bpftime proctrace: ${message}`);
  Deno.exit(1);
}

async function runCommand(argv: string[]): Promise<Deno.CommandStatus> {
  try {
    return await new Deno.Command(argv[0], { args: argv.slice(1), stdin: "inherit" }).spawn()
      .status;
  } catch (e) {
    fail(`cannot run '${argv[0]}': ${(e as Error).message}`);
  }
}

async function proctrace(command: string[], flags: ProctraceFlags): Promise<void> {
  if (flags.comm !== undefined && encoder.encode(flags.comm).length > 15) {
    fail(`-c '${flags.comm}': a comm is at most 15 bytes`);
  }
  const options: ProcessTracerOptions = {
    pid: flags.pid,
    comm: flags.comm,
    minDurationMs: flags.minDuration,
  };
  let tracer: ProcessTracer;
  if (flags.userspace) {
    if (command.length === 0) {
      fail("--userspace needs a command: bpftime proctrace --userspace -- COMMAND ...");
    }
    if (flags.pid !== undefined) {
      fail("-p is for kernel mode; --userspace traces COMMAND and its descendants");
    }
    try {
      tracer = ProcessTracer.userspace(command, printBatch, options);
    } catch (e) {
      fail((e as Error).message);
    }
    const status = await tracer.exited!;
    await tracer.stop();
    Deno.exit(status.code);
  }
  // Kernel mode: with a COMMAND, this process's descendants (the command's tree).
  if (command.length && flags.pid === undefined) options.pid = Deno.pid;
  try {
    tracer = ProcessTracer.kernel(printBatch, options);
  } catch (e) {
    fail((e as Error).message);
  }
  if (command.length) {
    const status = await runCommand(command);
    await tracer.stop();
    Deno.exit(status.code);
  }
  const stop = () => tracer.stop();
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  await tracer.done;
  Deno.exit(0);
}

export function registerProctrace(program: Command): void {
  program.command("proctrace")
    .description(
      "print process exec and exit events as JSON lines (kernel mode: root; --userspace: COMMAND under the agent)",
    )
    .argument("[command...]", "run this command and trace its process tree (after --)")
    .option("--userspace", "run COMMAND under the agent and trace it in userspace (no root)")
    .addOption(
      new Option("-p, --pid <pid>", "only this process and its descendants").argParser(processId),
    )
    .addOption(new Option("-c, --comm <comm>", "only processes with this comm"))
    .addOption(
      new Option("-d, --min-duration <ms>", "drop exits of processes that ran less than this")
        .argParser(integer(0, 86_400_000)),
    )
    .action((command: string[], flags: ProctraceFlags) => proctrace(command, flags));
}
