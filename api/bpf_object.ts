/**
 * BpfObject: open a clang-compiled eBPF object, load its maps and programs
 * into a segment, and attach them (uprobes become links that the agents in
 * traced processes install), in the manner of libbpf's bpf_object API.
 *
 * ```ts
 * using obj = BpfObject.open("build/bpf/malloc.bpf.o");
 * obj.load();
 * obj.attach();
 * const counts = obj.map("libc_malloc_calls_total");
 * ```
 */
import { Btf, BTF_KIND } from "../lib/btf/btf.ts";
import { parseCoreRelos } from "../lib/btf/btf_ext.ts";
import { CoreResolver } from "../lib/btf/core.ts";
import { ElfError } from "../lib/elf/sections.ts";
import { paddingAt } from "../lib/elf/padding.ts";
import {
  fileOffsetOfAddress,
  functionSymbols,
  resolveFunction,
  STT_GNU_IFUNC,
} from "../lib/elf/symbols.ts";
import { ifuncTarget } from "../ffi/ifunc.ts";
import { LinkError, SegmentError } from "../ffi/errors.ts";
import { BpfMap, Segment } from "../ffi/shm.ts";
import { Vm } from "../ffi/vm.ts";
import { readRelocatable, RelocatableElf, STT_FUNC } from "../lib/object/elf_relocatable.ts";
import { linkProgram } from "../lib/object/link_code.ts";
import { MapDef, readMapDefs, symbolOffset } from "../lib/object/map_defs.ts";
import { AttachSpec, parseSection } from "../lib/object/section_names.ts";
import { resolveBinaryPath } from "../lib/object/resolve_path.ts";
import { findUsdtSites } from "../lib/elf/usdt_notes.ts";
import { encodeUsdtSpec, parseUsdtArgs } from "../lib/object/usdt_spec.ts";
import { kconfigValue } from "../lib/object/kconfig.ts";
import { possibleCpus } from "./possible_cpus.ts";

export interface OpenObjectOptions {
  /** BTF to resolve CO-RE relocations against (default /sys/kernel/btf/vmlinux). */
  btfPath?: string;
  /**
   * Maps of the object that front kernel maps, by name: kernel map id. Such a map is the kernel
   * map (same type and sizes, checked): its operations, and those of this object's programs in
   * every traced process, reach it, so a kernel program using the kernel map and these userspace
   * programs share their data. Hash, array, per-CPU and LRU hash, per-CPU array.
   */
  kernelMaps?: Record<string, number>;
}

export interface UprobeOptions {
  /** Binary or library: a path, or a name like `libc.so.6`. */
  path: string;
  /** Function name (optionally `name@VERSION`); with `offset`, an offset from it. */
  func?: string;
  /** File offset (without func) or offset into func. */
  offset?: bigint;
  retprobe?: boolean;
  /**
   * Replace the function: the program's return value (r0) is what the function returns, and its
   * body does not run. Only at a function's entry.
   */
  replace?: boolean;
  /** Only this process (default any). */
  pid?: number;
  cookie?: bigint;
}

export interface UsdtOptions {
  /** Binary or library holding the probe: a path, or a name like `libc.so.6`. */
  path: string;
  provider: string;
  name: string;
  /** Only this process (default any). */
  pid?: number;
  /** What the program's bpf_usdt_cookie() returns. */
  cookie?: bigint;
}

/**
 * An attachment stored in the segment; destroy() removes it from every traced process. A USDT
 * probe compiled into several places is one link per site (`siteIds`, destroyed together).
 */
