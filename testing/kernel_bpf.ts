/**
 * The kernel's bpf(2), for differential tests and kernel mode: program load
 * and test runs. Attribute layouts follow include/uapi/linux/bpf.h.
 */

const libc = Deno.dlopen("libc.so.6", {
  syscall: { parameters: ["i64", "i64", "pointer", "u64"], result: "i64" },
  /* syscall(SYS_perf_event_open, attr, pid, cpu, group_fd, flags) */
  perf_event_open: {
    name: "syscall",
    parameters: ["i64", "pointer", "i64", "i64", "i64", "u64"],
    result: "i64",
  },
  __errno_location: { parameters: [], result: "pointer" },
  close: { parameters: ["i32"], result: "i32" },
  mmap: { parameters: ["pointer", "usize", "i32", "i32", "i32", "i64"], result: "pointer" },
  munmap: { parameters: ["pointer", "usize"], result: "i32" },
  ioctl: { parameters: ["i32", "u64", "u64"], result: "i32" },
});

const NR_BPF = 321; // x86-64
export const BPF_MAP_CREATE = 0;
export const BPF_MAP_LOOKUP_ELEM = 1;
export const BPF_MAP_UPDATE_ELEM = 2;
export const BPF_MAP_DELETE_ELEM = 3;
export const BPF_MAP_GET_NEXT_KEY = 4;
export const BPF_PROG_LOAD = 5;
export const BPF_MAP_LOOKUP_AND_DELETE_ELEM = 21;
export const BPF_PROG_TEST_RUN = 10;
export const BPF_PROG_TYPE_SYSCALL = 31;
export const BPF_F_SLEEPABLE = 1 << 4;

export class KernelBpfError extends Error {
  override name = "KernelBpfError";
  constructor(message: string, readonly errno: number) {
    super(message);
  }
}

function errno(): number {
  const p = libc.symbols.__errno_location();
  return new Int32Array(Deno.UnsafePointerView.getArrayBuffer(p!, 4))[0];
}

const addr = (buf: Uint8Array<ArrayBuffer>) =>
  BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf)));

function bpf(cmd: number, attr: Uint8Array<ArrayBuffer>): number {
  const rc = Number(
    libc.symbols.syscall(
      BigInt(NR_BPF),
      BigInt(cmd),
      Deno.UnsafePointer.of(attr),
      BigInt(attr.length),
    ),
  );
  return rc < 0 ? -errno() : rc;
}

export interface LoadedProgram {
  fd: number;
  close(): void;
}

/** Loads a program into the kernel; on refusal the error carries the verifier log. */
export function kernelProgLoad(
  type: number,
  code: Uint8Array,
  options: { license?: string; flags?: number } = {},
): LoadedProgram {
  const insns = new Uint8Array(code);
  const license = new TextEncoder().encode((options.license ?? "GPL") + "\0");
  const attempt = (log: Uint8Array<ArrayBuffer> | null) => {
    const attr = new Uint8Array(128);
    const v = new DataView(attr.buffer);
    v.setUint32(0, type, true);
    v.setUint32(4, insns.length / 8, true);
    v.setBigUint64(8, addr(insns), true);
    v.setBigUint64(16, addr(license), true);
    if (log) {
      v.setUint32(24, 1, true); // log_level
      v.setUint32(28, log.length, true);
      v.setBigUint64(32, addr(log), true);
    }
    v.setUint32(44, options.flags ?? 0, true);
    return bpf(BPF_PROG_LOAD, attr);
  };
  // Without a log first: a long log of an accepted program can itself fail the load (ENOSPC).
  let fd = attempt(null);
  if (fd < 0) {
    const log = new Uint8Array(1 << 20);
    fd = attempt(log);
    if (fd < 0) {
      const text = new TextDecoder().decode(log.subarray(0, log.indexOf(0))).trim();
      throw new KernelBpfError(`kernel refused the program (errno ${-fd}): ${text}`, -fd);
    }
  }
  return { fd, close: () => void libc.symbols.close(fd) };
}

