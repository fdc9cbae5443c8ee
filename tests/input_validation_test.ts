/**
 * Every input is validated with a message a user understands (issue 19, items 8 and 11):
 * malformed objects, non-eBPF ELF files, targets the agent cannot enter, import JSON,
 * environment variables and numbers on the command line.
 */
import assert from "node:assert/strict";
import { BpfObject } from "../api/bpf_object.ts";
import { importSegment } from "../api/segment_export.ts";
import { Segment } from "../ffi/shm.ts";
import { readSections } from "../lib/elf/sections.ts";
import { bpftime, bpftimeEnv, freshSegment, ROOT } from "./test_utils.ts";

const MALLOC = `${ROOT}build/bpf/malloc.bpf.o`;
const PROG_SECTION = "uprobe/libc.so.6:malloc";

/** A copy of malloc.bpf.o in a temp dir, changed by `patch` (bytes, its sections, a DataView). */
function patchedObject(
  name: string,
  patch: (
    bytes: Uint8Array,
    v: DataView,
    sec: (name: string) => ReturnType<typeof readSections>[number],
  ) => void,
): string {
  const bytes = Deno.readFileSync(MALLOC);
  const sections = readSections(bytes, MALLOC);
  const sec = (n: string) => sections.find((s) => s.name === n)!;
  patch(bytes, new DataView(bytes.buffer), sec);
  const dir = Deno.makeTempDirSync({ prefix: "bpftime_input_" });
  const path = `${dir}/${name}.bpf.o`;
  Deno.writeFileSync(path, bytes);
  return path;
}

/** The file offset of section `index`'s header field at `field` (sh_size is 0x20). */
function sectionHeaderField(v: DataView, index: number, field: number): number {
  return Number(v.getBigUint64(0x28, true)) + index * v.getUint16(0x3a, true) + field;
}

/** Moves relocation 0 of the program section (an lddw of the map) to `offset(section size)`. */
function withRelocAt(name: string, offset: (size: number, was: number) => number): string {
  return patchedObject(name, (_b, v, sec) => {
    const code = sec(PROG_SECTION), rel = sec(`.rel${PROG_SECTION}`);
    const was = Number(v.getBigUint64(rel.offset, true));
    assert.equal(v.getUint32(rel.offset + 8, true), 1, "relocation 0 is R_BPF_64_64");
    v.setBigUint64(rel.offset, BigInt(offset(code.size, was)), true);
  });
}

function cleanup(path: string) {
  Deno.removeSync(path.slice(0, path.lastIndexOf("/")), { recursive: true });
}

for (
  const [what, offset, why] of [
    [
      "past its section",
      (size: number) => size + 64,
      /is past the end of 'uprobe\/libc\.so\.6:malloc'/,
    ],
    ["misaligned", (_: number, was: number) => was + 4, /not on an instruction boundary/],
    ["in the last instruction", (size: number) => size - 8, /an lddw needs 16 bytes/],
  ] as const
) {
  Deno.test(`input: a relocation ${what} is refused, naming object, section, index, offset and symbol`, () => {
    const path = withRelocAt("reloc", offset);
    try {
      assert.throws(() => BpfObject.open(path), (e: Error) => {
        assert.ok(e.message.startsWith(path), e.message);
        assert.match(e.message, /\.reluprobe\/libc\.so\.6:malloc: relocation 0 \(offset \d+/);
        assert.match(e.message, /symbol 'libc_malloc_calls_total'/);
        assert.match(e.message, why);
        return true;
      });
    } finally {
      cleanup(path);
    }
  });
}

Deno.test("input: a program section whose length is not a multiple of 8 is refused", () => {
  const path = patchedObject("short", (_b, v, sec) => {
    const s = sec(PROG_SECTION);
    v.setBigUint64(sectionHeaderField(v, s.index, 0x20), BigInt(s.size - 4), true);
  });
  try {
    assert.throws(
      () => BpfObject.open(path),
      /code section 'uprobe\/libc\.so\.6:malloc' is \d+ bytes long, not a whole number of 8-byte/,
    );
  } finally {
    cleanup(path);
  }
});

Deno.test("input: tool disasm and BpfObject.open refuse an ELF file for another machine", async () => {
  const path = patchedObject("aarch64", (_b, v) => v.setUint16(0x12, 183, true));
  try {
    const r = await bpftime(["tool", "disasm", path]);
    assert.equal(r.code, 1, r.stdout);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, /machine is aarch64 \(e_machine 183\), not eBPF/);
    assert.throws(() => BpfObject.open(path), /machine is aarch64 \(e_machine 183\), not eBPF/);
    // The real thing: the machine's own executables.
    const own = await bpftime(["tool", "disasm", "/bin/true"]);
    assert.equal(own.code, 1);
    assert.match(own.stderr, /machine is x86-64 \(e_machine 62\), not eBPF/);
  } finally {
    cleanup(path);
  }
});

