/** The shared-memory segment: objects, export/import, and bad input that must not corrupt it. */
import assert from "node:assert/strict";
import { DENO, freshSegment } from "./test_utils.ts";
import { LinkError, MapError } from "../ffi/errors.ts";
import { Segment } from "../ffi/shm.ts";
import { exportSegment, importSegment } from "../api/segment_export.ts";
import { assemble } from "../lib/isa/assembler.ts";

const NAME = `bpftime_test_segment_${Deno.pid}`;
const u32 = (n: number) => new Uint8Array(new Uint32Array([n]).buffer);
const u64 = (n: number) => new Uint8Array(new BigUint64Array([BigInt(n)]).buffer);

const fresh = (sizeMb = 4) => freshSegment(NAME, sizeMb);

function populate(seg: Segment) {
  const h = seg.createMap({
    type: "hash",
    name: "counts",
    keySize: 4,
    valueSize: 8,
    maxEntries: 64,
  });
  const a = seg.createMap({ type: "array", name: "cfg", keySize: 4, valueSize: 16, maxEntries: 4 });
  const p = seg.createMap({
    type: "percpu_hash",
    name: "pc",
    keySize: 8,
    valueSize: 4,
    maxEntries: 8,
  });
  for (let i = 0; i < 40; i++) h.update(u32(i * 7), u64(i * i));
  a.update(u32(2), new Uint8Array(16).fill(0xab));
  p.update(u64(5), Array.from({ length: p.info.ncpus }, (_, c) => u32(100 + c)));
  // Maps first, then programs, then links: the order import recreates them in, so ids match.
  const q = seg.createMap({ type: "queue", name: "q", keySize: 0, valueSize: 4, maxEntries: 8 });
  for (const n of [3, 1, 2]) q.push(u32(n));
  const tmpl = seg.createMap({
    type: "array",
    name: "tmpl",
    keySize: 4,
    valueSize: 8,
    maxEntries: 2,
  });
  const outer = seg.createMap({
    type: "array_of_maps",
    name: "outer",
    keySize: 4,
    valueSize: 4,
    maxEntries: 2,
    innerMapId: tmpl.id,
  });
  outer.update(u32(1), u32(tmpl.id));
  const progs = seg.createMap({
    type: "prog_array",
    name: "progs",
    keySize: 4,
    valueSize: 4,
    maxEntries: 2,
  });
  const prog = seg.createProgram("reader", assemble(`lddw %r1, map_fd ${h.id}\nmov %r0, 0\nexit`));
  progs.update(u32(0), u32(prog));
  seg.createLink("malloc", {
    progId: prog,
    type: "uprobe",
    target: "/usr/lib/x86_64-linux-gnu/libc.so.6",
    offset: 0x9a0f0n,
    cookie: 7n,
    funcEntry: true,
  });
  seg.createLink("usdt", {
    progId: prog,
    type: "uprobe",
    target: "/usr/bin/python3",
    offset: 0x1234n,
    refCtrOffset: 0x4030n,
  });
  seg.createLink("open", {
    progId: prog,
    type: "syscall_tracepoint",
    target: "syscalls/sys_enter_openat",
    pid: 42,
  });
}

Deno.test("segment: export, remove and import give identical contents", () => {
  let seg = fresh();
  populate(seg);
  const before = exportSegment(seg);
  seg.close();
  Segment.remove(NAME);
  assert.throws(() => Segment.open(NAME), /No such file/);
  seg = Segment.open(NAME, { create: true, sizeMb: 4 });
  importSegment(seg, before);
  const after = exportSegment(seg);
  const normalize = (x: typeof before) => ({
    ...x,
    maps: x.maps.map((m) => ({
      ...m,
      entries: [...m.entries].sort((p, q) => p.key.localeCompare(q.key)),
    })),
  });
  assert.deepEqual(normalize(after), normalize(before));
  assert.deepEqual(
    before.links.map((l) => [l.name, l.refCtrOffset, l.funcEntry]).sort(),
    [["malloc", undefined, true], ["open", undefined, undefined], ["usdt", "16432", undefined]],
  );
  assert.deepEqual(before.maps.find((m) => m.name === "q")!.entries.map((e) => e.value), [
    "03000000",
    "01000000",
    "02000000",
  ]);
  assert.equal(before.maps.length, 7);
  assert.equal(before.links.length, 3);
  seg.close();
  Segment.remove(NAME);
});

Deno.test("segment: a second process sees the same maps", async () => {
  using seg = fresh();
  const m = seg.createMap({
    type: "hash",
    name: "shared",
    keySize: 4,
    valueSize: 8,
    maxEntries: 4,
  });
  m.update(u32(1), u64(41));
  const probe = `
    import { Segment } from "${new URL("../ffi/shm.ts", import.meta.url).pathname}";
    using seg = Segment.open("${NAME}");
    const m = seg.map(${m.id});
    const v = new DataView(m.lookup(new Uint8Array([1, 0, 0, 0])).buffer).getBigUint64(0, true);
    m.update(new Uint8Array([1, 0, 0, 0]), new Uint8Array(new BigUint64Array([v + 1n]).buffer));
    console.log(m.info.name, v);`;
  const out = await new Deno.Command(DENO, {
    args: ["eval", "--quiet", probe],
    stdout: "piped",
  })
    .output();
  assert.equal(new TextDecoder().decode(out.stdout).trim(), "shared 41n");
  assert.deepEqual(m.lookup(u32(1)), u64(42));
  Segment.remove(NAME);
});

