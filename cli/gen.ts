/**
 * `bpftime gen tracepoint CONFIG.json [-o DIR] [--name NAME] [--tracefs DIR]`: from a config
 * such as [{"tracepoint": "syscalls:sys_enter_openat", "attributes": ["filename", "flags"]}],
 * writes NAME.bpf.c (the eBPF program), NAME.bpf.o (it compiled by clang) and NAME.ts (event
 * types, decoder, a ready collector), field types and offsets read from tracefs formats.
 */
import { Command } from "commander";
import {
  generateTracepointC,
  generateTracepointTs,
  parseTracefsFormat,
  parseTracepointConfig,
  type TracepointFormat,
} from "../mod.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const DEFAULT_TRACEFS = "/sys/kernel/tracing";

function fail(message: string): never {
  console.error(`bpftime gen tracepoint: ${message}`);
  Deno.exit(1);
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** The tracefs root, mounted at the default place when it is not there and we may. */
async function tracefsRoot(given?: string): Promise<string> {
  const root = given ?? DEFAULT_TRACEFS;
  if (exists(`${root}/events`)) return root;
  if (!given && Deno.uid() === 0) {
    await new Deno.Command("mount", { args: ["-t", "tracefs", "nodev", root], stderr: "null" })
      .output();
    if (exists(`${root}/events`)) return root;
  }
  fail(
    `tracefs not found at ${root} (no ${root}/events): mount it with 'mount -t tracefs nodev ${DEFAULT_TRACEFS}'`,
  );
}

function readFormat(root: string, tracepoint: string): TracepointFormat {
  const [category, name] = tracepoint.split(":");
  const path = `${root}/events/${category}/${name}/format`;
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) fail(`unknown tracepoint '${tracepoint}' (no ${path})`);
    if (e instanceof Deno.errors.PermissionDenied) fail(`cannot read ${path}: run as root`);
    throw e;
  }
  return parseTracefsFormat(text, path);
}

async function gen(configPath: string, opts: { output?: string; name?: string; tracefs?: string }) {
  let text: string;
  try {
    text = Deno.readTextFileSync(configPath);
  } catch (e) {
    fail(`cannot read ${configPath}: ${(e as Error).message}`);
  }
  const dir = opts.output ?? (configPath.includes("/") ? configPath.replace(/\/[^/]*$/, "") : ".");
  const name = opts.name ?? configPath.replace(/^.*\//, "").replace(/\.json$/, "");
  if (!/^[A-Za-z_][\w-]*$/.test(name)) {
    fail(`'${name}' cannot name the generated files (use --name)`);
  }
  let c: string, ts: string;
  try {
    const configs = parseTracepointConfig(text, configPath);
    const root = await tracefsRoot(opts.tracefs);
    const formats = new Map(configs.map((t) => [t.tracepoint, readFormat(root, t.tracepoint)]));
    c = generateTracepointC(configs, formats, configPath);
    ts = generateTracepointTs(
      configs,
      formats,
      configPath,
      `${name}.bpf.o`,
      new URL("../mod.ts", import.meta.url).href,
    );
  } catch (e) {
    fail((e as Error).message);
  }
  Deno.mkdirSync(dir, { recursive: true });
  Deno.writeTextFileSync(`${dir}/${name}.bpf.c`, c);
  Deno.writeTextFileSync(`${dir}/${name}.ts`, ts);
  if (!exists(`${ROOT}build/vmlinux.h`)) {
    fail(`${ROOT}build/vmlinux.h is missing: run 'make build'`);
  }
  const cc = await new Deno.Command("clang-14", {
    args: [
      "-target",
      "bpf",
      "-O2",
      "-g",
      `-I${ROOT}build`,
      "-c",
      `${dir}/${name}.bpf.c`,
      "-o",
      `${dir}/${name}.bpf.o`,
    ],
    stderr: "piped",
  }).output().catch((e) => fail(`cannot run clang-14: ${(e as Error).message}`));
  if (cc.code !== 0) {
    fail(`clang-14 failed on ${dir}/${name}.bpf.c:\n${new TextDecoder().decode(cc.stderr)}`);
  }
  console.log(`wrote ${dir}/${name}.bpf.c, ${dir}/${name}.bpf.o, ${dir}/${name}.ts`);
}

export function registerGen(program: Command): void {
  const g = program.command("gen").description("generate code").showHelpAfterError();
  g.command("tracepoint")
    .description(
      "eBPF C, TypeScript event types and a collector for tracepoints named in a JSON config",
    )
    .argument("<config>", 'JSON: [{"tracepoint": "category:name", "attributes": ["field", ...]}]')
    .option("-o, --output <dir>", "where to write (default: the config's directory)")
    .option("--name <name>", "base name of the files (default: the config's)")
    .option("--tracefs <dir>", `tracefs root (default ${DEFAULT_TRACEFS})`)
    .action((config: string, opts: { output?: string; name?: string; tracefs?: string }) =>
      gen(config, opts)
    );
}
