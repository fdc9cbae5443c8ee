/**
 * The kernel's side of the syscall comparisons (tests/syscall_hook_test.ts,
 * tests/syscall_tracepoint_test.ts): bpftrace on raw_syscalls, counting for a target marked by
 * `close(7770001)` until its `close(7770002)`, and the processes it forks until they exec.
 */

/** Why bpftrace cannot run here, or null; mounts tracefs when it is missing (bpftrace reads it). */
export function bpftraceSkipReason(): string | null {
  if (Deno.uid() !== 0) return "not root: bpftrace and tracefs need root";
  try {
    Deno.statSync("/sys/kernel/tracing/events/raw_syscalls");
  } catch {
    const r = new Deno.Command("mount", {
      args: ["-t", "tracefs", "tracefs", "/sys/kernel/tracing"],
    })
      .outputSync();
    if (r.code !== 0) return "tracefs is not mounted and cannot be";
  }
  const r = new Deno.Command("sh", { args: ["-c", "command -v bpftrace"] }).outputSync();
  if (r.code !== 0) return "bpftrace is not installed";
  return null;
}

/** A bpftrace script counting @enter/@exit per syscall for `comm`'s marked run, plus `extra`. */
export function rawSyscallCountScript(comm: string, extra = ""): string {
  return `
BEGIN { printf("ready\\n"); }
tracepoint:raw_syscalls:sys_enter {
  if (args->id == 3 && args->args[0] == 7770001 && comm == "${comm}") { @t[pid] = 1; }
  if (@t[pid]) {
    @enter[args->id] = count();
    if (args->id == 3 && args->args[0] == 7770002) { @end[tid] = 1; }
  }
}
tracepoint:raw_syscalls:sys_exit /@t[pid]/ {
  @exit[args->id] = count();
  if (@end[tid]) { delete(@t[pid]); exit(); }
}
tracepoint:sched:sched_process_fork /@t[pid]/ { @t[args->child_pid] = 1; }
tracepoint:sched:sched_process_exec /@t[pid]/ { delete(@t[pid]); }
${extra}`;
}

/** Calls `onLine` for each line of `stream`, the last one even without a newline. */
export async function readLines(
  stream: ReadableStream<Uint8Array>,
  onLine: (l: string) => void,
): Promise<void> {
  let buf = "";
  for await (const text of stream.pipeThrough(new TextDecoderStream())) {
    buf += text;
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      onLine(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  }
  if (buf) onLine(buf);
}