Deno.test("segment: wrong sizes, unknown ids and bad map parameters are clear errors", () => {
  using seg = fresh();
  const m = seg.createMap({ type: "hash", name: "m", keySize: 4, valueSize: 8, maxEntries: 2 });
  assert.throws(
    () => m.lookup(new Uint8Array(3)),
    /map 'm' \(id \d+\): key is 3 bytes, expected 4/,
  );
  assert.throws(() => m.update(u32(1), new Uint8Array(4)), /value is 4 bytes, expected 8/);
  assert.throws(
    () => seg.map(999),
    (e: unknown) => e instanceof MapError && /no map with id 999/.test(e.message),
  );
  assert.throws(() => seg.program(999), /no program with id 999/);
  assert.throws(
    () => seg.createMap({ type: "array", name: "bad", keySize: 8, valueSize: 4, maxEntries: 1 }),
    /map 'bad': array keys are 4 bytes, not 8/,
  );
  assert.throws(
    () => seg.createMap({ type: "hash", name: "zero", keySize: 4, valueSize: 4, maxEntries: 0 }),
    (e: unknown) => e instanceof MapError && e.code === "EINVAL",
  );
  assert.throws(
    () =>
      seg.createMap({
        type: 8, // BPF_MAP_TYPE_CGROUP_ARRAY
        name: "x",
        keySize: 4,
        valueSize: 4,
        maxEntries: 2,
      }),
    /map type 8 is not supported/,
  );
  m.update(u32(1), u64(1));
  m.update(u32(2), u64(2));
  assert.throws(
    () => m.update(u32(3), u64(3)),
    (e: unknown) =>
      e instanceof MapError && e.code === "E2BIG" && /map 'm'.*update/.test(e.message),
  );
  assert.throws(
    () => m.update(u32(1), u64(9), 1n),
    (e: unknown) => e instanceof MapError && e.code === "EEXIST",
  );
  assert.deepEqual([...m.keys()].length, 2);
  Segment.remove(NAME);
});

Deno.test("segment: a full segment refuses new maps and keeps the old ones intact", () => {
  using seg = fresh(1);
  const keep = seg.createMap({
    type: "array",
    name: "keep",
    keySize: 4,
    valueSize: 8,
    maxEntries: 16,
  });
  keep.update(u32(3), u64(33));
  let made = 0;
  assert.throws(() => {
    for (;; made++) {
      seg.createMap({
        type: "hash",
        name: `big${made}`,
        keySize: 8,
        valueSize: 256,
        maxEntries: 512,
      });
    }
  }, (e: unknown) => e instanceof MapError && e.code === "ENOMEM" && /has no room/.test(e.message));
  assert.ok(made >= 1);
  assert.deepEqual(keep.lookup(u32(3)), u64(33));
  // Freeing space makes room again.
  for (const m of seg.maps()) if (m.info.name.startsWith("big")) seg.deleteObject(m.id);
  seg.createMap({ type: "hash", name: "again", keySize: 8, valueSize: 256, maxEntries: 512 });
  Segment.remove(NAME);
});

Deno.test("segment: one left by an older build is refused, or replaced when the caller may create it", () => {
  const seg = fresh();
  seg.close();
  const file = `/dev/shm/${NAME}`;
  const bytes = Deno.readFileSync(file);
  new DataView(bytes.buffer).setUint32(8, 1, true); // layout version 1
  Deno.writeFileSync(file, bytes);
  assert.throws(() => Segment.open(NAME), /layout version 1, this build uses 8/);
  const replaced = Segment.open(NAME, { create: true, sizeMb: 4 });
  assert.equal(replaced.stats().objects, 0);
  replaced.close();
  Segment.remove(NAME);
});

Deno.test("segment: a segment of another layout version is refused by name", () => {
  const seg = fresh();
  seg.close();
  const file = `/dev/shm/${NAME}`;
  const bytes = Deno.readFileSync(file);
  new DataView(bytes.buffer).setUint32(8, 99, true); // layout version
  Deno.writeFileSync(file, bytes);
  assert.throws(
    () => Segment.open(NAME),
    new RegExp(`segment '${NAME}': layout version 99, this build uses 8`),
  );
  new DataView(bytes.buffer).setBigUint64(0, 0n, true); // magic
  Deno.writeFileSync(file, bytes);
  assert.throws(() => Segment.open(NAME), /not a bpftime segment \(bad magic\)/);
  Segment.remove(NAME);
});

Deno.test("segment: links name a stored program and keep their attach spec", () => {
  using seg = fresh();
  try {
    const prog = seg.createProgram("p", assemble("mov %r0, 0\nexit"));
    const id = seg.createLink("ret", {
      progId: prog,
      type: "uretprobe",
      target: "/bin/bash",
      offset: 0x10n,
      pid: 9,
      funcSize: 40,
      refCtrOffset: 0x4030n,
    });
    assert.deepEqual(seg.link(id), {
      progId: prog,
      type: "uretprobe",
      target: "/bin/bash",
      offset: 0x10n,
      pid: 9,
      cookie: 0n,
      funcSize: 40,
      refCtrOffset: 0x4030n,
      funcEntry: false,
    });
    assert.deepEqual(seg.objects().map((o) => o.kind), ["prog", "link"]);
    assert.throws(
      () => seg.createLink("bad", { progId: 999, type: "uprobe", target: "/bin/true" }),
      (e: unknown) =>
        e instanceof LinkError && e.errno === 9 &&
        /link 'bad': no program with id 999/.test(e.message),
    );
    assert.throws(
      () => seg.createLink("long", { progId: prog, type: "uprobe", target: "x".repeat(300) }),
      /longer than 255/,
    );
    seg.deleteObject(id);
    assert.throws(() => seg.link(id), /no link with id/);
  } finally {
    Segment.remove(NAME);
  }
});