export class BpfLink {
  #alive = true;
  constructor(
    readonly segment: Segment,
    readonly id: number,
    readonly description: string,
    readonly siteIds: readonly number[] = [],
  ) {}
  destroy(): void {
    if (!this.#alive) return;
    this.#alive = false;
    for (const id of [this.id, ...this.siteIds]) {
      try {
        this.segment.deleteObject(id);
      } catch (e) {
        // Already removed from the segment (`bpftime detach`): nothing is left to do.
        if (!(e instanceof SegmentError && e.errno === 2)) throw e;
      }
    }
  }
  [Symbol.dispose](): void {
    this.destroy();
  }
}

/** The sched/ tracepoints a traced process raises of itself (the agent's sched_probes.c). */
const SCHED_PROCESS_EVENTS = ["sched_process_exec", "sched_process_exit", "sched_process_fork"];

const TRACEFS = ["/sys/kernel/tracing/events", "/sys/kernel/debug/tracing/events"];

/**
 * A tracepoint's id from tracefs, and the tracefs events directory when one could be read
 * (tracefs is root's: as an ordinary user neither is known, and the link's id is 0).
 */
function tracepointId(category: string, name: string): { id?: number; tracefs?: string } {
  for (const dir of TRACEFS) {
    try {
      Deno.statSync(`${dir}/${category}`);
    } catch {
      continue;
    }
    try {
      const id = Number(Deno.readTextFileSync(`${dir}/${category}/${name}/id`).trim());
      return { id, tracefs: dir };
    } catch {
      return { tracefs: dir };
    }
  }
  return {};
}

export class BpfProgram {
  /** Segment id once loaded. */
  id = 0;
  code?: Uint8Array;
  constructor(
    readonly object: BpfObject,
    readonly name: string,
    readonly section: string,
    readonly type: number,
    readonly autoAttach: AttachSpec | undefined,
    readonly range: { shndx: number; start: number; end: number },
  ) {}

  /** Attaches to a function in a binary, like bpf_program__attach_uprobe_opts. */
  attachUprobe(opts: UprobeOptions): BpfLink {
    const seg = this.object.loadedSegment(`attach '${this.name}'`);
    const path = resolveBinaryPath(opts.path);
    let offset = opts.offset ?? 0n;
    let what = `${path}:0x${offset.toString(16)}`;
    let funcSize = 0;
    const bytes = Deno.readFileSync(path);
    // At a function's first instruction, programs may return for it (bpf_override_return).
    let funcEntry = false;
    if (opts.func) {
      const sym = resolveFunction(bytes, opts.func, path);
      let target = sym.fileOffset;
      if (sym.type === STT_GNU_IFUNC) {
        // Probe the implementation the resolver picks here (not the resolver itself).
        target = fileOffsetOfAddress(bytes, ifuncTarget(path, opts.func.split("@")[0]), path);
      }
      offset += target;
      if (sym.size > 0n && sym.type !== STT_GNU_IFUNC) {
        // The agent may patch into the alignment padding after a short function.
        const end = Number(sym.fileOffset + sym.size);
        funcSize = Math.max(
          0,
          Number(sym.size) + paddingAt(bytes, end, 16) - Number(opts.offset ?? 0n),
        );
      }
      what = `${path}:${opts.func}${opts.offset ? `+${opts.offset}` : ""}`;
      funcEntry = !opts.offset;
    } else {
      funcEntry = functionSymbols(bytes, path).some((s) =>
        s.fileOffset === offset && s.type !== STT_GNU_IFUNC
      );
    }
    // A `uprobe.replace` program replaces wherever it is attached.
    const replace = opts.replace ?? /^uprobe\.replace(\/|$)/.test(this.section);
    if (replace && (opts.retprobe || !funcEntry)) {
      throw new LinkError(
        `program '${this.name}': replace ${what}: a replace program must be at a function's entry`,
        22,
      );
    }
    const type = replace ? "ureplace" : opts.retprobe ? "uretprobe" : "uprobe";
    const id = seg.createLink(this.name, {
      progId: this.id,
      type,
      target: path,
      offset,
      pid: opts.pid,
      cookie: opts.cookie,
      funcSize,
      funcEntry: funcEntry && !opts.retprobe,
    });
    const link = new BpfLink(seg, id, `${type} ${what} -> ${this.name}`);
    this.object.links.push(link);
    return link;
  }

