/**
 * Shared pieces of the USDT tests (tests/usdt_test.ts): the target tests/targets/usdt_target.c,
 * driven through its stdin, and the normalisation of what the probes record.
 */
import { readLines } from "./kernel_syscall_counts.ts";
import { ROOT } from "./test_utils.ts";
export { descendantsNamed } from "./test_utils.ts";

export const USDT_TARGET = `${ROOT}build/tests/usdt_target`;
export const USDT_EVENTS_APP = `${ROOT}build/tests/usdt_events`;
export const USDT_PROGS = `${ROOT}build/tests/usdt_args.bpf.o`;

/** A process whose stdin we write commands to and whose stdout lines we read. */
export class Driven {
  readonly lines: string[] = [];
  readonly child: Deno.ChildProcess;
  #stderr = "";
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #done: Promise<void>;

  constructor(cmd: string, args: string[], env: Record<string, string> = {}) {
    this.child = new Deno.Command(cmd, {
      args,
      env,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#writer = this.child.stdin.getWriter();
    this.#done = Promise.all([
      readLines(this.child.stdout, (l) => this.lines.push(l)),
      readLines(this.child.stderr, (l) => this.#stderr += l + "\n"),
    ]).then(() => {});
  }

  get stderr(): string {
    return this.#stderr;
  }

  /** Sends `cmd` and waits for the next line matching `re`. */
  async ask(cmd: string, re: RegExp, timeoutMs = 10000): Promise<string> {
    const from = this.lines.length;
    await this.send(cmd);
    return await this.waitLine(re, timeoutMs, from);
  }

  /** Sends `cmd`, a command that answers nothing. */
  async send(cmd: string): Promise<void> {
    await this.#writer.write(new TextEncoder().encode(cmd + "\n"));
  }

  async waitLine(re: RegExp, timeoutMs = 10000, from = 0): Promise<string> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.lines.slice(from).find((l) => re.test(l));
      if (hit !== undefined) return hit;
      if (Date.now() > end) {
        throw new Error(
          `no line matching ${re} in ${timeoutMs} ms; stdout:\n${
            this.lines.slice(-20).join("\n")
          }\nstderr:\n${this.#stderr.slice(-3000)}`,
        );
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Asks `cmd` until its answer matches `want` (a value that changes asynchronously). */
  async askUntil(cmd: string, want: RegExp, timeoutMs = 10000): Promise<string> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const line = await this.ask(cmd, /./);
      if (want.test(line) || Date.now() > end) return line;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async close(): Promise<Deno.CommandStatus> {
    await this.#writer.close();
    const status = await this.child.status;
    await this.#done;
    return status;
  }
}

/**
 * A "COOKIE cnt=N args=... rc=... str=S" line with what changes from run to run (the address the
 * "plain" probe's string argument has) replaced by "PTR".
 */
export function normaliseEvent(line: string): string {
  return line.replace(/^(1 cnt=5 args=(?:-?\d+,){4})\d+/, "$1PTR");
}

/** A struct usdt_event (tests/bpf/usdt_event.h) as usdt_events.c prints it. */
export function formatEvent(r: Uint8Array): string {
  const v = new DataView(r.buffer, r.byteOffset, r.byteLength);
  const args = [], rcs = [];
  for (let i = 0; i < 6; i++) {
    args.push(v.getBigInt64(16 + 8 * i, true));
    rcs.push(v.getInt32(64 + 4 * i, true));
  }
  const str = new TextDecoder().decode(r.subarray(88, 104)).replace(/\0.*$/s, "");
  return `${v.getBigUint64(0, true)} cnt=${v.getInt32(12, true)} args=${args.join(",")} rc=${
    rcs.join(",")
  } str=${str}`;
}

const NAMES = ["alpha", "bravo", "charlie"];

/**
 * What usdt_target's round `i` passes to its probes (see usdt_target.c), as normaliseEvent leaves
 * it, for tools attached with cookies 1-4 (plain, consts, frame, guarded) and one tool watching.
 */
export function expectedEvents(i: number): string[] {
  const rc = (n: number) => Array.from({ length: 6 }, (_, k) => (k < n ? 0 : -2)).join(",");
  const small = ((-i + 128) & 255) - 128; // (int8_t)-i
  return [
    `1 cnt=5 args=${i},${small},${60000 + i},${-1000000007n * BigInt(i)},PTR,0 rc=${rc(5)} str=${
      NAMES[i % 3]
    }`,
    `2 cnt=3 args=5,-7,4294967296,0,0,0 rc=${rc(3)} str=`,
    `3 cnt=3 args=${i},${BigInt(i) << 33n},${-3 * i},0,0,0 rc=${rc(3)} str=`,
    `4 cnt=2 args=${i},1,0,0,0,0 rc=${rc(2)} str=`,
  ];
}
