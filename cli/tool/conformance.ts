/** `bpftime tool conformance [--vm ENGINE] PATH...` */
import type { Command } from "commander";
import pc from "picocolors";
import { type Engine, findDataFiles, parseDataFile, runCase } from "../../mod.ts";
import { engineOption } from "./options.ts";

export function registerConformance(tool: Command): void {
  tool.command("conformance")
    .description("run bpf_conformance .data files and report every failing case")
    .addOption(engineOption())
    .argument("<paths...>", ".data files or directories holding them")
    .action(async (paths: string[], opts: { vm?: Engine }) => {
      const files = await findDataFiles(paths);
      let passed = 0, failed = 0;
      for (const file of files) {
        const name = file.split("/").pop()!;
        let outcome;
        try {
          outcome = runCase(parseDataFile(name, await Deno.readTextFile(file)), opts.vm);
        } catch (e) {
          outcome = { name, passed: false, reason: (e as Error).message };
        }
        if (outcome.passed) passed++;
        else {
          failed++;
          console.log(`${pc.red("FAIL")} ${outcome.name}: ${outcome.reason}`);
        }
      }
      console.log(`${passed} passed, ${failed} failed`);
      if (failed > 0 || files.length === 0) Deno.exit(1);
    });
}
