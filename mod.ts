/**
 * bpftime's TypeScript API: the one entry point for tools written in
 * TypeScript, and what the `bpftime` CLI (cli/) and the examples are built on.
 *
 * ```ts
 * import { assemble, Segment, typed, u32, u64, Vm } from "./mod.ts";
 *
 * // Run a program.
 * using vm = new Vm();
 * vm.load(assemble("mov %r0, 42\nexit"));
 * console.log(vm.exec()); // 42n
 *
 * // A map in shared memory, which any process opening the segment sees.
 * using seg = Segment.open("my_tool", { create: true });
 * const counts = typed(
 *   seg.createMap({ type: "hash", name: "counts", keySize: 4, valueSize: 8, maxEntries: 1024 }),
 *   u32,
 *   u64,
 * );
 * counts.set(7, 3n);
 * for (const [key, value] of counts.entries()) console.log(key, value); // 7 3n
 * Segment.remove("my_tool");
 * ```
 */

// Instructions: assemble, disassemble, encode (lib/isa/, no native code).
export { AsmError, assemble, assembleInsns, parseInteger } from "./lib/isa/assembler.ts";
export { disassemble, disassembleInsns } from "./lib/isa/disassembler.ts";
export {
  decodeInsns,
  encodeInsns,
  fromWords,
  type Insn,
  type OpcodeInfo,
  opcodeInfo,
  OPCODES,
  toWords,
} from "./lib/isa/opcodes.ts";
export { looksLikeHex, parseProgramText } from "./lib/isa/program_text.ts";
export { fromHex, parseHexBytes, toHex } from "./lib/encoding/hex.ts";

// ELF and BTF.
export {
  codeSections,
  ElfError,
  type ElfSection,
  isElf,
  readSections,
} from "./lib/elf/sections.ts";
export { type ElfLinkage, elfLinkage, programHeadersEnd } from "./lib/elf/program_headers.ts";
export { Btf, BtfError } from "./lib/btf/btf.ts";

// The VM.
export { type Engine, ENGINES, type HelperFn, Vm, VmError, type VmOptions } from "./ffi/vm.ts";

// The shared-memory segment, its maps, programs and links, and the event consumers.
export {
  BpftimeError,
  LinkError,
  MapError,
  PerfBufferError,
  ProgramError,
  RingBufferError,
  SegmentError,
} from "./ffi/errors.ts";
export {
  BpfMap,
  DEFAULT_SEGMENT,
  LINK_TYPES,
  type LinkSpec,
  type LinkType,
  type MapInfo,
  type MapSpec,
  MAX_SEGMENT_MB,
  type ObjectInfo,
  type OpenOptions as OpenSegmentOptions,
  Segment,
  segmentSizeMb,
} from "./ffi/shm.ts";
export { RingBuffer } from "./ffi/ringbuf.ts";
export { PerfBuffer, type PerfCallbacks } from "./ffi/perf_buffer.ts";
export {
  BPF_ANY,
  BPF_EXIST,
  BPF_F_LOCK,
  BPF_NOEXIST,
  MAP_TYPES,
  type MapTypeName,
  mapTypeName,
} from "./lib/maps/types.ts";
export {
  type Codec,
  cstring,
  decode,
  encode,
  i32,
  i64,
  struct,
  u16,
  u32,
  u64,
  u8,
} from "./lib/maps/codec.ts";
export { typed } from "./api/typed_map.ts";
export {
  type ExportedLink,
  type ExportedMap,
  type ExportedProgram,
  type ExportedSegment,
  exportMap,
  exportSegment,
  importSegment,
  validateExport,
} from "./api/segment_export.ts";

// Objects compiled by clang: load, attach (like libbpf's bpf_object API).
export {
  BpfLink,
  BpfObject,
  BpfProgram,
  type OpenObjectOptions,
  type UprobeOptions,
} from "./api/bpf_object.ts";

// The bpf_conformance suite.
export { type ConformanceCase, findDataFiles, parseDataFile } from "./lib/conformance/data_file.ts";
export { type CaseOutcome, runCase, runProgram } from "./api/conformance_runner.ts";

// Where the shared libraries are (the runtime, the agent, the syscall server).
export { LIBRARIES, type LibraryName, libraryPath } from "./ffi/library_path.ts";

// Loading the agent into a running process (`bpftime attach`).
export { injectAgent, injectorPath, type InjectResult } from "./ffi/inject.ts";

// The process tracer: exec and exit events in column batches (kernel mode through libbpf, or
// userspace mode under the agent).
export {
  type BatchCallback,
  ProcessTracer,
  type ProcessTracerOptions,
  ProcTraceError,
} from "./api/process_tracer.ts";
export {
  EVENT_EXEC,
  EVENT_EXIT,
  FLAG_ARGV_MISSING,
  FLAG_ARGV_TRUNCATED,
  ProcessBatch,
} from "./api/process_batch.ts";
export { type TracerStats } from "./ffi/proctrace.ts";
export { rfc3339Nanos } from "./lib/time/rfc3339.ts";

// Generated tracepoint collectors (`bpftime gen tracepoint`): what their code runs on.
export {
  type CollectorOptions,
  collectTracepoints,
  type RecordCallback,
  TracepointCollector,
} from "./api/tracepoint_collector.ts";
export {
  generateC as generateTracepointC,
  generateTs as generateTracepointTs,
  parseConfig as parseTracepointConfig,
  type TracepointConfig,
} from "./lib/codegen/tracepoint_gen.ts";
export {
  parseFormat as parseTracefsFormat,
  type TracepointFormat,
} from "./lib/codegen/tracefs_format.ts";
export { daemonPath } from "./ffi/daemon.ts";
