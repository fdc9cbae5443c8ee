/**
 * The one library-path lookup: where each shared library of ours is, from its
 * environment variable (unset or empty: the build/ directory of this checkout).
 */

export const LIBRARIES = {
  /** The runtime the FFI bindings open. */
  runtime: { file: "libbpftime.so", env: "BPFTIME_LIB" },
  /** Preloaded into traced processes (`bpftime start`). */
  agent: { file: "libbpftime-agent.so", env: "AGENT_SO" },
  /** Preloaded into libbpf applications (`bpftime load`). */
  syscallServer: { file: "libbpftime-syscall-server.so", env: "SERVER_SO" },
  /** The process tracer's kernel-mode loader (libbpf), opened only by ffi/proctrace.ts. */
  proctrace: { file: "libbpftime-proctrace.so", env: "PROCTRACE_SO" },
} as const;

export type LibraryName = keyof typeof LIBRARIES;

/** Path of library `name`: $<its variable>, else build/<its file> of this checkout. */
export function libraryPath(name: LibraryName): string {
  const { file, env } = LIBRARIES[name];
  return Deno.env.get(env) || new URL(`../build/${file}`, import.meta.url).pathname;
}
