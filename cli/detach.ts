/**
 * `bpftime detach [PID]`: with PID, tells that process's agent to remove
 * all its hooks (it stays unhooked); without, removes every uprobe and
 * uretprobe link from the segment, which unhooks every traced process.
 */
import { Argument, Command } from "commander";
import { LIBRARIES, Segment } from "../mod.ts";
import { processId } from "./tool/options.ts";

function alive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

function hasAgent(pid: number): boolean {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/maps`).includes(LIBRARIES.agent.file);
  } catch {
    return false;
  }
}

export function registerDetach(program: Command): void {
  program.command("detach")
    .description("remove hooks: from process PID, or every uprobe link in the segment")
    .addArgument(new Argument("[pid]", "a process started with the agent").argParser(processId))
    .action((pid?: number) => {
      let seg: Segment;
      try {
        seg = Segment.open();
      } catch (e) {
        console.error(`bpftime detach: ${(e as Error).message}`);
        Deno.exit(1);
      }
      try {
        // Requests for processes that are gone are no longer needed.
        for (const o of seg.objects().filter((x) => x.kind === "link")) {
          const spec = seg.link(o.id);
          if (spec.type === "detach" && !alive(spec.pid!)) seg.deleteObject(o.id);
        }
        if (pid !== undefined) {
          if (!alive(pid)) throw new Error(`no process ${pid}`);
          if (!hasAgent(pid)) throw new Error(`process ${pid} does not run the bpftime agent`);
          const id = seg.createLink(`detach:${pid}`, {
            progId: 0,
            type: "detach",
            target: "",
            pid,
          });
          seg.setPinned(id, true); // outlives this command; removed once the process is gone

          console.log(`asked process ${pid} to remove its hooks`);
          return;
        }
        let n = 0;
        for (const o of seg.objects().filter((x) => x.kind === "link")) {
          const spec = seg.link(o.id);
          if (spec.type !== "uprobe" && spec.type !== "uretprobe") continue;
          seg.deleteObject(o.id);
          console.log(
            `removed link ${o.id}: ${spec.type} ${spec.target}+0x${spec.offset!.toString(16)}`,
          );
          n++;
        }
        console.log(`${n} link(s) removed`);
      } catch (e) {
        console.error(`bpftime detach: ${(e as Error).message}`);
        Deno.exit(1);
      } finally {
        seg.close();
      }
    });
}