Deno.test("input: BPFTIME_SHM_MEMORY_MB is checked before a segment is created", async () => {
  const name = `t_input_shm_mb_${Deno.pid}`;
  const empty = Deno.makeTempFileSync({ prefix: "bpftime_input_", suffix: ".json" });
  Deno.writeTextFileSync(empty, JSON.stringify(exported({})));
  for (const value of ["abc", "-1", "0", String(2 ** 44 + 1), "1.5", ""]) {
    const r = await bpftimeEnv(["tool", "import", empty], {
      BPFTIME_GLOBAL_SHM_NAME: name,
      BPFTIME_SHM_MEMORY_MB: value,
    });
    assert.equal(r.code, 1, `${value}: ${r.stdout}${r.stderr}`);
    assert.ok(
      r.stderr.includes(
        `BPFTIME_SHM_MEMORY_MB: expected a size in MiB, an integer 1..65536, got '${value}'`,
      ),
      `${value}: ${r.stderr}`,
    );
    assert.throws(() => Deno.statSync(`/dev/shm/${name}`), Deno.errors.NotFound, value);
  }
  // bpftime load: the syscall server in the application creates the segment; checked before.
  const load = await bpftimeEnv(["load", "true"], {
    BPFTIME_GLOBAL_SHM_NAME: name,
    BPFTIME_SHM_MEMORY_MB: "-1",
  });
  assert.equal(load.code, 2, load.stderr);
  assert.match(load.stderr, /^bpftime load: BPFTIME_SHM_MEMORY_MB: expected .* got '-1'/);
  assert.throws(() => Deno.statSync(`/dev/shm/${name}`), Deno.errors.NotFound, "load");
  // A good value: the segment is created.
  const good = await bpftimeEnv(["tool", "import", empty], {
    BPFTIME_GLOBAL_SHM_NAME: name,
    BPFTIME_SHM_MEMORY_MB: "3",
  });
  Deno.removeSync(empty);
  assert.equal(good.code, 0, good.stderr);
  assert.equal(Deno.statSync(`/dev/shm/${name}`).size, 3 * 1024 * 1024);
  Segment.remove(name);
});

