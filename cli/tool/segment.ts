/** `bpftime tool list | map dump | remove | export | import | run`: the shared-memory segment. */
import { Argument, type Command, Option } from "commander";
import {
  type Engine,
  type ExportedSegment,
  exportMap,
  exportSegment,
  importSegment,
  Segment,
  validateExport,
  Vm,
} from "../../mod.ts";
import { engineOption, integer, objectId } from "./options.ts";

function fail(message: string): never {
  console.error(`bpftime: ${message}`);
  Deno.exit(1);
}

function openSegment(create = false): Segment {
  try {
    return Segment.open(undefined, { create });
  } catch (e) {
    fail((e as Error).message);
  }
}

/** One line per object; a segment overwritten under us is an error, not a stack trace. */
function listObjects(seg: Segment): void {
  seg.check();
  for (const o of seg.objects()) {
    if (o.kind === "map") {
      const i = seg.map(o.id).info;
      console.log(
        `${o.id}\tmap\t${o.name}\t${i.typeName} key ${i.keySize} value ${i.valueSize} max_entries ${i.maxEntries}`,
      );
    } else if (o.kind === "prog") {
      console.log(
        `${o.id}\tprog\t${o.name}\t${seg.program(o.id).code.length / 8} instructions`,
      );
    } else {
      const l = seg.link(o.id);
      console.log(
        `${o.id}\tlink\t${o.name}\tprog ${l.progId} ${l.type} ${l.target}${
          l.type === "syscall_tracepoint" ? "" : `+0x${(l.offset ?? 0n).toString(16)}`
        }${l.pid === -1 ? "" : ` pid ${l.pid}`}`,
      );
    }
  }
}

export function registerSegment(tool: Command): void {
  tool.command("list")
    .description("list the maps and programs in the segment ($BPFTIME_GLOBAL_SHM_NAME)")
    .action(() => {
      using seg = openSegment();
      try {
        listObjects(seg);
      } catch (e) {
        fail((e as Error).message);
      }
    });

  tool.command("map")
    .description("map commands")
    .command("dump")
    .description("print a map and its entries as JSON")
    .addArgument(new Argument("<id>", "map id").argParser(objectId))
    .action((id: number) => {
      using seg = openSegment();
      try {
        console.log(JSON.stringify(exportMap(seg.map(id)), null, 2));
      } catch (e) {
        fail((e as Error).message);
      }
    });

  tool.command("remove")
    .description("delete the segment")
    .action(() => {
      try {
        Segment.remove();
      } catch (e) {
        fail((e as Error).message);
      }
    });

  tool.command("export")
    .description("write the whole segment (maps with contents, programs) to a JSON file")
    .argument("<file>", "output JSON file")
    .action(async (file: string) => {
      using seg = openSegment();
      await Deno.writeTextFile(file, JSON.stringify(exportSegment(seg), null, 2) + "\n");
    });

  tool.command("import")
    .description(
      "recreate the objects of an exported JSON file in the segment (created if missing)",
    )
    .argument("<file>", "JSON file written by `tool export`")
    .action(async (file: string) => {
      let data: ExportedSegment;
      try {
        // Checked whole before the segment is opened: a bad file changes nothing.
        data = validateExport(JSON.parse(await Deno.readTextFile(file)));
      } catch (e) {
        fail(`${file}: ${(e as Error).message}`);
      }
      using seg = openSegment(true);
      try {
        const ids = importSegment(seg, data);
        // Imported objects outlive this command (unpinned, they would go with their owner).
        for (const to of new Set(ids.values())) seg.setPinned(to, true);
        for (const [from, to] of ids) console.log(`${from} -> ${to}`);
      } catch (e) {
        fail(`${file}: ${(e as Error).message}`);
      }
    });

  tool.command("run")
    .description("run a stored program on the bytes of a data file; print r0 and the time per run")
    .addArgument(new Argument("<id>", "program id").argParser(objectId))
    .argument("<data-file>", "memory block for the program (r1, r2 = its length)")
    .addOption(
      new Option("--repeat <n>", "runs to time").argParser(integer(1, 1_000_000_000)).default(1),
    )
    .addOption(engineOption())
    .action(async (id: number, dataFile: string, opts: { repeat: number; vm?: Engine }) => {
      using seg = openSegment();
      try {
        const prog = seg.program(id);
        const data = await Deno.readFile(dataFile);
        using vm = new Vm({ engine: opts.vm });
        vm.useRuntime(seg);
        vm.load(prog.code);
        const { ns, r0 } = vm.timeExec(
          data.length ? data : undefined,
          opts.repeat,
        );
        console.log(`r0 = ${r0} (0x${r0.toString(16)})`);
        console.log(`${ns.toFixed(1)} ns per run over ${opts.repeat} run(s) on ${vm.engine}`);
      } catch (e) {
        fail((e as Error).message);
      }
    });
}
