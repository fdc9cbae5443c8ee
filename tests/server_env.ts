/** Shared pieces of the syscall server tests: the libbpf applications, and reading their output. */
import { commOf, descendants, ROOT } from "./test_utils.ts";

export const BIN = `${ROOT}bin/bpftime`;
export const RING_CONSUMER = `${ROOT}build/tests/ring_consumer`;
export const RING_EVENTS = `${ROOT}build/tests/ring_events.bpf.o`;
export const PERF_EVENTS = `${ROOT}build/tests/perf_events.bpf.o`;
export const BAD_CALLS = `${ROOT}build/tests/bpf_bad_calls`;
export const MALLOC_APP = `${ROOT}build/examples/malloc`;
export const BASHREADLINE_APP = `${ROOT}build/examples/bashreadline`;
export const TARGET = `${ROOT}build/tests/probe_target`;

/** A running process whose stdout is read line by line as it comes. */
export class Running {
  readonly lines: string[] = [];
  readonly child: Deno.ChildProcess;
  #stderr = "";
  #done: Promise<void>;

  constructor(cmd: string, args: string[], env: Record<string, string> = {}) {
    this.child = new Deno.Command(cmd, { args, env, stdout: "piped", stderr: "piped" }).spawn();
    const read = async (stream: ReadableStream<Uint8Array>, onText: (t: string) => void) => {
      for await (const text of stream.pipeThrough(new TextDecoderStream())) onText(text);
    };
    let partial = "";
    this.#done = Promise.all([
      read(this.child.stdout, (t) => {
        const parts = (partial + t).split("\n");
        partial = parts.pop()!;
        this.lines.push(...parts);
      }),
      read(this.child.stderr, (t) => this.#stderr += t),
    ]).then(() => {});
  }

  get stderr(): string {
    return this.#stderr;
  }

  /** The first line from index `from` on that matches, waiting up to timeoutMs for it. */
  async waitLine(
    re: RegExp,
    timeoutMs = 30000,
    from = 0,
  ): Promise<{ line: string; index: number }> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      for (let i = from; i < this.lines.length; i++) {
        if (re.test(this.lines[i])) return { line: this.lines[i], index: i };
      }
      if (Date.now() > end) {
        throw new Error(
          `no line matching ${re} after ${timeoutMs} ms; stdout:\n${
            this.lines.slice(-20).join("\n")
          }\nstderr:\n${this.#stderr.slice(-2000)}`,
        );
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async finish(): Promise<Deno.CommandStatus> {
    const status = await this.child.status;
    await this.#done;
    return status;
  }
}

/** Runs to the end; stdout's last line parsed as JSON. */
export async function runJson(
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
  // deno-lint-ignore no-explicit-any
): Promise<{ code: number; json: any; stderr: string }> {
  const out = await new Deno.Command(cmd, { args, env, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  const last = dec.decode(out.stdout).trim().split("\n").pop() ?? "";
  let json;
  try {
    json = JSON.parse(last);
  } catch { /* the caller's assertions tell */ }
  return { code: out.code, json, stderr: dec.decode(out.stderr) };
}

/** The bpftrace process of `tracer`: the child itself (kernel), or below the CLI (bpftime load). */
export function bpftracePid(tracer: Running): number {
  const pid = tracer.child.pid;
  for (const p of [pid, ...descendants(pid)]) if (commOf(p) === "bpftrace") return p;
  throw new Error(`no bpftrace process below ${pid}`);
}
