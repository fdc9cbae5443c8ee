/**
 * examples/shared_count: a kernel program (sched_process_exec, loaded with libbpf) and a
 * userspace uprobe program (our TypeScript loader, the target under `bin/bpftime start`) count
 * into one kernel hash map; bpftool reads both counts from the kernel map. Root only.
 */
import assert from "node:assert/strict";
import { ROOT } from "./test_utils.ts";

const SCRIPT = `${ROOT}examples/shared_count/shared_count.ts`;
const KERNEL_SIDE = `${ROOT}build/examples/shared_count_kernel`;
const WORKER = `${ROOT}build/examples/shared_count_worker`;
const OBJECT = `${ROOT}build/bpf/shared_count.bpf.o`;

function skipReason(): string | undefined {
  if (Deno.uid() !== 0) return "needs root (it loads a kernel program)";
  for (const f of [KERNEL_SIDE, WORKER, OBJECT, `${ROOT}build/libbpftime-agent.so`]) {
    try {
      Deno.statSync(f);
    } catch {
      return `${f} is not built (make build examples)`;
    }
  }
  return undefined;
}

/** The u64 at `key` of kernel map `id`, as bpftool reads it (0 when absent). */
async function kernelValue(id: number, key: number): Promise<bigint> {
  const out = await new Deno.Command("bpftool", {
    args: ["-j", "map", "lookup", "id", String(id), "key", String(key), "0", "0", "0"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (out.code !== 0) return 0n;
  const bytes: string[] = JSON.parse(new TextDecoder().decode(out.stdout)).value;
  return new BigUint64Array(new Uint8Array(bytes.map((b) => Number(b))).buffer)[0];
}

Deno.test({
  name: "examples/shared_count: a kernel program and a userspace uprobe program count into one map",
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const why = skipReason();
  if (why) return console.log(`skipped: ${why}`);
  const segment = `shared_count_test_${Deno.pid}`;
  const env = { BPFTIME_GLOBAL_SHM_NAME: segment };
  const example = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SCRIPT, "--duration", "40"],
    env,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = example.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const waitFor = async (re: RegExp): Promise<RegExpMatchArray> => {
    for (;;) {
      const all = [...text.matchAll(new RegExp(re, "g"))];
      if (all.length) return all[all.length - 1];
      const r = await reader.read();
      if (r.done) throw new Error(`the example ended:\n${text}`);
      text += r.value;
    }
  };
  try {
    const id = Number((await waitFor(/counting into kernel map (\d+)/))[1]);
    const execsBefore = await kernelValue(id, 0);
    for (let i = 0; i < 2; i++) {
      const out = await new Deno.Command(`${ROOT}bin/bpftime`, {
        args: ["start", WORKER, "150"],
        env,
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    }
    // The userspace program's 300 calls and the kernel program's execs (the two workers, and
    // whatever else the machine ran), in the kernel map...
    assert.equal(await kernelValue(id, 1), 300n);
    const execs = await kernelValue(id, 0);
    assert.ok(execs >= execsBefore + 2n, `execs ${execsBefore} -> ${execs}`);
    // ...and as the example reads them through its fronting map.
    const m = await waitFor(/execs \(kernel program\)=(\d+)\tcalls \(userspace program\)=300/);
    assert.ok(BigInt(m[1]) >= execs);
    console.log(`kernel map ${id}: execs ${execs} (kernel program), calls 300 (userspace program)`);
  } finally {
    try {
      example.kill("SIGINT");
    } catch { /* ended */ }
    const status = await example.status;
    await reader.cancel().catch(() => {});
    await example.stderr.cancel().catch(() => {});
    try {
      Deno.removeSync(`/dev/shm/${segment}`);
    } catch { /* gone */ }
    // SIGINT ends its loop: it detaches, closes and lets the kernel side go.
    assert.ok(status.success, `${JSON.stringify(status)}\n${text}`);
  }
});
