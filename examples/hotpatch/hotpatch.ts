/**
 * Fixes examples/hotpatch/server.c while it runs: attaches bpf/hotpatch.bpf.c's replace program
 * to the server's lookup(), so an index outside the table gets a clean error instead of the
 * secret after it (or a crash). The server runs under `bpftime start`; the fix lasts until this
 * script ends (Ctrl-C).
 *
 *   bpftime start build/examples/hotpatch_server &
 *   deno run -A examples/hotpatch/hotpatch.ts build/examples/hotpatch_server
 */
import { BpfObject } from "../../mod.ts";

const server = Deno.args[0];
if (!server) {
  console.error("usage: hotpatch.ts SERVER_BINARY");
  Deno.exit(2);
}
const root = new URL("../../", import.meta.url).pathname;
using obj = BpfObject.open(`${root}build/bpf/hotpatch.bpf.o`);
obj.load();
// The section is `uprobe.replace`: attached here, at lookup's entry, it replaces lookup.
obj.program("checked_lookup").attachUprobe({ path: server, func: "lookup" });
console.log(`patched ${server}:lookup`);
const done = Promise.withResolvers<void>();
for (const sig of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(sig, () => done.resolve());
await done.promise;
console.log("unpatched");
