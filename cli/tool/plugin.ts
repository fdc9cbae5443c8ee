/**
 * `bpftime tool plugin [--vm ENGINE] [MEM_HEX...]`: the bpf_conformance plugin
 * protocol. Program bytes as hex on stdin, memory as hex arguments; prints r0
 * in hex, or exits non-zero with the reason on stderr.
 */
import type { Command } from "commander";
import { type Engine, parseHexBytes, parseProgramText, runProgram } from "../../mod.ts";
import { engineOption } from "./options.ts";

async function readStdin(): Promise<string> {
  return await new Response(Deno.stdin.readable).text();
}

export function registerPlugin(tool: Command): void {
  tool.command("plugin")
    .description("run one program the bpf_conformance way (program hex on stdin)")
    .addOption(engineOption())
    .argument("[mem...]", "memory block as hex bytes")
    .action(async (mem: string[], opts: { vm?: Engine }) => {
      try {
        const code = parseProgramText(await readStdin());
        const block = mem.length > 0 ? parseHexBytes(mem.join(" ")) : undefined;
        const r0 = runProgram(opts.vm, code, block);
        console.log(r0.toString(16));
      } catch (e) {
        console.error(`bpftime plugin: ${(e as Error).message}`);
        Deno.exit(1);
      }
    });
}
