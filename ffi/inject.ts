/**
 * Loading the agent into a running process (`bpftime attach`): build/bpftime-inject, a
 * helper of its own (csrc/inject/inject.c). A ptrace tracer is a single thread, the one
 * that seized the target, and it waits for the target's stops; a process of its own keeps
 * that apart from Deno's threads and signals, and a crash in it from the CLI.
 */

/** Path of the injector: $BPFTIME_INJECT, else build/bpftime-inject of this checkout. */
export function injectorPath(): string {
  return Deno.env.get("BPFTIME_INJECT") ||
    new URL("../build/bpftime-inject", import.meta.url).pathname;
}

export interface InjectResult {
  /** "loaded", "already" (the agent was there) or "failed". */
  outcome: "loaded" | "already" | "failed";
  /** What the injector said (its error, on failure). */
  message: string;
}

/** Loads `agent` (an absolute path) into process `pid`, following segment `segment`. */
export function injectAgent(pid: number, agent: string, segment: string): InjectResult {
  const out = new Deno.Command(injectorPath(), {
    args: [String(pid), agent, segment],
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  const dec = new TextDecoder();
  const message = (dec.decode(out.stdout) + dec.decode(out.stderr)).trim();
  const outcome = out.code === 0 ? "loaded" : out.code === 3 ? "already" : "failed";
  return { outcome, message };
}
