/**
 * bpftime's TypeScript API.
 *
 * ```ts
 * import { assemble, Vm } from "./mod.ts";
 * using vm = new Vm();
 * vm.load(assemble("mov %r0, 42\nexit"));
 * console.log(vm.exec()); // 42n
 *
 * using seg = Segment.open(undefined, { create: true });
 * const counts = seg.createMap({ type: "hash", keySize: 4, valueSize: 8, maxEntries: 1024 });
 * for (const [key, value] of counts.entries()) console.log(key, value);
 * ```
 */
export { type Engine, ENGINES, type HelperFn, Vm, VmError, type VmOptions } from "./ffi/vm.ts";
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
export { parseProgramText } from "./lib/isa/program_text.ts";
export { type ConformanceCase, findDataFiles, parseDataFile } from "./lib/conformance/data_file.ts";
export { type CaseOutcome, runCase, runProgram } from "./api/conformance_runner.ts";
export { codeSections, type ElfSection, readSections } from "./lib/elf/sections.ts";
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
  type MapInfo,
  type MapSpec,
  type ObjectInfo,
  Segment,
} from "./ffi/shm.ts";
export { RingBuffer } from "./ffi/ringbuf.ts";
export { PerfBuffer, type PerfCallbacks } from "./ffi/perf_buffer.ts";
export { BPF_ANY, BPF_EXIST, BPF_NOEXIST, MAP_TYPES, type MapTypeName } from "./lib/maps/types.ts";
export { exportSegment, importSegment } from "./api/segment_export.ts";
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
  BpfLink,
  BpfObject,
  BpfProgram,
  type OpenObjectOptions,
  type UprobeOptions,
} from "./api/bpf_object.ts";
export { Btf, BtfError } from "./lib/btf/btf.ts";