Deno.test("input: bpftime start reports death by signal as the shell does, and names the signal", async () => {
  const env = { BPFTIME_GLOBAL_SHM_NAME: `t_input_signal_${Deno.pid}` };
  for (const [sig, code] of [["BUS", 135], ["QUIT", 131], ["USR1", 138], ["KILL", 137]] as const) {
    const r = await bpftimeEnv(["start", "--", "sh", "-c", `ulimit -c 0; kill -${sig} $$`], env);
    assert.equal(r.code, code, `SIG${sig}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`bpftime: sh killed by SIG${sig}\\n`), r.stderr);
  }
});

Deno.test("input: numbers on the command line are checked, naming the option and the value", async () => {
  const env = { BPFTIME_GLOBAL_SHM_NAME: `t_input_cli_numbers_${Deno.pid}` };
  const cases: [string[], RegExp][] = [
    [["tool", "run", "1", "/dev/null", "--repeat", "abc"], /option '--repeat <n>' argument 'abc'/],
    [["tool", "run", "1", "/dev/null", "--repeat", "0"], /option '--repeat <n>' argument '0'/],
    [["tool", "run", "x1", "/dev/null"], /value 'x1' is invalid for argument 'id'/],
    [["tool", "map", "dump", "1e3"], /value '1e3' is invalid for argument 'id'/],
    [["run", MALLOC, "--dump-maps", "abc"], /option '--dump-maps <seconds>' argument 'abc'/],
    [["run", MALLOC, "--dump-maps", "-1"], /option '--dump-maps <seconds>' argument '-1'/],
    [["run", MALLOC, "--pid", "12x"], /option '--pid <pid>' argument '12x'/],
    [["run", MALLOC, "--pid", "0"], /option '--pid <pid>' argument '0'/],
    [["detach", "abc"], /value 'abc' is invalid for argument 'pid'/],
  ];
  for (const [args, message] of cases) {
    const r = await bpftimeEnv(args, env);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, message, args.join(" "));
    assert.match(r.stderr, /invalid.*\. expected (an integer|a number)/, args.join(" "));
  }
  assert.throws(
    () => Deno.statSync(`/dev/shm/${env.BPFTIME_GLOBAL_SHM_NAME}`),
    Deno.errors.NotFound,
  );
});

const map = (id: number, more: Record<string, unknown> = {}) => ({
  id,
  name: `m${id}`,
  type: "hash",
  keySize: 4,
  valueSize: 8,
  maxEntries: 16,
  flags: 0,
  entries: [{ key: "01000000", value: "0200000000000000" }],
  ...more,
});
const exported = (more: Record<string, unknown>) => ({
  format: "bpftime-segment",
  version: 1,
  maps: [],
  programs: [],
  links: [],
  ...more,
});

Deno.test("input: tool import checks the whole document first and names the path of a problem", async () => {
  const name = `t_input_import_${Deno.pid}`;
  const dir = Deno.makeTempDirSync({ prefix: "bpftime_input_" });
  const cases: [unknown, string][] = [
    [{ format: "bpftime-segment", version: 1 }, "maps: expected an array, got nothing"],
    [[1, 2], "document: expected an object, got [1,2]"],
    [exported({ version: 2 }), "version: expected 1, got 2"],
    [
      exported({ maps: [map(1), map(2), map(3, { keySize: "x" })] }),
      'maps[2].keySize: expected an integer 0..4294967295, got "x"',
    ],
    [exported({ maps: [map(1, { type: "hashh" })] }), "maps[0].type: expected a map type (hash,"],
    [
      exported({ maps: [map(1, { entries: [{ key: "01", value: "00" }] })] }),
      'maps[0].entries[0].key: expected 4 byte(s) as hex, got 1 byte(s): "01"',
    ],
    [
      exported({ maps: [map(1), map(2, { entries: [{ key: "0100000g", value: "" }] })] }),
      'maps[1].entries[0].key: expected a string of hex byte pairs, got "0100000g"',
    ],
    [
      exported({ maps: [map(1)], programs: [{ id: 1, name: "p", type: 0, insns: "9500" }] }),
      "programs[0].id: id 1 is also maps[0]'s",
    ],
    [
      exported({ programs: [{ id: 2, name: "p", type: 0, insns: "95000000" }] }),
      "programs[0].insns: expected whole 8-byte instructions as hex, got 4 byte(s)",
    ],
    [
      exported({
        programs: [{ id: 2, name: "p", type: 0, insns: "9500000000000000" }],
        links: [{
          id: 3,
          name: "l",
          prog: 2,
          type: "uprobe",
          target: "/x",
          offset: "-1",
          pid: -1,
          cookie: "0",
        }],
      }),
      'links[0].offset: expected a decimal integer 0..2^64-1 as a string, got "-1"',
    ],
  ];
  try {
    for (const [doc, message] of cases) {
      Deno.writeTextFileSync(`${dir}/bad.json`, JSON.stringify(doc));
      const r = await bpftimeEnv(["tool", "import", `${dir}/bad.json`], {
        BPFTIME_GLOBAL_SHM_NAME: name,
      });
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.ok(r.stderr.includes(`${dir}/bad.json: ${message}`), `${message}\n${r.stderr}`);
      // Nothing was created, not even the segment.
      assert.throws(() => Deno.statSync(`/dev/shm/${name}`), Deno.errors.NotFound, message);
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
    try {
      Segment.remove(name);
    } catch { /* not created */ }
  }
});

Deno.test("input: an import that fails midway removes what it created (all or nothing)", () => {
  const name = `t_input_import_atomic_${Deno.pid}`;
  using seg = freshSegment(name, 2);
  try {
    seg.createMap({ type: "array", name: "kept", keySize: 4, valueSize: 4, maxEntries: 1 });
    const before = seg.objects();
    // The third map cannot fit in a 2 MiB segment.
    const tooBig = map(3, { type: "array", valueSize: 4096, maxEntries: 4096, entries: [] });
    assert.throws(
      () => importSegment(seg, exported({ maps: [map(1), map(2), tooBig] })),
      /^Error: maps\[2\] \('m3'\): .*\(nothing imported: the 2 object\(s\) created before were removed\)$/s,
    );
    assert.deepEqual(seg.objects(), before);
    // A link that cannot be stored, after maps and a program.
    const longTarget = {
      id: 3,
      name: "l",
      prog: 2,
      type: "uprobe",
      target: "/x".repeat(4096),
      offset: "0",
      pid: -1,
      cookie: "0",
    };
    assert.throws(
      () =>
        importSegment(
          seg,
          exported({
            maps: [map(1)],
            programs: [{
              id: 2,
              name: "p",
              type: 0,
              insns: "b700000000000000" + "9500000000000000",
            }],
            links: [longTarget],
          }),
        ),
      /links\[0\] \('l'\): .*longer than.*the 2 object\(s\) created before were removed/,
    );
    assert.deepEqual(seg.objects(), before);
  } finally {
    seg.close();
    Segment.remove(name);
  }
});

/** `bpftime start PROGRAM` with no segment: the agent, when it is loaded, says so on stderr. */
async function startWithoutSegment(program: string) {
  const r = await bpftimeEnv(["start", program], {
    BPFTIME_GLOBAL_SHM_NAME: `t_input_start_${Deno.pid}`,
  });
  return { ...r, agentLoaded: /bpftime-agent\[\d+\]: segment/.test(r.stderr) };
}

Deno.test("input: bpftime start warns that a statically linked target runs without probes", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "bpftime_input_" });
  try {
    Deno.writeTextFileSync(`${dir}/static.c`, "int main(void) { return 3; }\n");
    const cc = await new Deno.Command("gcc", {
      args: ["-static", "-o", `${dir}/static`, `${dir}/static.c`],
    }).output();
    assert.equal(cc.code, 0, new TextDecoder().decode(cc.stderr));
    const r = await startWithoutSegment(`${dir}/static`);
    assert.equal(r.code, 3, "the target still runs"); // and its exit code is passed on
    assert.ok(!r.agentLoaded, "the agent cannot be in a static program");
    assert.ok(
      r.stderr.includes(`bpftime start: warning: '${dir}/static' is statically linked`),
      r.stderr,
    );
    assert.match(r.stderr, /it runs without probes/);
    // A dynamically linked program: no warning, and the agent is there.
    const dynamic = await startWithoutSegment("true");
    assert.equal(dynamic.code, 0);
    assert.ok(dynamic.agentLoaded, dynamic.stderr);
    assert.doesNotMatch(dynamic.stderr, /warning/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test({
  name:
    "input: bpftime start warns that a setuid/setgid target (to another user) ignores the agent",
  ignore: Deno.uid() !== 0,
  fn: async () => {
    const dir = Deno.makeTempDirSync({ prefix: "bpftime_input_" });
    Deno.chmodSync(dir, 0o755);
    const copy = (name: string, uid: number, gid: number, mode: number) => {
      Deno.copyFileSync("/bin/true", `${dir}/${name}`);
      Deno.chownSync(`${dir}/${name}`, uid, gid);
      Deno.chmodSync(`${dir}/${name}`, mode);
      return `${dir}/${name}`;
    };
    try {
      // Setuid to nobody, run by root: secure-execution mode, the loader ignores LD_PRELOAD.
      const toNobody = await startWithoutSegment(copy("suid_nobody", 65534, 0, 0o4755));
      assert.equal(toNobody.code, 0);
      assert.ok(!toNobody.agentLoaded, toNobody.stderr);
      assert.ok(
        toNobody.stderr.includes(
          `bpftime start: warning: '${dir}/suid_nobody' is setuid to nobody (uid 65534)`,
        ),
        toNobody.stderr,
      );
      assert.match(toNobody.stderr, /ignores LD_PRELOAD.*it runs without probes/);
      // Setgid to another group likewise.
      const toGroup = await startWithoutSegment(copy("sgid_nogroup", 0, 65534, 0o2755));
      assert.ok(!toGroup.agentLoaded, toGroup.stderr);
      assert.match(toGroup.stderr, /'.*sgid_nogroup' is setgid to .*\(gid 65534\)/);
      // Setuid to root, run by root: nothing changes user, the agent is loaded, no warning.
      const toRoot = await startWithoutSegment(copy("suid_root", 0, 0, 0o4755));
      assert.ok(toRoot.agentLoaded, toRoot.stderr);
      assert.doesNotMatch(toRoot.stderr, /warning/);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});
