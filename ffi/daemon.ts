/** Where `bpftime daemon`'s process is: $BPFTIME_DAEMON, else build/bpftime-daemon of this checkout. */
export function daemonPath(): string {
  return Deno.env.get("BPFTIME_DAEMON") ||
    new URL("../build/bpftime-daemon", import.meta.url).pathname;
}