/** BPF_PROG_TEST_RUN with a context buffer, which the kernel may write back. */
export function kernelTestRun(prog: LoadedProgram, ctx: Uint8Array<ArrayBuffer>): number {
  const attr = new Uint8Array(80);
  const v = new DataView(attr.buffer);
  v.setUint32(0, prog.fd, true);
  v.setUint32(40, ctx.length, true); // ctx_size_in
  v.setBigUint64(48, addr(ctx), true); // ctx_in
  const rc = bpf(BPF_PROG_TEST_RUN, attr);
  if (rc < 0) throw new KernelBpfError(`BPF_PROG_TEST_RUN failed (errno ${-rc})`, -rc);
  return v.getUint32(4, true); // retval
}

/** BPF_PROG_TEST_RUN with packet data (for program types that run on packets). */
export function kernelTestRunData(prog: LoadedProgram, data: Uint8Array<ArrayBuffer>): number {
  const attr = new Uint8Array(80);
  const v = new DataView(attr.buffer);
  v.setUint32(0, prog.fd, true);
  v.setUint32(8, data.length, true); // data_size_in
  v.setBigUint64(16, addr(data), true); // data_in
  const rc = bpf(BPF_PROG_TEST_RUN, attr);
  if (rc < 0) throw new KernelBpfError(`BPF_PROG_TEST_RUN failed (errno ${-rc})`, -rc);
  return v.getUint32(4, true);
}

/** Whether this process may load kernel eBPF programs (root, bpf(2) available). */
export function kernelBpfAvailable(): { ok: boolean; reason: string } {
  if (Deno.uid() !== 0) return { ok: false, reason: "needs root for kernel eBPF" };
  try {
    // mov r0, 0; exit
    const p = kernelProgLoad(
      BPF_PROG_TYPE_SYSCALL,
      new Uint8Array([0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]),
      { flags: BPF_F_SLEEPABLE },
    );
    p.close();
    return { ok: true, reason: "" };
  } catch (e) {
    return { ok: false, reason: `kernel eBPF unavailable: ${(e as Error).message}` };
  }
}

/** A kernel map through bpf(2), for differential tests and kernel mode. Calls return -errno. */
export class KernelMap {
  private constructor(readonly fd: number) {}

  static create(
    type: number,
    keySize: number,
    valueSize: number,
    maxEntries: number,
    flags = 0,
    name = "",
    mapExtra = 0n,
    innerMapFd = 0,
  ): KernelMap {
    const attr = new Uint8Array(72);
    const v = new DataView(attr.buffer);
    v.setUint32(0, type, true);
    v.setUint32(4, keySize, true);
    v.setUint32(8, valueSize, true);
    v.setUint32(12, maxEntries, true);
    v.setUint32(16, flags, true);
    v.setUint32(20, innerMapFd, true);
    attr.set(new TextEncoder().encode(name).subarray(0, 15), 28);
    v.setBigUint64(64, mapExtra, true);
    const fd = bpf(BPF_MAP_CREATE, attr);
    if (fd < 0) throw new KernelBpfError(`kernel map create failed (errno ${-fd})`, -fd);
    return new KernelMap(fd);
  }