  /**
   * Attaches to a USDT probe (<sys/sdt.h>), like bpf_program__attach_usdt: a uprobe at each of
   * the probe's sites, with the target's semaphore (if the probe has one) held up while attached.
   * Programs read the arguments with libbpf's <bpf/usdt.bpf.h> (bpf_usdt_arg, bpf_usdt_cookie):
   * each site's argument specs go to the object's `__bpf_usdt_specs` map, and the link's cookie
   * names the entry.
   */
  attachUsdt(opts: UsdtOptions): BpfLink {
    const seg = this.object.loadedSegment(`attach '${this.name}'`);
    const path = resolveBinaryPath(opts.path);
    const what = `usdt ${path}:${opts.provider}:${opts.name}`;
    const where = `program '${this.name}': ${what}`;
    const sites = findUsdtSites(Deno.readFileSync(path), opts.provider, opts.name, path);
    const ids: number[] = [];
    try {
      for (const site of sites) {
        const at = `${where} (site at 0x${site.address.toString(16)})`;
        const args = parseUsdtArgs(site.args, at);
        const specId = this.object.addUsdtSpec(encodeUsdtSpec(args, opts.cookie ?? 0n), at);
        ids.push(seg.createLink(this.name, {
          progId: this.id,
          type: "uprobe",
          target: path,
          offset: site.fileOffset,
          pid: opts.pid,
          cookie: BigInt(specId),
          refCtrOffset: site.semaphoreOffset,
        }));
      }
    } catch (e) {
      for (const id of ids) seg.deleteObject(id);
      throw e;
    }
    const link = new BpfLink(seg, ids[0], `${what} -> ${this.name}`, ids.slice(1));
    this.object.links.push(link);
    return link;
  }

  /**
   * Attaches as the section name says (uprobe/PATH:FUNC, usdt/PATH:PROVIDER:NAME,
   * tracepoint/syscalls/NAME, tracepoint/raw_syscalls/sys_enter, tracepoint/sched/sched_process_exec,
   * _exit, _fork: the process events the agent raises). Other tracepoints (sched/sched_switch, irq/:
   * kernel events) and unknown ones throw, naming the section.
   */
  attach(opts: { pid?: number; cookie?: bigint } = {}): BpfLink {
    const a = this.autoAttach;
    if (!a) {
      throw new Error(
        `program '${this.name}': section '${this.section}' does not say what to attach to`,
      );
    }
    if (a.kind === "usdt") {
      return this.attachUsdt({ ...a, pid: opts.pid, cookie: opts.cookie });
    }
    if (a.kind === "uprobe") {
      return this.attachUprobe({
        path: a.path,
        func: a.func,
        offset: a.offset,
        retprobe: a.retprobe,
        replace: a.replace,
        pid: opts.pid,
      });
    }
    const seg = this.object.loadedSegment(`attach '${this.name}'`);
    const target = `${a.category}/${a.name}`;
    const where = `program '${this.name}': section '${this.section}'`;
    if (a.category === "sched" && !SCHED_PROCESS_EVENTS.includes(a.name)) {
      throw new LinkError(
        `${where}: tracepoint category 'sched' cannot run in userspace but for its process ` +
          `events (${SCHED_PROCESS_EVENTS.join(", ")})`,
        22,
      );
    }
    if (a.category !== "syscalls" && a.category !== "raw_syscalls" && a.category !== "sched") {
      throw new LinkError(
        `${where}: tracepoint category '${a.category}' cannot run in userspace ` +
          `(only syscalls/, raw_syscalls/ and sched/${SCHED_PROCESS_EVENTS.join(",")})`,
        22,
      );
    }
    // The kernel decides which tracepoints exist; its id is the programs' common_type.
    const tp = tracepointId(a.category, a.name);
    if (tp.tracefs && tp.id === undefined) {
      throw new LinkError(`${where}: unknown tracepoint '${target}' (not in ${tp.tracefs})`, 2);
    }
    let id;
    try {
      id = seg.createLink(this.name, {
        progId: this.id,
        type: "syscall_tracepoint",
        target,
        offset: BigInt(tp.id ?? 0),
        pid: opts.pid,
        cookie: opts.cookie,
      });
    } catch (e) {
      if (e instanceof LinkError) throw new LinkError(`${where}: ${e.message}`, e.errno);
      throw e;
    }
    const link = new BpfLink(seg, id, `tracepoint ${target} -> ${this.name}`);
    this.object.links.push(link);
    return link;
  }
}

export class BpfObject {
  readonly programs: BpfProgram[] = [];
  readonly mapDefs: MapDef[];
  readonly links: BpfLink[] = [];
  readonly license: string;
  #segment?: Segment;
  #ownsSegment = false;
  #mapIds = new Map<MapDef, number>();
  #extraIds: number[] = [];
  /** `extern __kconfig` variables: the map holding them and each one's offset in its value. */
  #kconfig?: { id: number; offsets: Map<string, number> };
  #usdtSpecs = 0;

