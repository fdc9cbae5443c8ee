/** `bpftime tool asm FILE` and `bpftime tool disasm FILE`. */
import type { Command } from "commander";
import {
  assemble,
  codeSections,
  disassemble,
  isElf,
  looksLikeHex,
  parseDataFile,
  parseProgramText,
  toWords,
} from "../../mod.ts";

function fail(message: string): never {
  console.error(`bpftime: ${message}`);
  Deno.exit(1);
}

export function registerAsm(tool: Command): void {
  tool.command("asm")
    .description("assemble a program; prints one 64-bit instruction word per line")
    .argument("<file>", "assembly source")
    .option("-o, --output <file>", "write the raw instruction bytes to FILE instead")
    .action(async (file: string, opts: { output?: string }) => {
      let code: Uint8Array;
      try {
        const text = await Deno.readTextFile(file);
        // A conformance .data file: assemble its asm section.
        const source = text.includes("-- asm") ? parseDataFile(file, text).asm : text;
        code = assemble(source);
      } catch (e) {
        fail(`${file}: ${(e as Error).message}`);
      }
      if (opts.output) await Deno.writeFile(opts.output, code);
      else {
        for (const w of toWords(code)) console.log(`0x${w.toString(16).padStart(16, "0")}`);
      }
    });

  tool.command("disasm")
    .description("disassemble raw bytes, hex text, or the code sections of an eBPF ELF object")
    .argument("<file>", "program file")
    .action(async (file: string) => {
      let bytes: Uint8Array;
      try {
        bytes = await Deno.readFile(file);
      } catch (e) {
        fail(`${file}: ${(e as Error).message}`);
      }
      try {
        if (isElf(bytes)) {
          for (const s of codeSections(bytes, file)) {
            console.log(`${s.name}:`);
            console.log(disassemble(s.data).split("\n").map((l) => `  ${l}`).join("\n"));
          }
          return;
        }
        const text = new TextDecoder().decode(bytes);
        console.log(disassemble(looksLikeHex(text) ? parseProgramText(text) : bytes));
      } catch (e) {
        fail(`${file}: ${(e as Error).message}`);
      }
    });
}