  #elem(
    cmd: number,
    key: Uint8Array<ArrayBuffer> | null,
    value: Uint8Array<ArrayBuffer> | null,
    flags = 0n,
  ): number {
    const attr = new Uint8Array(32);
    const v = new DataView(attr.buffer);
    v.setUint32(0, this.fd, true);
    if (key) v.setBigUint64(8, addr(key), true);
    if (value) v.setBigUint64(16, addr(value), true);
    v.setBigUint64(24, flags, true);
    return bpf(cmd, attr);
  }

  lookup(key: Uint8Array<ArrayBuffer> | null, out: Uint8Array<ArrayBuffer>): number {
    return this.#elem(BPF_MAP_LOOKUP_ELEM, key, out);
  }
  update(
    key: Uint8Array<ArrayBuffer> | null,
    value: Uint8Array<ArrayBuffer>,
    flags: bigint,
  ): number {
    return this.#elem(BPF_MAP_UPDATE_ELEM, key, value, flags);
  }
  lookupAndDelete(key: Uint8Array<ArrayBuffer> | null, out: Uint8Array<ArrayBuffer>): number {
    return this.#elem(BPF_MAP_LOOKUP_AND_DELETE_ELEM, key, out);
  }
  delete(key: Uint8Array<ArrayBuffer>): number {
    return this.#elem(BPF_MAP_DELETE_ELEM, key, null);
  }
  nextKey(key: Uint8Array<ArrayBuffer> | null, out: Uint8Array<ArrayBuffer>): number {
    return this.#elem(BPF_MAP_GET_NEXT_KEY, key, out);
  }
  /** The map's kernel id (BPF_OBJ_GET_INFO_BY_FD: struct bpf_map_info's id). */
  id(): number {
    const info = new Uint8Array(96);
    const attr = new Uint8Array(16);
    const v = new DataView(attr.buffer);
    v.setUint32(0, this.fd, true);
    v.setUint32(4, info.length, true);
    v.setBigUint64(8, addr(info), true);
    const rc = bpf(15, attr);
    if (rc < 0) throw new KernelBpfError(`BPF_OBJ_GET_INFO_BY_FD failed (errno ${-rc})`, -rc);
    return new DataView(info.buffer).getUint32(4, true);
  }
  close(): void {
    libc.symbols.close(this.fd);
  }
}

/**
 * Reads the records of a kernel ring buffer map through its mmap (consumer
 * page read-write, producer page and doubly mapped data read-only).
 */
export function kernelRingRecords(map: KernelMap, size: number): Uint8Array[] {
  const PROT_READ = 1, PROT_WRITE = 2, MAP_SHARED = 1, PAGE = 4096;
  const cons = libc.symbols.mmap(
    null,
    BigInt(PAGE),
    PROT_READ | PROT_WRITE,
    MAP_SHARED,
    map.fd,
    0n,
  );
  const prod = libc.symbols.mmap(
    null,
    BigInt(PAGE + 2 * size),
    PROT_READ,
    MAP_SHARED,
    map.fd,
    BigInt(PAGE),
  );
  if (
    !cons || !prod || Deno.UnsafePointer.value(cons) === -1n ||
    Deno.UnsafePointer.value(prod) === -1n
  ) {
    throw new KernelBpfError(`mmap of the kernel ring buffer failed (errno ${errno()})`, errno());
  }
  const consumer = new DataView(Deno.UnsafePointerView.getArrayBuffer(cons, PAGE));
  const producer = new DataView(Deno.UnsafePointerView.getArrayBuffer(prod, PAGE + 2 * size));
  const records: Uint8Array[] = [];
  let pos = consumer.getBigUint64(0, true);
  const end = producer.getBigUint64(0, true);
  while (pos < end) {
    const at = PAGE + Number(pos % BigInt(size));
    const len = producer.getUint32(at, true);
    if (len & 0x80000000) break;
    const bytes = len & 0x3fffffff;
    if (!(len & 0x40000000)) {
      records.push(new Uint8Array(producer.buffer.slice(at + 8, at + 8 + bytes)));
    }
    pos += BigInt((bytes + 8 + 7) & ~7);
  }
  consumer.setBigUint64(0, pos, true);
  return records;
}

/** A kernel perf event of type bpf-output on one CPU, mapped, for perf event arrays. */
export class KernelPerfOutput {
  private constructor(
    readonly fd: number,
    readonly page: Deno.PointerObject,
    readonly bytes: number,
  ) {}