  private constructor(
    readonly path: string,
    readonly name: string,
    private readonly elf: RelocatableElf,
    private readonly btf: Btf | undefined,
    private readonly options: OpenObjectOptions,
  ) {
    this.mapDefs = readMapDefs(elf, btf, name, path);
    const lic = elf.byName("license");
    this.license = lic ? new TextDecoder().decode(lic.data).replace(/\0.*$/s, "") : "";
    for (const sec of elf.sections) {
      if ((sec.flags & 4n) === 0n || sec.size === 0 || sec.name === ".text") continue;
      let info;
      try {
        info = parseSection(sec.name);
      } catch (e) {
        throw new ElfError(`${path}: ${(e as Error).message}`);
      }
      if (!info) {
        throw new ElfError(
          `${path}: section '${sec.name}' is not a program type this runtime knows`,
        );
      }
      const funcs = elf.symbols.filter((s) =>
        s.shndx === sec.index && s.type === STT_FUNC && s.bind !== 0
      );
      if (funcs.length === 0) {
        throw new ElfError(`${path}: section '${sec.name}' has no global function`);
      }
      for (const f of funcs) {
        this.programs.push(
          new BpfProgram(this, f.name, sec.name, info.progType, info.attach, {
            shndx: sec.index,
            start: f.value / 8,
            end: (f.value + f.size) / 8,
          }),
        );
      }
    }
  }

  /** Reads and checks an object file (nothing is created until load()). */
  static open(path: string, options: OpenObjectOptions = {}): BpfObject {
    let bytes: Uint8Array;
    try {
      bytes = Deno.readFileSync(path);
    } catch (e) {
      throw new ElfError(`${path}: cannot read: ${(e as Error).message}`);
    }
    const elf = readRelocatable(bytes, path);
    const btfSec = elf.byName(".BTF");
    const btf = btfSec ? Btf.parse(btfSec.data, `${path}: .BTF`) : undefined;
    const base = path.split("/").pop()!.replace(/\.bpf\.o$|\.o$/, "").replace(
      /[^A-Za-z0-9_]/g,
      "_",
    );
    return new BpfObject(path, base, elf, btf, options);
  }

  program(name: string): BpfProgram {
    const p = this.programs.find((x) => x.name === name);
    if (!p) {
      throw new Error(
        `${this.path}: no program '${name}' (has ${this.programs.map((x) => x.name).join(", ")})`,
      );
    }
    return p;
  }

