/**
 * Syscall hooks (csrc/hook/syscall_*): a target that links the hook module
 * counts, per syscall number, the entries and exits its handler sees during
 * a deterministic workload (threads, fork, vfork + exec, a failing execve,
 * signals, restarted and interrupted calls, dlopen); the kernel's
 * raw_syscalls tracepoints count the same process tree over the same span
 * (between two marker calls) with bpftrace. Every number must agree, the
 * module's own calls (made with its guard set, counted by it) added to ours.
 */
import assert from "node:assert/strict";
import { ROOT } from "./test_utils.ts";
import { bpftraceSkipReason, rawSyscallCountScript, readLines } from "./kernel_syscall_counts.ts";

const TARGET = `${ROOT}build/tests/syscall_target`;
const DL_LIB = `${ROOT}build/tests/libsyscall_dl.so`;

// Counting starts at the target's close(7770001) and stops after its close(7770002), for the
// target and every process it forks until that process execs (the new image is not hooked).
const SCRIPT = rawSyscallCountScript("syscall_target");

type Counts = Record<string, number>;

Deno.test("syscall hooks: per-syscall entry and exit counts equal the kernel's raw_syscalls counts (but the restarts it makes unseen)", async () => {
  const why = bpftraceSkipReason();
  if (why) {
    console.log(`skipped: ${why}`);
    return;
  }
  // The cost, measured first: with bpftrace attached every syscall pays the kernel's tracepoint.
  const bench = await new Deno.Command(TARGET, { args: [DL_LIB, "400000"], stdout: "piped" })
    .output();
  assert.equal(bench.code, 0, "target failed");
  const b = JSON.parse(new TextDecoder().decode(bench.stdout));
  console.log(
    `getppid: native ${b.native_ns} ns, hooked (handler returning at once) ${b.hooked_ns} ns, ` +
      `+${(b.hooked_ns - b.native_ns).toFixed(1)} ns (before install: raw ${b.before_native_ns}, ` +
      `libc ${b.before_libc_ns}; thread CPU time, best of 200 alternating rounds of 2000 calls)`,
  );

  const tracer = new Deno.Command("bpftrace", {
    args: ["-f", "json", "-e", SCRIPT],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const maps: Record<string, Counts> = {};
  let ready: () => void;
  const isReady = new Promise<void>((r) => ready = r);
  const lines = readLines(tracer.stdout, (l) => {
    if (!l.startsWith("{")) return;
    const m = JSON.parse(l);
    if (m.type === "printf" && m.data === "ready\n") ready();
    if (m.type === "map") Object.assign(maps, m.data);
  });
  const stderr = new Response(tracer.stderr).text();
  const timeout = setTimeout(() => tracer.kill("SIGINT"), 60000);
  await Promise.race([isReady, tracer.status]);

  const out = await new Deno.Command(TARGET, { args: [DL_LIB, "20000"], stdout: "piped" })
    .output();
  assert.equal(out.code, 0, "target failed");
  const r = JSON.parse(new TextDecoder().decode(out.stdout));
  const status = await tracer.status;
  clearTimeout(timeout);
  await lines;
  assert.ok(status.success, await stderr);

  // What the workload did.
  assert.equal(r.execve_errno, 2, "the failing execve: ENOENT");
  assert.equal(r.nanosleep, 0, "nanosleep restarted after SIGSTOP/SIGCONT");
  assert.equal(r.restart_read, 0, "the read restarted after a SA_RESTART handler returned");
  assert.equal(r.eintr_read, 4, "the read interrupted without SA_RESTART: EINTR");
  assert.equal(r.dl_ok, 1);
  assert.equal(
    r.signals,
    7,
    "SIGUSR1 three times, once from inside the handler, SIGUSR2, SIGALRM, SIGUSR2",
  );
  // The signal sent from inside the handler ran its handler there: its getppid is reported, not ours.
  assert.equal(
    r.own_enter["110"],
    undefined,
    "getppid from a signal handler counted as the module's",
  );
  assert.ok(r.dl_patched >= 2, "the dlopen'ed library's syscalls were rewritten");
  assert.ok(r.patched >= 500, `${r.patched} sites rewritten`);
  assert.equal(
    r.regs_check,
    0,
    "registers, flags, xmm0-2 and the red zone kept across a hooked site",
  );
  console.log(
    `${r.objects} objects, ${r.sites} syscall sites, ${r.patched} rewritten, ${r.uncovered} not ` +
      `(logged), install ${r.install_ms} ms\nlog:\n${r.log}`,
  );
  const rows: string[] = [];
  let differing = 0;
  for (const side of ["enter", "exit"]) {
    const kernel: Counts = maps[`@${side}`] ?? {};
    const ours: Counts = r[side];
    const own: Counts = r[`own_${side}`];
    const nrs = new Set([...Object.keys(kernel), ...Object.keys(ours), ...Object.keys(own)]);
    for (const nr of [...nrs].sort((a, b) => Number(a) - Number(b))) {
      const k = kernel[nr] ?? 0, o = ours[nr] ?? 0, w = own[nr] ?? 0;
      // The nanosleep stopped and continued: the kernel restarted it itself, with no signal
      // handler (restart_syscall, entry and exit), which no code in the process can see.
      const unseen = nr === "219" ? 1 : 0;
      const mark = k === o + w + unseen
        ? (unseen ? "  (restart_syscall made by the kernel without a handler: unseen)" : "")
        : "  <- differs";
      if (mark.endsWith("differs")) differing++;
      rows.push(
        `${side.padEnd(5)} ${nr.padStart(4)} kernel ${String(k).padStart(4)} ours ${
          String(o).padStart(4)
        } own ${String(w).padStart(3)}${mark}`,
      );
    }
  }
  console.log(rows.join("\n"));
  assert.equal(differing, 0, `${differing} counts differ from the kernel's`);
});

Deno.test("syscall hooks: installed while 3 threads make syscalls in a loop", async () => {
  for (let i = 0; i < 3; i++) {
    const out = await new Deno.Command(TARGET, {
      args: [DL_LIB, "1000", "stress"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    assert.equal(out.code, 0, `run ${i}: ${dec.decode(out.stderr)}`);
    const r = JSON.parse(dec.decode(out.stdout));
    assert.ok(r.patched >= 500);
    assert.ok(r.getppid_enter > 0, "the threads' calls are seen");
    // Each thread alternates getppid and write: counts differ by at most one per thread.
    assert.ok(Math.abs(r.getppid_enter - r.write_exit) <= 3, JSON.stringify(r));
  }
});
