/** BpfObject: what the loader makes of clang-compiled objects, run in the VM. */
import assert from "node:assert/strict";
import { BpfObject } from "../api/bpf_object.ts";
import { parseSection } from "../lib/object/section_names.ts";
import { Vm } from "../ffi/vm.ts";
import { freshSegment, ROOT } from "./test_utils.ts";

const FEATURES = `${ROOT}build/tests/loader_features.bpf.o`;
const u64 = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset).getBigUint64(0, true);
const key = (n: number) => new Uint8Array(new Uint32Array([n]).buffer);

function run(obj: BpfObject, prog: string): bigint {
  using vm = new Vm();
  vm.useRuntime(obj.loadedSegment("run"));
  vm.load(obj.program(prog).code!);
  return vm.exec(new Uint8Array(168)); // a zeroed struct pt_regs
}

Deno.test("object: global data, subprograms, callbacks, legacy maps, maps of maps, program arrays", () => {
  using seg = freshSegment("t_obj_features");
  using obj = BpfObject.open(FEATURES);
  obj.load(seg);
  assert.deepEqual(obj.programs.map((p) => [p.name, p.section]), [["features", "uprobe"], [
    "tail",
    "uprobe",
  ]]);
  // twice(data_base = 40) + ro_add (7) + bpf_loop's 0 + 1 + 2 + 3
  assert.equal(run(obj, "features"), 93n);
  assert.equal(run(obj, "features"), 93n);
  assert.equal(run(obj, "tail"), 93n); // through the program array's initial slot
  assert.equal(new DataView(obj.map("loader_f.bss").lookup(key(0))!.buffer).getUint32(0, true), 3);
  assert.equal(u64(obj.map("inner_a").lookup(key(0))!), 3n); // reached through `outer`
  assert.equal(u64(obj.map("legacy").lookup(key(1))!), 6n);
  assert.equal(u64(obj.map("loader_f.data").lookup(key(0))!), 40n);
  assert.equal(obj.map("outer").info.type, 12);
});

Deno.test("object: setGlobal changes .rodata before load, and is refused after", () => {
  using seg = freshSegment("t_obj_rodata");
  using obj = BpfObject.open(FEATURES);
  obj.setGlobal("ro_add", new Uint8Array(new BigUint64Array([1000n]).buffer));
  assert.throws(() => obj.setGlobal("ro_add", new Uint8Array(4)), /'ro_add' is 8 bytes, not 4/);
  assert.throws(() => obj.setGlobal("nope", new Uint8Array(8)), /no global variable 'nope'/);
  obj.load(seg);
  assert.equal(run(obj, "features"), 80n + 1000n + 6n);
  assert.throws(() => obj.setGlobal("ro_add", new Uint8Array(8)), /set 'ro_add' before load\(\)/);
});

Deno.test("object: close() removes every map and program it created", () => {
  using seg = freshSegment("t_obj_close");
  const obj = BpfObject.open(FEATURES);
  obj.load(seg);
  assert.ok(seg.objects().length > 8);
  obj.close();
  assert.deepEqual(seg.objects(), []);
  assert.throws(() => obj.map("legacy"), /load\(\) the object first/);
});

Deno.test("object: the malloc example's object names its uprobe target in its section", () => {
  using seg = freshSegment("t_obj_malloc");
  using obj = BpfObject.open(`${ROOT}build/bpf/malloc.bpf.o`);
  const p = obj.program("do_count");
  assert.deepEqual(p.autoAttach, {
    kind: "uprobe",
    retprobe: false,
    path: "libc.so.6",
    func: "malloc",
    offset: 0n,
  });
  obj.load(seg);
  const [link] = obj.attach();
  const spec = seg.link(link.id);
  assert.equal(spec.type, "uprobe");
  assert.match(spec.target, /libc\.so\.6$/);
  assert.ok(spec.offset! > 0n);
  assert.equal(obj.license, "Dual MIT/GPL");
});

Deno.test("object: libbpf section names", () => {
  assert.deepEqual(parseSection("uprobe/libc.so.6:malloc+0x10")?.attach, {
    kind: "uprobe",
    retprobe: false,
    path: "libc.so.6",
    func: "malloc",
    offset: 0x10n,
  });
  assert.deepEqual(parseSection("uretprobe//bin/bash:readline")?.attach, {
    kind: "uprobe",
    retprobe: true,
    path: "/bin/bash",
    func: "readline",
    offset: 0n,
  });
  assert.deepEqual(parseSection("uprobe//usr/bin/x:0x1234")?.attach, {
    kind: "uprobe",
    retprobe: false,
    path: "/usr/bin/x",
    offset: 0x1234n,
  });
  assert.deepEqual(parseSection("tracepoint/syscalls/sys_enter_openat")?.attach, {
    kind: "tracepoint",
    category: "syscalls",
    name: "sys_enter_openat",
  });
  assert.equal(parseSection("uprobe")?.attach, undefined);
  assert.equal(parseSection("xdp"), undefined);
  assert.throws(() => parseSection("uprobe/libc.so.6"), /expected uprobe\/PATH:FUNC\[\+OFFSET\]/);
});