  /** dataPages must be a power of two (the kernel's rule). */
  static open(cpu: number, dataPages = 16): KernelPerfOutput {
    const attr = new Uint8Array(128);
    const v = new DataView(attr.buffer);
    v.setUint32(0, 1, true); // PERF_TYPE_SOFTWARE
    v.setUint32(4, attr.length, true);
    v.setBigUint64(8, 10n, true); // PERF_COUNT_SW_BPF_OUTPUT
    v.setBigUint64(16, 1n, true); // sample_period
    v.setBigUint64(24, 1n << 10n, true); // PERF_SAMPLE_RAW
    v.setUint32(48, 1, true); // wakeup_events
    const fd = Number(
      libc.symbols.perf_event_open(298n, Deno.UnsafePointer.of(attr), -1n, BigInt(cpu), -1n, 8n),
    );
    if (fd < 0) throw new KernelBpfError(`perf_event_open failed (errno ${errno()})`, errno());
    const bytes = (1 + dataPages) * 4096;
    const page = libc.symbols.mmap(null, BigInt(bytes), 3, 1, fd, 0n);
    if (!page || Deno.UnsafePointer.value(page) === BigInt.asUintN(64, -1n)) {
      libc.symbols.close(fd);
      throw new KernelBpfError(`mmap of the perf ring failed (errno ${errno()})`, errno());
    }
    libc.symbols.ioctl(fd, 0x2400n, 0n); // PERF_EVENT_IOC_ENABLE
    return new KernelPerfOutput(fd, page, bytes);
  }

  /** The raw data of the PERF_RECORD_SAMPLEs in the ring (padding included, as the kernel sizes it). */
  samples(): Uint8Array[] {
    const view = new DataView(Deno.UnsafePointerView.getArrayBuffer(this.page, this.bytes));
    const head = view.getBigUint64(1024, true), size = this.bytes - 4096;
    const out: Uint8Array[] = [];
    for (let tail = view.getBigUint64(1032, true); tail < head;) {
      const at = Number(tail % BigInt(size));
      const rec = new Uint8Array(view.getUint16(4096 + at + 6, true));
      for (let i = 0; i < rec.length; i++) rec[i] = view.getUint8(4096 + ((at + i) % size));
      const rv = new DataView(rec.buffer);
      if (rv.getUint32(0, true) === 9) out.push(rec.slice(12, 12 + rv.getUint32(8, true)));
      tail += BigInt(rec.length);
    }
    return out;
  }

  close(): void {
    libc.symbols.munmap(this.page, BigInt(this.bytes));
    libc.symbols.close(this.fd);
  }
}

/**
 * A kernel uprobe (perf event, no program) at `offset` in `path`, in process `pid` only (-1:
 * every process mapping the file; counted on CPU 0): the kernel writes its int3 into their copy
 * of the code, as another tool tracing the same function would. Needs root. Closing it removes
 * the probe.
 */
export class KernelUprobe {
  private constructor(readonly fd: number) {}

  static open(path: string, offset: bigint, pid: number): KernelUprobe {
    const type = Number(Deno.readTextFileSync("/sys/bus/event_source/devices/uprobe/type").trim());
    const name = new TextEncoder().encode(path + "\0");
    const attr = new Uint8Array(128);
    const v = new DataView(attr.buffer);
    v.setUint32(0, type, true);
    v.setUint32(4, 112, true); // PERF_ATTR_SIZE_VER5
    v.setBigUint64(16, 1n, true); // sample_period
    v.setBigUint64(56, addr(name), true); // config1: uprobe_path
    v.setBigUint64(64, offset, true); // config2: probe_offset
    const fd = Number(
      libc.symbols.perf_event_open(
        298n,
        Deno.UnsafePointer.of(attr),
        BigInt(pid),
        pid < 0 ? 0n : -1n,
        -1n,
        8n,
      ),
    );
    if (fd < 0) {
      throw new KernelBpfError(`perf_event_open (uprobe) failed (errno ${errno()})`, errno());
    }
    return new KernelUprobe(fd);
  }

  close(): void {
    libc.symbols.close(this.fd);
  }
}
