/**
 * Deno.dlopen declarations for build/libbpftime.so, symbol for symbol with
 * csrc/include/bpftime.h. The library is opened on first use.
 */
import { libraryPath } from "./library_path.ts";

export const SYMBOLS = {
  bpftime_last_error: { parameters: [], result: "pointer" },
  bpftime_vm_create: { parameters: [], result: "pointer" },
  bpftime_vm_destroy: { parameters: ["pointer"], result: "void" },
  bpftime_vm_register_helper: {
    parameters: ["pointer", "u32", "buffer", "function"],
    result: "i32",
  },
  bpftime_vm_set_unwind_helper: { parameters: ["pointer", "u32"], result: "i32" },
  bpftime_builtin_helper: { parameters: ["buffer"], result: "pointer" },
  bpftime_vm_set_lddw_resolver: {
    parameters: ["pointer", "function", "pointer"],
    result: "void",
  },
  bpftime_vm_add_region: { parameters: ["pointer", "pointer", "u64"], result: "i32" },
  bpftime_vm_set_insn_budget: { parameters: ["pointer", "u64"], result: "void" },
  bpftime_vm_set_ctx_readonly: { parameters: ["pointer", "i32"], result: "void" },
  bpftime_vm_set_engine: { parameters: ["pointer", "buffer"], result: "i32" },
  bpftime_vm_engine: { parameters: ["pointer"], result: "pointer" },
  bpftime_vm_compile_ns: { parameters: ["pointer"], result: "u64" },
  bpftime_vm_load: { parameters: ["pointer", "buffer", "u64"], result: "i32" },
  bpftime_vm_exec: {
    parameters: ["pointer", "buffer", "u64", "buffer"],
    result: "i32",
  },
  bpftime_vm_exec_attached: {
    parameters: ["pointer", "buffer", "u64", "buffer", "buffer"],
    result: "i32",
  },
  bpftime_vm_time_exec: {
    parameters: ["pointer", "buffer", "u64", "u64", "buffer"],
    result: "f64",
  },
  bpftime_opcode_name: { parameters: ["u32"], result: "pointer" },
  bpftime_map_type_name: { parameters: ["u32"], result: "pointer" },
  bpftime_ifunc_target: { parameters: ["buffer", "buffer", "buffer"], result: "i32" },
  bpftime_vm_register_runtime: { parameters: ["pointer", "pointer"], result: "i32" },
  bpftime_ringbuf_info: { parameters: ["pointer", "u32", "buffer"], result: "i32" },
  bpftime_ringbuf_map: { parameters: ["pointer", "u32", "buffer"], result: "pointer" },
  bpftime_map_mmap_data: { parameters: ["pointer", "u32", "buffer"], result: "pointer" },
  bpftime_ringbuf_wait: {
    parameters: ["pointer", "u32", "i32"],
    result: "i32",
    nonblocking: true,
  },
  bpftime_perf_ring: {
    parameters: ["pointer", "u32", "u32", "buffer", "buffer"],
    result: "i32",
  },
  bpftime_prog_create: {
    parameters: ["pointer", "buffer", "u32", "buffer", "u64"],
    result: "i32",
  },
  bpftime_prog_code: { parameters: ["pointer", "u32", "buffer", "u64", "buffer"], result: "i64" },
  bpftime_link_create: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
  bpftime_link_info: { parameters: ["pointer", "u32", "buffer"], result: "i32" },
  bpftime_shm_open: { parameters: ["buffer", "u64", "u32"], result: "pointer" },
  bpftime_shm_open_as: {
    parameters: ["buffer", "u64", "u32", "buffer", "i32"],
    result: "pointer",
  },
  bpftime_shm_check: { parameters: ["pointer"], result: "i32" },
  bpftime_shm_close: { parameters: ["pointer"], result: "void" },
  bpftime_shm_remove: { parameters: ["buffer"], result: "i32" },
  bpftime_shm_stats: { parameters: ["pointer", "buffer"], result: "i32" },
  bpftime_object_at: { parameters: ["pointer", "u32", "buffer"], result: "i32" },
  bpftime_object_delete: { parameters: ["pointer", "u32"], result: "i32" },
  bpftime_objects_release: { parameters: ["pointer", "i32"], result: "i32" },
  bpftime_objects_release_dead: { parameters: ["pointer"], result: "i32" },
  bpftime_object_set_pinned: { parameters: ["pointer", "u32", "i32"], result: "i32" },
  bpftime_map_create: {
    parameters: ["pointer", "u32", "buffer", "u32", "u32", "u32", "u32", "u64", "u32"],
    result: "i32",
  },
  bpftime_kernel_map_create: { parameters: ["pointer", "u32"], result: "i32" },
  bpftime_kernel_output_prog: { parameters: ["u32"], result: "i32" },
  bpftime_map_values: { parameters: ["pointer", "u32", "buffer", "u32"], result: "i32" },
  bpftime_map_lookup_and_delete: {
    parameters: ["pointer", "u32", "buffer", "buffer"],
    result: "i32",
  },
  bpftime_map_info: { parameters: ["pointer", "u32", "buffer"], result: "i32" },
  bpftime_map_lookup: { parameters: ["pointer", "u32", "buffer", "buffer"], result: "i32" },
  bpftime_map_lookup_flags: {
    parameters: ["pointer", "u32", "buffer", "buffer", "u64"],
    result: "i32",
  },
  bpftime_map_set_spin_lock: { parameters: ["pointer", "u32", "u32"], result: "i32" },
  bpftime_map_update: {
    parameters: ["pointer", "u32", "buffer", "buffer", "u64"],
    result: "i32",
  },
  bpftime_map_delete: { parameters: ["pointer", "u32", "buffer"], result: "i32" },
  bpftime_map_get_next_key: {
    parameters: ["pointer", "u32", "buffer", "buffer"],
    result: "i32",
  },
} as const satisfies Deno.ForeignLibraryInterface;

export type BpftimeLib = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

let lib: BpftimeLib | undefined;

export function bpftime(): BpftimeLib {
  if (lib) return lib;
  const path = libraryPath("runtime");
  try {
    lib = Deno.dlopen(path, SYMBOLS).symbols;
  } catch (e) {
    throw new Error(
      `cannot load ${path}: ${(e as Error).message} (run 'make build' first)`,
    );
  }
  return lib;
}

/** The C side's message for the last failed call on this thread. */
export function lastError(): string {
  const p = bpftime().bpftime_last_error();
  return p ? Deno.UnsafePointerView.getCString(p) : "";
}

/** NUL-terminated UTF-8 for `char *` parameters. */
export function cString(s: string): Uint8Array<ArrayBuffer> {
  const bytes = new TextEncoder().encode(s);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

/** Base mnemonic the C instruction table gives an opcode, or null. */
export function cOpcodeName(opcode: number): string | null {
  const p = bpftime().bpftime_opcode_name(opcode);
  return p ? Deno.UnsafePointerView.getCString(p) : null;
}

/** libbpf's name the C map type table gives kernel map type `type`, or null when unsupported. */
export function cMapTypeName(type: number): string | null {
  const p = bpftime().bpftime_map_type_name(type);
  return p ? Deno.UnsafePointerView.getCString(p) : null;
}
