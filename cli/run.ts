/**
 * `bpftime run OBJ.bpf.o [--dump-maps SECONDS]`: load an object into the
 * segment and attach it; until Ctrl-C or SIGTERM, print the trace_printk
 * lines of every traced process and, optionally, every map as JSON lines;
 * then remove its links, programs and maps.
 */
import { Command, Option } from "commander";
import { BpfObject, exportMap, RingBuffer, Segment } from "../mod.ts";
import { processId, seconds } from "./tool/options.ts";

/** One JSON line per map: its entries with keys and values in hex, as `tool export` writes them. */
function dumpMaps(obj: BpfObject): void {
  const time = new Date().toISOString();
  for (const def of obj.mapDefs) {
    const { entries } = exportMap(obj.map(def.name));
    console.log(JSON.stringify({ time, map: def.name, entries }));
  }
}

const TRACE_RING = "trace_printk";

/*
 * The ring buffer agents write trace_printk lines to (see trace_helpers.c).
 * It stays in the segment (pinned): a traced process may be writing to it at any time.
 */
function traceRing(seg: Segment): RingBuffer {
  const found = seg.objects().find((o) => o.kind === "map" && o.name === TRACE_RING);
  let id = found?.id;
  if (id === undefined) {
    id = seg.createMap({
      type: "ringbuf",
      name: TRACE_RING,
      keySize: 0,
      valueSize: 0,
      maxEntries: 256 * 1024,
    }).id;
    seg.setPinned(id, true);
  }
  return new RingBuffer(seg, id);
}

/** Why the segment can no longer be used (truncated or overwritten), or undefined. */
function damaged(seg: Segment): string | undefined {
  try {
    seg.check();
  } catch (e) {
    return (e as Error).message;
  }
}

export function registerRun(program: Command): void {
  program.command("run")
    .description("load an eBPF object into the segment and attach its programs until interrupted")
    .argument("<object>", "clang-compiled eBPF object (.bpf.o)")
    .addOption(
      new Option("--dump-maps <seconds>", "print every map as JSON lines at this interval")
        .argParser(seconds(86400)),
    )
    .addOption(new Option("--pid <pid>", "attach to this process only").argParser(processId))
    .action(async (path: string, opts: { dumpMaps?: number; pid?: number }) => {
      let obj: BpfObject;
      try {
        obj = BpfObject.open(path);
        // Its objects are not pinned: they die with this process, even killed (agents and the
        // next loader remove the objects of owners that are gone).
        obj.load();
        obj.loadedSegment("run").releaseDeadOwners();
        for (const link of obj.attach({ pid: opts.pid })) {
          console.error(`attached: ${link.description}`);
        }
      } catch (e) {
        console.error(`bpftime run: ${(e as Error).message}`);
        Deno.exit(1);
      }
      const seg = obj.loadedSegment("run");
      const ring = traceRing(seg);
      let running = true;
      const quit = () => (running = false);
      Deno.addSignalListener("SIGINT", quit);
      Deno.addSignalListener("SIGTERM", quit);
      const every = opts.dumpMaps ? opts.dumpMaps * 1000 : 0;
      let broken: string | undefined;
      const timer = every > 0
        ? setInterval(() => {
          broken ??= damaged(seg);
          if (!broken) dumpMaps(obj);
        }, every)
        : undefined;
      const print = (record: Uint8Array) => Deno.stdout.writeSync(record.slice());
      // trace_printk lines of every traced process, as they come (the wait sleeps on a futex).
      // Each wait ends within 200 ms and is never abandoned: exiting while the FFI thread
      // still waits inside the library would crash the process on its way out.
      // The segment is checked before every read of it: a segment truncated or overwritten under
      // us ends the loader with a message, never with SIGBUS or a crash.
      while (running && !(broken ??= damaged(seg))) {
        ring.consume(print);
        await ring.wait(200);
      }
      if (broken) {
        clearInterval(timer);
        console.error(`bpftime run: ${broken}; exiting (nothing removed)`);
        Deno.exit(1);
      }
      ring.consume(print);
      clearInterval(timer);
      obj.close();
      console.error("detached and removed");
      Deno.exit(0);
    });
}
