/**
 * One direction of dependencies in csrc/ (docs: ARCHITECTURE.md, "One direction of
 * dependencies"): the VM, and the segment with its maps, each link on their own with the base
 * and libc; nothing low is compiled differently for the agent; each folder includes headers
 * only from the layers below it, and from vm/ only its interface headers.
 */
import assert from "node:assert/strict";

const ROOT = new URL("..", import.meta.url).pathname;
const CSRC = `${ROOT}csrc`;

/** Runs `make target` at the root; the Makefile's layering rules link with -Wl,--no-undefined. */
async function make(target: string): Promise<void> {
  const out = await new Deno.Command("make", {
    args: ["-s", "-C", ROOT, target],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, `make ${target} failed:\n${text}`);
}

/** Every source file under dir (recursively), as paths relative to csrc/. */
function sources(dir: string, rel = ""): string[] {
  const files: string[] = [];
  for (const e of Deno.readDirSync(`${dir}/${rel}`)) {
    const path = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory) files.push(...sources(dir, path));
    else if (/\.(c|h|S|def)$/.test(e.name)) files.push(path);
  }
  return files.sort();
}

/** The csrc/-relative path a quoted #include of `file` (csrc/-relative) names. */
function resolveInclude(file: string, included: string): string {
  const parts = file.split("/").slice(0, -1);
  for (const p of included.split("/")) {
    if (p === "..") parts.pop();
    else if (p !== ".") parts.push(p);
  }
  return parts.join("/");
}

/**
 * What each folder may include: whole folders, or single headers ("vm/vm_runtime.h": the
 * VM's API for runtime layers; "vm/llvm_tier.h": its tier interface). A folder's own headers
 * are always allowed. A new folder must be given its place here.
 */
const LOWER = ["base", "include"];
const ALLOWED: Record<string, string[]> = {
  include: [],
  base: ["include"],
  vm: LOWER,
  shm: LOWER,
  maps: [...LOWER, "shm"],
  helpers: [...LOWER, "vm/vm_runtime.h", "shm", "maps"],
  runtime: [...LOWER, "vm/vm_runtime.h", "shm", "maps", "helpers"],
  hook: LOWER,
  llvm: [...LOWER, "vm/llvm_tier.h"],
  agent: [...LOWER, "vm/vm_runtime.h", "shm", "maps", "helpers", "runtime", "hook"],
  server: [...LOWER, "shm", "maps", "runtime"],
  inject: LOWER,
  // The process tracer's kernel-mode loader: libbpf and bpf/proctrace.h, nothing of ours.
  proctrace: [],
  /* bpftime-daemon: libbpftime.so's public API, and the fd-passing protocol of kernel maps. */
  daemon: [...LOWER, "maps/kernel_map.h"],
};

Deno.test("layering: the VM links on its own with the base (-Wl,--no-undefined)", async () => {
  await make("build/layering/vm.so");
});

Deno.test("layering: the segment and maps link on their own with the base", async () => {
  await make("build/layering/shm_maps.so");
});

Deno.test("layering: nothing in vm/, shm/ or maps/ is compiled differently for the agent", () => {
  const found = ["vm", "shm", "maps"].flatMap((dir) =>
    sources(`${CSRC}/${dir}`).map((f) => `${dir}/${f}`)
  ).filter((f) => Deno.readTextFileSync(`${CSRC}/${f}`).includes("BPFTIME_AGENT"));
  assert.deepEqual(found, []);
  assert.ok(!Deno.readTextFileSync(`${ROOT}Makefile`).includes("-DBPFTIME_AGENT"));
});

Deno.test("layering: each folder includes only from the layers below it", () => {
  const wrong: string[] = [];
  for (const file of sources(CSRC)) {
    const folder = file.split("/")[0];
    const allowed = ALLOWED[folder];
    if (!allowed) {
      wrong.push(`${file}: folder '${folder}' has no place in the layering test's table`);
      continue;
    }
    const text = Deno.readTextFileSync(`${CSRC}/${file}`);
    for (const m of text.matchAll(/^\s*#\s*include\s+"([^"]+)"/gm)) {
      const target = resolveInclude(file, m[1]);
      const [to] = target.split("/");
      if (to === folder || allowed.includes(to) || allowed.includes(target)) continue;
      wrong.push(`${file} includes ${target}`);
    }
  }
  assert.deepEqual(wrong, []);
});

Deno.test("layering: only the process tracer's library links libbpf", async () => {
  await make("build/libbpftime-proctrace.so");
  const needed = async (lib: string) => {
    const out = await new Deno.Command("readelf", { args: ["-d", `${ROOT}build/${lib}`] }).output();
    return [...new TextDecoder().decode(out.stdout).matchAll(/\(NEEDED\).*\[(.+)\]/g)].map((m) =>
      m[1]
    );
  };
  assert.ok((await needed("libbpftime-proctrace.so")).some((n) => n.startsWith("libbpf.so")));
  for (const lib of ["libbpftime.so", "libbpftime-agent.so", "libbpftime-syscall-server.so"]) {
    assert.deepEqual((await needed(lib)).filter((n) => n.startsWith("libbpf")), [], lib);
  }
});
