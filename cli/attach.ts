/**
 * `bpftime attach [--] PID`: loads the agent into a running process (ptrace, through
 * build/bpftime-inject); from then on it follows the segment as under `bpftime start`.
 */
import { Argument, Command } from "commander";
import { injectAgent, LIBRARIES, libraryPath, Segment } from "../mod.ts";
import { processId } from "./tool/options.ts";

function fail(message: string): never {
  console.error(`bpftime attach: ${message}`);
  Deno.exit(1);
}

/** Removes `bpftime detach PID`'s requests for `pid`: its agent follows the links again. */
function rearm(pid: number): string {
  let seg: Segment;
  try {
    seg = Segment.open();
  } catch {
    return "";
  }
  try {
    let n = 0;
    for (const o of seg.objects().filter((x) => x.kind === "link")) {
      const spec = seg.link(o.id);
      if (spec.type === "detach" && spec.pid === pid) {
        seg.deleteObject(o.id);
        n++;
      }
    }
    return n ? "; its hooks are re-armed (it had been detached)" : "";
  } finally {
    seg.close();
  }
}

export function registerAttach(program: Command): void {
  program.command("attach")
    .description("load the bpftime agent into running process PID (ptrace)")
    .addArgument(new Argument("<pid>", "a running process").argParser(processId))
    .action((pid: number) => {
      try {
        Deno.statSync(`/proc/${pid}`);
      } catch {
        fail(`no process ${pid}`);
      }
      let maps: string | undefined;
      try {
        maps = Deno.readTextFileSync(`/proc/${pid}/maps`);
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) fail(`no process ${pid}`);
        // Unreadable: not ours to trace; the injector says why, before anything is done.
      }
      if (maps?.includes(`/${LIBRARIES.agent.file}`)) {
        console.log(`process ${pid} already runs the bpftime agent${rearm(pid)}`);
        return;
      }
      // The segment first: the agent is not loaded to follow a segment that is not there.
      let name = Deno.env.get("BPFTIME_GLOBAL_SHM_NAME") || "bpftime_maps_shm";
      if (maps !== undefined) {
        try {
          const seg = Segment.open();
          name = seg.name;
          seg.close();
        } catch (e) {
          fail(`${(e as Error).message} (load a program first: bpftime load / bpftime run)`);
        }
      }
      let agent = libraryPath("agent");
      try {
        agent = Deno.realPathSync(agent);
      } catch (e) {
        fail(`the agent ${agent}: ${(e as Error).message}`);
      }
      const r = injectAgent(pid, agent, name);
      if (r.outcome === "failed") {
        console.error(r.message || `bpftime attach: cannot load the agent into process ${pid}`);
        Deno.exit(1);
      }
      console.log(r.message);
    });
}
