/**
 * Resolves a uprobe's binary like libbpf: a path with a slash is used as is;
 * a library name (`libc.so.6`) is searched in LD_LIBRARY_PATH and the system
 * library directories; any other name in PATH.
 */
const LIB_DIRS = [
  "/lib/x86_64-linux-gnu",
  "/usr/lib/x86_64-linux-gnu",
  "/lib64",
  "/usr/lib64",
  "/lib",
  "/usr/lib",
  "/usr/local/lib",
];

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

export function resolveBinaryPath(name: string): string {
  if (name.includes("/")) {
    if (!isFile(name)) throw new Error(`uprobe target '${name}': no such file`);
    return Deno.realPathSync(name);
  }
  const env = (k: string) => (Deno.env.get(k) ?? "").split(":").filter(Boolean);
  const dirs = name.includes(".so") ? [...env("LD_LIBRARY_PATH"), ...LIB_DIRS] : env("PATH");
  for (const d of dirs) {
    if (isFile(`${d}/${name}`)) return Deno.realPathSync(`${d}/${name}`);
  }
  throw new Error(
    `uprobe target '${name}': not found in ${name.includes(".so") ? "the library path" : "PATH"}`,
  );
}
