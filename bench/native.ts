/** The native build of the benchmark workloads (build/bench/libnative.so). */

const SYMBOLS = {
  native_time: { parameters: ["buffer", "buffer", "u64", "u64", "buffer"], result: "f64" },
  native_helper_address: { parameters: [], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

export class NativeWorkloads {
  #lib = Deno.dlopen(new URL("../build/bench/libnative.so", import.meta.url).pathname, SYMBOLS);

  /** Mean ns per call of the native workload and its result. */
  time(name: string, mem: Uint8Array<ArrayBuffer> | undefined, repeat: number) {
    const ret = new BigUint64Array(1);
    const ns = this.#lib.symbols.native_time(
      new TextEncoder().encode(name + "\0"),
      mem ?? null,
      BigInt(mem?.length ?? 0),
      BigInt(repeat),
      ret,
    );
    if (ns < 0) throw new Error(`no native workload '${name}'`);
    return { ns, r0: ret[0] };
  }

  /** The C function the helper_calls workload calls (registered in the VM as helper 1). */
  helperAddress(): Deno.PointerObject {
    return this.#lib.symbols.native_helper_address()!;
  }

  close(): void {
    this.#lib.close();
  }
}
