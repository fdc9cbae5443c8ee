/** Typed wrapper over the C VM: create, register helpers, load, run. */
import { bpftime, cString, lastError } from "./lib.ts";
import { ATTACH_INFO } from "./layout.ts";

/** Execution engines: the interpreter, our x86-64 JIT, and the LLVM tier. */
export type Engine = "interp" | "jit" | "llvm";
export const ENGINES: readonly Engine[] = ["interp", "jit", "llvm"];

/** A helper implemented in TypeScript: receives r1..r5, returns r0. */
export type HelperFn = (r1: bigint, r2: bigint, r3: bigint, r4: bigint, r5: bigint) => bigint;

/** A refusal or runtime fault reported by the VM; the message names the pc. */
export class VmError extends Error {
  override name = "VmError";
}

const HELPER_SIGNATURE = {
  parameters: ["u64", "u64", "u64", "u64", "u64"],
  result: "u64",
} as const;

const RESOLVER_SIGNATURE = {
  parameters: ["pointer", "u32", "u32", "u32", "pointer"],
  result: "i32",
} as const;

/**
 * Resolves a pseudo `lddw` (src 1 = map fd, 2 = map value, ...) to the 64-bit
 * value the program sees. Throw to refuse the program; the message is kept.
 */
export type LddwResolver = (src: number, imm: number, nextImm: number) => bigint;

const EINVAL = 22;

export interface VmOptions {
  /** Default: the C side's choice (JIT, or as BPFTIME_DISABLE_JIT / BPFTIME_VM_NAME say). */
  engine?: Engine;
  /** Maximum instructions per run (0 = unlimited). */
  instructionBudget?: number | bigint;
  /** Stores into the context fault, as for kprobe programs and their struct pt_regs. */
  readOnlyContext?: boolean;
}

