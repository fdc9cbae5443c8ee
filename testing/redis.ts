/**
 * Debian's redis-server, started as anyone would (no agent), for the attach test and bench:
 * its own port and directory, nothing saved, in the foreground; redis-cli and redis-benchmark
 * to drive it.
 */

export const REDIS_SERVER = "/usr/bin/redis-server";

/** Whether redis-server, redis-cli and redis-benchmark are installed (scripts/setup.sh). */
export function redisInstalled(): boolean {
  for (const p of [REDIS_SERVER, "/usr/bin/redis-cli", "/usr/bin/redis-benchmark"]) {
    try {
      Deno.statSync(p);
    } catch {
      return false;
    }
  }
  return true;
}

/** The file the server runs (redis-server is a symbolic link): what uprobes name. */
export function redisBinary(): string {
  return Deno.realPathSync(REDIS_SERVER);
}

const dec = new TextDecoder();

/** A TCP port nobody listens on, in 10000..31999. */
function freePort(): number {
  for (;;) {
    const port = 10000 + Math.floor(Math.random() * 22000);
    try {
      Deno.listen({ hostname: "127.0.0.1", port }).close();
      return port;
    } catch { /* taken: another */ }
  }
}

export class Redis {
  readonly child: Deno.ChildProcess;
  readonly dir: string;
  #done: Promise<Deno.CommandStatus>;
  #log = "";
  #exited = false;

  private constructor(readonly port: number) {
    this.dir = Deno.makeTempDirSync({ prefix: "bpftime_redis_" });
    this.child = new Deno.Command(REDIS_SERVER, {
      args: [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        this.dir,
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
        "--logfile",
        "",
      ],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const child = this.child;
    const read = async (s: ReadableStream<Uint8Array>) => {
      for await (const c of s) this.#log += dec.decode(c);
    };
    this.#done = Promise.all([read(child.stdout), read(child.stderr), child.status])
      .then(([, , s]) => {
        this.#exited = true;
        return s;
      });
  }

  /**
   * Starts a server and waits until it answers PING (bounded). Its port is a free one below
   * the kernel's ephemeral range (where redis-benchmark's own connections take theirs).
   */
  static async start(): Promise<Redis> {
    for (let attempt = 0;; attempt++) {
      const r = new Redis(freePort());
      const end = Date.now() + 10000;
      while ((await r.cli(["PING"])).out !== "PONG") {
        if (Date.now() > end || r.#exited) {
          await r.stop();
          if (attempt < 5 && /Address already in use/.test(r.log)) break;
          throw new Error(`redis-server on port ${r.port} never answered: ${r.log}`);
        }
        await new Promise((res) => setTimeout(res, 50));
      }
      if (!r.#exited) return r;
    }
  }

  get pid(): number {
    return this.child.pid;
  }
  get log(): string {
    return this.#log;
  }

  /** redis-cli with `args`, its output trimmed; `input` is sent as commands, one a line. */
  async cli(args: string[], input?: string): Promise<{ code: number; out: string }> {
    const child = new Deno.Command("redis-cli", {
      args: ["-p", String(this.port), "--raw", ...args],
      stdin: input === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    if (input !== undefined) {
      const w = child.stdin.getWriter();
      await w.write(new TextEncoder().encode(input));
      await w.close();
    }
    const o = await child.output();
    return { code: o.code, out: (dec.decode(o.stdout) + dec.decode(o.stderr)).trim() };
  }

  /** INFO stats' total_commands_processed. */
  async commandsProcessed(): Promise<number> {
    const info = (await this.cli(["INFO", "stats"])).out;
    const m = /total_commands_processed:(\d+)/.exec(info);
    if (!m) throw new Error(`no total_commands_processed in INFO: ${info}`);
    return Number(m[1]);
  }

  /** Writes `n` keys `prefix:i` with values derived from i. */
  async writeKeys(prefix: string, n: number): Promise<void> {
    let cmds = "";
    for (let i = 0; i < n; i++) cmds += `SET ${prefix}:${i} v${(i * 2654435761) % 1000003}-${i}\n`;
    const r = await this.cli([], cmds);
    if (r.code !== 0) throw new Error(`writing keys failed: ${r.out.slice(0, 200)}`);
  }

  /** SHA-256 (hex) of the values of `prefix:0..n-1`, read back with MGET, and the key count. */
  async checksum(prefix: string, n: number): Promise<string> {
    const keys = Array.from({ length: n }, (_, i) => `${prefix}:${i}`);
    const values = (await this.cli(["MGET", ...keys])).out;
    const count =
      (await this.cli(["EVAL", `return #redis.call('KEYS', ARGV[1])`, "0", `${prefix}:*`]))
        .out;
    const h = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(values));
    return `${count} keys ${
      Array.from(new Uint8Array(h), (b) => b.toString(16).padStart(2, "0")).join("")
    }`;
  }

  /**
   * One redis-benchmark run: `args` after the port (e.g. -t get,set -n N -c 20 -P 1).
   * Returns requests/s per test (CSV output), and what it said when it saw errors.
   */
  async benchmark(args: string[]): Promise<{ rps: Record<string, number>; errors: string }> {
    const o = await new Deno.Command("redis-benchmark", {
      args: ["-p", String(this.port), "--csv", ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = dec.decode(o.stdout), err = dec.decode(o.stderr);
    const rps: Record<string, number> = {};
    for (const line of out.split("\n")) {
      const f = line.split(",").map((x) => x.replace(/^"|"$/g, ""));
      if (f.length >= 2 && f[0] !== "test" && !isNaN(Number(f[1]))) rps[f[0]] = Number(f[1]);
    }
    const errors = o.code !== 0 || /error/i.test(out + err) || !Object.keys(rps).length
      ? `exit ${o.code}: ${out}${err}`.slice(0, 500)
      : "";
    return { rps, errors };
  }

  async stop(): Promise<void> {
    try {
      this.child.kill("SIGKILL");
    } catch { /* gone */ }
    await this.#done;
    Deno.removeSync(this.dir, { recursive: true });
  }
}
