/**
 * Every input is validated with a message a user understands (issue 19, items 8 and 11):
 * malformed objects, non-eBPF ELF files, targets the agent cannot enter, import JSON,
 * environment variables and numbers on the command line.
 */
import assert from "node:assert/strict";
import { BpfObject } from "../api/bpf_object.ts";
import { readSections } from "../lib/elf/sections.ts";
import { bpftime, bpftimeEnv, ROOT } from "./test_utils.ts";

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
  for (const value of ["abc", "-1", "0", String(2 ** 44 + 1), "1.5", ""]) {
    const r = await bpftimeEnv(["tool", "import", "/nonexistent.json"], {
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