  /**
   * Sets a global variable (`const volatile` in .rodata, or .data/.bss)
   * before load(), like writing to a libbpf skeleton's rodata.
   */
  setGlobal(name: string, value: Uint8Array): void {
    if (this.#segment) throw new Error(`${this.path}: set '${name}' before load()`);
    for (const sec of this.btf?.types ?? []) {
      if (sec.kind !== BTF_KIND.DATASEC) continue;
      for (const v of sec.vars!) {
        if (this.btf!.type(v.type).name !== name) continue;
        const def = this.mapDefs.find((d) =>
          d.initial && this.elf.sections[d.shndx].name === sec.name
        );
        if (!def) break;
        const size = this.btf!.sizeOf(this.btf!.type(v.type).sizeOrType);
        if (value.length !== size) {
          throw new Error(`${this.path}: '${name}' is ${size} bytes, not ${value.length}`);
        }
        def.initial = def.initial!.slice();
        def.initial.set(value, symbolOffset(this.elf, def.shndx, name, this.path));
        return;
      }
    }
    throw new Error(`${this.path}: no global variable '${name}'`);
  }

  loadedSegment(what: string): Segment {
    if (!this.#segment) throw new Error(`${this.path}: ${what}: load() the object first`);
    return this.#segment;
  }

  /** The loaded map named `name` (global data maps as libbpf names them, e.g. `malloc.rodata`). */
  map(name: string): BpfMap {
    const seg = this.loadedSegment(`map '${name}'`);
    const def = this.mapDefs.find((d) => d.name === name);
    if (!def) {
      throw new Error(
        `${this.path}: no map '${name}' (has ${this.mapDefs.map((d) => d.name).join(", ")})`,
      );
    }
    return seg.map(this.#mapIds.get(def)!);
  }

  /** Creates the maps and programs in the segment (default: the default segment, created if missing). */
  load(segment?: Segment): void {
    if (this.#segment) throw new Error(`${this.path}: already loaded`);
    this.#ownsSegment = !segment;
    const seg = segment ?? Segment.open(undefined, { create: true });
    this.#segment = seg;
    try {
      this.#createMaps(seg);
      this.#createPrograms(seg);
    } catch (e) {
      this.close();
      throw e;
    }
  }

  #createMaps(seg: Segment) {
    for (const d of this.mapDefs) {
      try {
        this.#createMap(seg, d);
      } catch (e) {
        throw new ElfError(`${this.path}: map '${d.name}': ${(e as Error).message}`);
      }
    }
    this.#createKconfig(seg);
    for (const d of this.mapDefs) {
      if (!d.initialSlots || d.inner === undefined) continue;
      for (const [slot, name] of d.initialSlots) {
        const inner = this.mapDefs.find((x) => x.name === name);
        if (!inner) {
          throw new ElfError(
            `${this.path}: map '${d.name}' slot ${slot} names '${name}', which is not a map`,
          );
        }
        this.#setSlot(seg, d, slot, this.#mapIds.get(inner)!);
      }
    }
  }

  /**
   * The `.kconfig` map libbpf would make: one 8-byte slot per extern the code reads whose value
   * is known here (lib/object/kconfig.ts), or that is weak (0, as libbpf gives a weak extern it
   * cannot find). Strong externs without a value are left for linkProgram to refuse by name.
   */
  #createKconfig(seg: Segment) {
    const offsets = new Map<string, number>();
    const values: bigint[] = [];
    for (const list of this.elf.relocs.values()) {
      for (const r of list) {
        const sym = r.symbol;
        if (sym.shndx !== 0 || sym.type === STT_FUNC || offsets.has(sym.name)) continue;
        const v = kconfigValue(sym.name, Deno.osRelease()) ?? (sym.bind === 2 ? 0n : undefined);
        if (v === undefined) continue;
        offsets.set(sym.name, values.length * 8);
        values.push(v);
      }
    }
    if (!values.length) return;
    const m = seg.createMap({
      type: 2,
      name: ".kconfig",
      keySize: 4,
      valueSize: values.length * 8,
      maxEntries: 1,
      flags: 0,
      mapExtra: 0,
      innerMapId: 0,
    });
    this.#extraIds.push(m.id);
    const value = new Uint8Array(values.length * 8);
    values.forEach((v, i) => new DataView(value.buffer).setBigUint64(i * 8, v, true));
    m.update(new Uint8Array(4), value);
    this.#kconfig = { id: m.id, offsets };
  }

  /** Stores a USDT site's spec in `__bpf_usdt_specs` (<bpf/usdt.bpf.h>); its index is the link's cookie. */
  addUsdtSpec(spec: Uint8Array, where: string): number {
    const def = this.mapDefs.find((d) => d.name === "__bpf_usdt_specs");
    if (!def) {
      throw new Error(
        `${where}: ${this.path} has no __bpf_usdt_specs map: a USDT program includes <bpf/usdt.bpf.h>`,
      );
    }
    if (this.#usdtSpecs >= def.maxEntries) {
      throw new Error(`${where}: __bpf_usdt_specs is full (${def.maxEntries} sites)`);
    }
    const id = this.#usdtSpecs++;
    const key = new Uint8Array(4);
    new DataView(key.buffer).setUint32(0, id, true);
    this.map("__bpf_usdt_specs").update(key, spec);
    return id;
  }

  #createMap(seg: Segment, d: MapDef) {
    let innerMapId = 0;
    if (d.inner) {
      const t = seg.createMap({ ...d.inner, name: d.inner.name.slice(0, 15) });
      innerMapId = t.id;
      this.#extraIds.push(t.id);
    }
    const kernelId = this.options.kernelMaps?.[d.name];
    if (kernelId !== undefined) {
      const m = seg.createKernelMap(kernelId);
      const info = m.info;
      // The segment map is the kernel map's shadow: a ring buffer's holds only reservations, at
      // most 128 KiB of it (csrc/maps/kernel_map.c); a perf event array without a size in the
      // object gets the kernel's (libbpf's rule: the number of CPUs).
      const shadowEntries = d.type === 27
        ? Math.min(d.maxEntries, 128 * 1024)
        : d.type === 4 && d.maxEntries === 0
        ? info.maxEntries
        : d.maxEntries;
      if (
        info.type !== d.type || info.keySize !== d.keySize || info.valueSize !== d.valueSize ||
        info.maxEntries !== shadowEntries
      ) {
        seg.deleteObject(m.id);
        throw new Error(
          `kernel map ${kernelId} (type ${info.type}, key ${info.keySize}, value ${info.valueSize}, ` +
            `max ${info.maxEntries}) does not match the object's (type ${d.type}, key ${d.keySize}, ` +
            `value ${d.valueSize}, max ${d.maxEntries})`,
        );
      }
      this.#mapIds.set(d, m.id);
      return;
    }
    const m = seg.createMap({
      type: d.type,
      name: d.name.slice(0, 15),
      keySize: d.keySize,
      valueSize: d.valueSize,
      // libbpf's rule: a perf event array declared without a size gets one slot per CPU.
      maxEntries: d.type === 4 && d.maxEntries === 0 ? possibleCpus() : d.maxEntries,
      flags: d.flags,
      mapExtra: d.mapExtra,
      innerMapId,
    });
    this.#mapIds.set(d, m.id);
    if (d.spinLockOffset !== undefined) m.setSpinLock(d.spinLockOffset);
    if (d.initial) m.update(new Uint8Array(4), d.initial.slice());
  }

  #setSlot(seg: Segment, d: MapDef, slot: number, id: number) {
    const key = new Uint8Array(4), value = new Uint8Array(4);
    new DataView(key.buffer).setUint32(0, slot, true);
    new DataView(value.buffer).setUint32(0, id, true);
    seg.map(this.#mapIds.get(d)!).update(key, value);
  }

  #createPrograms(seg: Segment) {
    const relos = this.elf.byName(".BTF.ext") && this.btf
      ? parseCoreRelos(this.elf.byName(".BTF.ext")!.data, this.btf, `${this.path}: .BTF.ext`)
      : [];
    let core: CoreResolver | undefined;
    if (relos.length) {
      const btfPath = this.options.btfPath ?? "/sys/kernel/btf/vmlinux";
      let target: Btf;
      try {
        target = Btf.parse(Deno.readFileSync(btfPath), btfPath);
      } catch (e) {
        throw new ElfError(`${this.path}: CO-RE needs a target BTF: ${(e as Error).message}`);
      }
      core = new CoreResolver(this.btf!, target);
    }
    const mapAt = (shndx: number, value: number) => {
      const d = this.mapDefs.find((x) =>
        x.shndx === shndx && (x.initial ? true : x.offset === value)
      );
      return d ? { id: this.#mapIds.get(d)!, isData: d.initial !== undefined } : undefined;
    };
    for (const p of this.programs) {
      p.code = linkProgram({ name: p.name, ...p.range }, {
        elf: this.elf,
        what: this.path,
        mapAt,
        coreRelos: relos,
        core,
        externAt: (name) => {
          const offset = this.#kconfig?.offsets.get(name);
          return offset === undefined ? undefined : { id: this.#kconfig!.id, offset };
        },
      });
      // Check it here, as the kernel verifies at BPF_PROG_LOAD, so errors name the object.
      using vm = new Vm();
      vm.useRuntime(seg);
      try {
        vm.load(p.code);
      } catch (e) {
        throw new ElfError(
          `${this.path}: program '${p.name}' (${p.section}): ${(e as Error).message}`,
        );
      }
      p.id = seg.createProgram(p.name.slice(0, 15), p.code, p.type);
    }
    for (const d of this.mapDefs) {
      if (!d.initialSlots || d.type !== 3) continue; // program arrays
      for (const [slot, name] of d.initialSlots) this.#setSlot(seg, d, slot, this.program(name).id);
    }
  }

  /** Attaches every program whose section names its target. */
  attach(opts: { pid?: number } = {}): BpfLink[] {
    return this.programs.filter((p) => p.autoAttach).map((p) => p.attach(opts));
  }

  /** Removes this object's links, programs and maps from the segment. */
  close(): void {
    const seg = this.#segment;
    if (!seg) return;
    for (const l of this.links.splice(0)) l.destroy();
    const ids = [...this.programs.map((p) => p.id), ...this.#mapIds.values(), ...this.#extraIds];
    for (const id of ids.filter((x) => x > 0)) {
      try {
        seg.deleteObject(id);
      } catch { /* already gone (e.g. the segment was cleared) */ }
    }
    this.programs.forEach((p) => (p.id = 0));
    this.#mapIds.clear();
    this.#extraIds = [];
    this.#kconfig = undefined;
    this.#usdtSpecs = 0;
    if (this.#ownsSegment) seg.close();
    this.#segment = undefined;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
