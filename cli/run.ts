/**
 * `bpftime run OBJ.bpf.o [--dump-maps SECONDS]`: load an object into the
 * segment and attach it; until Ctrl-C or SIGTERM, optionally print every map
 * as JSON lines; then remove its links, programs and maps.
 */
import { Command } from "commander";
import { BpfObject } from "../lib/object/bpf_object.ts";
import { exportMap } from "../lib/maps/export.ts";

/** One JSON line per map: its entries with keys and values in hex, as `tool export` writes them. */
function dumpMaps(obj: BpfObject): void {
  const time = new Date().toISOString();
  for (const def of obj.mapDefs) {
    const { entries } = exportMap(obj.map(def.name));
    console.log(JSON.stringify({ time, map: def.name, entries }));
  }
}

export function registerRun(program: Command): void {
  program.command("run")
    .description("load an eBPF object into the segment and attach its programs until interrupted")
    .argument("<object>", "clang-compiled eBPF object (.bpf.o)")
    .option("--dump-maps <seconds>", "print every map as JSON lines at this interval")
    .option("--pid <pid>", "attach to this process only")
    .action(async (path: string, opts: { dumpMaps?: string; pid?: string }) => {
      let obj: BpfObject;
      try {
        obj = BpfObject.open(path);
        obj.load();
        for (const link of obj.attach({ pid: opts.pid ? Number(opts.pid) : undefined })) {
          console.error(`attached: ${link.description}`);
        }
      } catch (e) {
        console.error(`bpftime run: ${(e as Error).message}`);
        Deno.exit(1);
      }
      console.error(
        "trace_printk output appears on each traced process's stderr ($BPFTIME_LOG_OUTPUT)",
      );
      const { promise: stopped, resolve: stop } = Promise.withResolvers<void>();
      Deno.addSignalListener("SIGINT", stop);
      Deno.addSignalListener("SIGTERM", stop);
      const every = opts.dumpMaps ? Number(opts.dumpMaps) * 1000 : 0;
      const timer = every > 0 ? setInterval(() => dumpMaps(obj), every) : undefined;
      await stopped;
      clearInterval(timer);
      obj.close();
      console.error("detached and removed");
      Deno.exit(0);
    });
}