export class Vm {
  #ptr: Deno.PointerValue;
  #callbacks: Deno.UnsafeCallback<typeof HELPER_SIGNATURE>[] = [];
  #resolver?: Deno.UnsafeCallback<typeof RESOLVER_SIGNATURE>;
  #resolverError = "";
  #regions: Uint8Array[] = [];
  #segment?: unknown; // kept alive while the VM may use its maps
  constructor(options: VmOptions = {}) {
    this.#ptr = bpftime().bpftime_vm_create();
    if (!this.#ptr) throw new VmError(lastError());
    if (options.engine !== undefined) {
      if (bpftime().bpftime_vm_set_engine(this.#ptr, cString(options.engine)) < 0) {
        const message = lastError();
        this.close();
        throw new VmError(message);
      }
    }
    if (options.instructionBudget !== undefined) {
      this.setInstructionBudget(options.instructionBudget);
    }
    if (options.readOnlyContext) bpftime().bpftime_vm_set_ctx_readonly(this.#ptr, 1);
  }

  /** The engine this VM runs programs with. */
  get engine(): Engine {
    return Deno.UnsafePointerView.getCString(bpftime().bpftime_vm_engine(this.#vm())!) as Engine;
  }

  /** Nanoseconds the JIT took to compile the loaded program (0 for the interpreter). */
  get compileNs(): number {
    return Number(bpftime().bpftime_vm_compile_ns(this.#vm()));
  }

  #vm(): Deno.PointerObject {
    if (!this.#ptr) throw new VmError("VM is closed");
    return this.#ptr;
  }

  /**
   * Registers helper `id`: a TypeScript function, a built-in C helper by name,
   * or a native function (SysV: five u64 arguments, u64 result).
   */
  registerHelper(
    id: number,
    name: string,
    fn: HelperFn | { builtin: string } | { native: Deno.PointerObject },
  ): void {
    let pointer: Deno.PointerValue;
    if ("native" in fn) {
      pointer = fn.native;
    } else if (typeof fn === "function") {
      const cb = new Deno.UnsafeCallback(HELPER_SIGNATURE, fn);
      this.#callbacks.push(cb);
      pointer = cb.pointer;
    } else {
      pointer = bpftime().bpftime_builtin_helper(cString(fn.builtin));
      if (!pointer) throw new VmError(lastError());
    }
    if (bpftime().bpftime_vm_register_helper(this.#vm(), id, cString(name), pointer) < 0) {
      throw new VmError(lastError());
    }
  }

  /**
   * Registers the kernel helpers the runtime implements (bpf_ktime_get_ns,
   * bpf_trace_printk, bpf_probe_read, ...) and, given a segment, the map helpers
   * and map references in `lddw` (map_fd ID, map_value ID+OFF).
   */
  useRuntime(segment?: { pointer: Deno.PointerObject }): void {
    if (bpftime().bpftime_vm_register_runtime(this.#vm(), segment?.pointer ?? null) < 0) {
      throw new VmError(lastError());
    }
    this.#segment = segment;
  }

  /** Marks helper `id` as unwind: when it returns 0 the program stops and returns 0. */
  setUnwindHelper(id: number): void {
    if (bpftime().bpftime_vm_set_unwind_helper(this.#vm(), id) < 0) {
      throw new VmError(lastError());
    }
  }

  /** Sets how pseudo `lddw` instructions are resolved when a program loads. */
  setLddwResolver(resolve: LddwResolver): void {
    this.#resolver?.close();
    this.#resolver = new Deno.UnsafeCallback(RESOLVER_SIGNATURE, (_ctx, src, imm, next, out) => {
      try {
        const value = resolve(src, imm, next);
        new BigUint64Array(Deno.UnsafePointerView.getArrayBuffer(out!, 8))[0] = BigInt.asUintN(
          64,
          value,
        );
        return 0;
      } catch (e) {
        this.#resolverError = (e as Error).message;
        return -EINVAL;
      }
    });
    bpftime().bpftime_vm_set_lddw_resolver(this.#vm(), this.#resolver.pointer, null);
  }

  /**
   * Lets the program load and store inside `memory` (as helpers' memory,
   * such as map values). The VM keeps a reference so it stays alive.
   */
  addRegion(memory: Uint8Array<ArrayBuffer>): void {
    const base = Deno.UnsafePointer.of(memory);
    if (bpftime().bpftime_vm_add_region(this.#vm(), base, BigInt(memory.byteLength)) < 0) {
      throw new VmError(lastError());
    }
    this.#regions.push(memory);
  }

  /** Address of a region's first byte as the program sees it. */
  static addressOf(memory: Uint8Array<ArrayBuffer>): bigint {
    return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(memory)));
  }

  setInstructionBudget(budget: number | bigint): void {
    bpftime().bpftime_vm_set_insn_budget(this.#vm(), BigInt(budget));
  }

  /** Validates and loads a program (raw instruction bytes). Throws VmError naming the pc. */
  load(code: Uint8Array): void {
    const copy = new Uint8Array(code);
    this.#resolverError = "";
    if (bpftime().bpftime_vm_load(this.#vm(), copy, BigInt(copy.length)) < 0) {
      const detail = this.#resolverError ? `: ${this.#resolverError}` : "";
      throw new VmError(lastError() + detail);
    }
  }

  /** Runs with r1 = mem, r2 = its length (0 and 0 without mem); returns r0. */
  exec(mem?: Uint8Array<ArrayBuffer>): bigint {
    const ret = new BigUint64Array(1);
    const rc = bpftime().bpftime_vm_exec(
      this.#vm(),
      mem ?? null,
      BigInt(mem?.length ?? 0),
      ret,
    );
    if (rc < 0) throw new VmError(lastError());
    return ret[0];
  }

  /** Runs as an attached probe: bpf_get_func_ip and bpf_get_attach_cookie see `attach`. */
  execAttached(
    mem: Uint8Array<ArrayBuffer> | undefined,
    attach: { funcIp: bigint; cookie: bigint },
  ): bigint {
    const ret = new BigUint64Array(1);
    const info = new Uint8Array(ATTACH_INFO.sizeof);
    const v = new DataView(info.buffer);
    v.setBigUint64(ATTACH_INFO.func_ip, attach.funcIp, true);
    v.setBigUint64(ATTACH_INFO.cookie, attach.cookie, true);
    const rc = bpftime().bpftime_vm_exec_attached(
      this.#vm(),
      mem ?? null,
      BigInt(mem?.length ?? 0),
      info,
      ret,
    );
    if (rc < 0) throw new VmError(lastError());
    return ret[0];
  }

  /** Runs `repeat` times inside C; returns mean ns per run and the last r0. */
  timeExec(mem: Uint8Array<ArrayBuffer> | undefined, repeat: number): { ns: number; r0: bigint } {
    const ret = new BigUint64Array(1);
    const ns = bpftime().bpftime_vm_time_exec(
      this.#vm(),
      mem ?? null,
      BigInt(mem?.length ?? 0),
      BigInt(repeat),
      ret,
    );
    if (ns < 0) throw new VmError(lastError());
    return { ns, r0: ret[0] };
  }

  close(): void {
    if (this.#ptr) bpftime().bpftime_vm_destroy(this.#ptr);
    this.#ptr = null;
    for (const cb of this.#callbacks) cb.close();
    this.#callbacks = [];
    this.#resolver?.close();
    this.#resolver = undefined;
    this.#regions = [];
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
