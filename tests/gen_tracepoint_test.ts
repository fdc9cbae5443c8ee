/**
 * `bpftime gen tracepoint`: a collector generated for syscalls:sys_enter_openat and
 * syscalls:sys_enter_execve receives their events in kernel mode and in userspace mode (both are
 * tracepoints our agent raises); unknown tracepoints and attributes, and bad configs, are named.
 */
import assert from "node:assert/strict";
import { bpftime, ROOT } from "./test_utils.ts";

const DIR = `${ROOT}build/tests/gen_${Deno.pid}`;
const TRACEFS = "/sys/kernel/tracing";

function readable(path: string): boolean {
  try {
    Deno.readTextFileSync(path);
    return true;
  } catch {
    return false;
  }
}

const formatsReadable = readable(`${TRACEFS}/events/syscalls/sys_enter_openat/format`) ||
  Deno.uid() === 0;
if (!formatsReadable) console.log("skip: tracefs formats are not readable here (run as root)");

async function generate(config: unknown, name: string) {
  Deno.mkdirSync(DIR, { recursive: true });
  Deno.writeTextFileSync(`${DIR}/${name}.json`, JSON.stringify(config));
  return await bpftime(["gen", "tracepoint", `${DIR}/${name}.json`]);
}

interface OpenOrExec {
  tracepoint: string;
  pid: number;
  timestampNs: bigint;
  filename: string;
  flags?: bigint;
}

Deno.test({
  name: "gen tracepoint: openat + execve collector, events in kernel and userspace mode",
  ignore: !formatsReadable,
  async fn() {
    const r = await generate([
      { tracepoint: "syscalls:sys_enter_openat", attributes: ["filename", "flags", "mode"] },
      { tracepoint: "syscalls:sys_enter_execve", attributes: ["filename"] },
    ], "files");
    assert.equal(r.code, 0, r.stderr);
    for (const ext of [".bpf.c", ".bpf.o", ".ts"]) {
      assert.ok(Deno.statSync(`${DIR}/files${ext}`).size > 0);
    }
    const gen = await import(`file://${DIR}/files.ts`);
    const marker = `${DIR}/marker`;
    Deno.writeTextFileSync(marker, "x");
    const script = ["/bin/sh", "-c", `/bin/cat ${marker} > /dev/null`];
    const ours = (seen: OpenOrExec[]) =>
      seen.filter((e) => e.filename === marker || e.filename === "/bin/cat")
        .map((e) =>
          `${e.tracepoint} ${e.filename}${e.flags === undefined ? "" : ` flags=${e.flags}`}`
        );
    const expected = [
      "syscalls:sys_enter_execve /bin/cat",
      `syscalls:sys_enter_openat ${marker} flags=0`,
    ];

    if (Deno.uid() === 0) {
      const seen: OpenOrExec[] = [];
      const c = gen.collect((e: OpenOrExec) => seen.push(e));
      await new Deno.Command(script[0], { args: script.slice(1) }).output();
      await c.stop();
      assert.deepEqual(ours(seen), expected);
      const t = Number(seen.find((e) => e.filename === marker)!.timestampNs / 1_000_000n);
      assert.ok(Math.abs(t - Date.now()) < 10_000, "wall-clock timestamps");
    } else {
      console.log("kernel half skipped: needs root");
    }

    const seen: OpenOrExec[] = [];
    const c = gen.collect((e: OpenOrExec) => seen.push(e), { userspace: true, command: script });
    assert.equal((await c.exited).code, 0);
    await c.stop();
    assert.deepEqual(ours(seen), expected);
    assert.deepEqual(
      [...Deno.readDirSync("/dev/shm")].filter((e) => e.name.startsWith(`proctrace_${Deno.pid}_`)),
      [],
    );
    Deno.removeSync(DIR, { recursive: true });
  },
});

Deno.test({
  name: "gen tracepoint: unknown tracepoint, unknown attribute, bad config: each named",
  ignore: !formatsReadable,
  async fn() {
    const tp = await generate(
      [{ tracepoint: "syscalls:sys_enter_nope", attributes: ["x"] }],
      "bad_tp",
    );
    assert.equal(tp.code, 1);
    assert.match(
      tp.stderr,
      /unknown tracepoint 'syscalls:sys_enter_nope' \(no .*sys_enter_nope\/format\)/,
    );
    const attr = await generate([{
      tracepoint: "syscalls:sys_enter_openat",
      attributes: ["filename", "nope"],
    }], "bad_attr");
    assert.equal(attr.code, 1);
    assert.match(
      attr.stderr,
      /tracepoint syscalls:sys_enter_openat has no attribute 'nope' \(its fields: __syscall_nr, dfd, filename, flags, mode\)/,
    );
    const shape = await generate([{ tracepoint: "openat", attributes: [] }], "bad_shape");
    assert.equal(shape.code, 1);
    assert.match(shape.stderr, /entry 0: "tracepoint" must be "category:name"/);
    Deno.writeTextFileSync(`${DIR}/bad_json.json`, "[{");
    const json = await bpftime(["gen", "tracepoint", `${DIR}/bad_json.json`]);
    assert.equal(json.code, 1);
    assert.match(json.stderr, /bad_json.json: not JSON/);
    const fs = await bpftime([
      "gen",
      "tracepoint",
      "--tracefs",
      "/nonexistent",
      `${DIR}/bad_attr.json`,
    ]);
    assert.equal(fs.code, 1);
    assert.match(fs.stderr, /tracefs not found at \/nonexistent .*mount -t tracefs/);
    Deno.removeSync(DIR, { recursive: true });
  },
});
