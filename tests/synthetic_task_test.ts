/**
 * bpf_get_current_task (35): the synthetic task_struct of the calling thread, read through
 * bpf_probe_read_kernel (113) and bpf_probe_read_kernel_str (115) at the offsets of the running
 * kernel's BTF, checked against /proc for this (Deno's) process, on every engine. Also: kernel
 * reads outside the synthetic objects and the program's own memory are -EFAULT, as the kernel
 * refuses user addresses.
 */
import assert from "node:assert/strict";
import { assemble } from "../lib/isa/assembler.ts";
import { Btf } from "../lib/btf/btf.ts";
import { type Engine, Vm } from "../ffi/vm.ts";

const ENGINES: Engine[] = ["interp", "jit", "llvm"];
const EFAULT = BigInt.asUintN(64, -14n);

function kernelBtf(): Btf | undefined {
  try {
    return Btf.parse(Deno.readFileSync("/sys/kernel/btf/vmlinux"), "vmlinux");
  } catch {
    return undefined;
  }
}

/** Byte offset of `path` ("a.b") in struct `name`, looking into anonymous members as C does. */
function offsetOf(btf: Btf, name: string, path: string): number {
  const id = btf.findByName(name).find((i) => btf.types[i].kind === 4);
  assert.ok(id, `struct ${name} in the kernel's BTF`);
  let type = btf.types[id];
  let total = 0;
  for (const step of path.split(".")) {
    const found = find(btf, type.id, step);
    assert.ok(found, `${name}.${path}`);
    total += found.offset;
    type = btf.skipModifiers(found.type);
  }
  return total;
}

function find(btf: Btf, id: number, name: string): { offset: number; type: number } | undefined {
  for (const m of btf.skipModifiers(id).members ?? []) {
    if (m.name === name) return { offset: m.bitOffset / 8, type: m.type };
    if (m.name === "") {
      const inner = find(btf, m.type, name);
      if (inner) return { offset: m.bitOffset / 8 + inner.offset, type: inner.type };
    }
  }
  return undefined;
}

function run(engine: Engine, source: string): bigint {
  using vm = new Vm({ engine });
  vm.useRuntime();
  vm.load(assemble(source));
  return vm.exec();
}

/** r0 = *(u64 *)(task + off0) [+ off1 ...]: each step a bpf_probe_read_kernel of the pointer. */
function chain(offsets: number[], size = 8): string {
  let src = "call 35\nmov %r6, %r0\n";
  offsets.forEach((off, i) => {
    const last = i === offsets.length - 1;
    src += `stdw [%r10-8], 0
mov %r1, %r10
add %r1, -8
mov %r2, ${last ? size : 8}
mov %r3, %r6
add %r3, ${off}
call 113
jeq %r0, 0, +1
exit
ldxdw %r6, [%r10-8]
`;
  });
  return src + "mov %r0, %r6\nexit";
}

const procStat = (path: string) => {
  const s = Deno.readTextFileSync(path);
  return s.slice(s.lastIndexOf(")") + 2).split(" "); // [0] is field 3
};

const btf = kernelBtf();
const TASK = btf
  ? {
    pid: offsetOf(btf, "task_struct", "pid"),
    tgid: offsetOf(btf, "task_struct", "tgid"),
    comm: offsetOf(btf, "task_struct", "comm"),
    realParent: offsetOf(btf, "task_struct", "real_parent"),
    groupLeader: offsetOf(btf, "task_struct", "group_leader"),
    startBoottime: offsetOf(btf, "task_struct", "start_boottime"),
    startTime: offsetOf(btf, "task_struct", "start_time"),
    cred: offsetOf(btf, "task_struct", "cred"),
    realCred: offsetOf(btf, "task_struct", "real_cred"),
    exitCode: offsetOf(btf, "task_struct", "exit_code"),
    mm: offsetOf(btf, "task_struct", "mm"),
    uid: offsetOf(btf, "cred", "uid"),
    egid: offsetOf(btf, "cred", "egid"),
    argStart: offsetOf(btf, "mm_struct", "arg_start"),
    envEnd: offsetOf(btf, "mm_struct", "env_end"),
    nsproxy: offsetOf(btf, "task_struct", "nsproxy"),
    pidNs: offsetOf(btf, "nsproxy", "pid_ns_for_children"),
    nsInum: offsetOf(btf, "pid_namespace", "ns.inum"),
  }
  : undefined;

for (const engine of ENGINES) {
  Deno.test(`synthetic task/${engine}: pid, tgid, ppid, comm, creds, start time, argv bounds as /proc has them`, () => {
    if (!TASK) {
      console.log("skip: no /sys/kernel/btf/vmlinux");
      return;
    }
    const low32 = (v: bigint) => Number(BigInt.asUintN(32, v));
    assert.notEqual(run(engine, "call 35\nexit"), 0n, "a task");
    // Deno runs tests on a thread of its own: pid is that thread's id, tgid the process's
    const tid = Number(Deno.readLinkSync("/proc/thread-self").split("/").pop());
    assert.equal(low32(run(engine, chain([TASK.pid], 4))), tid);
    assert.equal(low32(run(engine, chain([TASK.tgid], 4))), Deno.pid);
    assert.equal(low32(run(engine, chain([TASK.realParent, TASK.tgid], 4))), Deno.ppid);
    assert.equal(low32(run(engine, chain([TASK.realParent, TASK.pid], 4))), Deno.ppid);
    assert.equal(low32(run(engine, chain([TASK.groupLeader, TASK.pid], 4))), Deno.pid);
    assert.equal(low32(run(engine, chain([TASK.cred, TASK.uid], 4))), Deno.uid());
    assert.equal(low32(run(engine, chain([TASK.realCred, TASK.egid], 4))), Deno.gid());
    assert.equal(low32(run(engine, chain([TASK.exitCode], 4))), 0);
    const stat = procStat("/proc/thread-self/stat");
    const ticks = BigInt(stat[22 - 3]), tick = 1_000_000_000n / 100n;
    const boot = run(engine, chain([TASK.startBoottime]));
    assert.ok(
      boot >= ticks * tick && boot < (ticks + 1n) * tick,
      `start_boottime ${boot} vs ${ticks} ticks`,
    );
    const mono = run(engine, chain([TASK.startTime]));
    assert.ok(mono <= boot && boot - mono < 10n ** 15n, `start_time ${mono}`);
    assert.equal(run(engine, chain([TASK.mm, TASK.argStart])), BigInt(stat[48 - 3]));
    assert.equal(run(engine, chain([TASK.mm, TASK.envEnd])), BigInt(stat[51 - 3]));
    const inum = Deno.readLinkSync("/proc/self/ns/pid_for_children").match(/\[(\d+)\]/)![1];
    assert.equal(
      low32(run(engine, chain([TASK.nsproxy, TASK.pidNs, TASK.nsInum], 4))),
      Number(inum),
    );
    // comm through bpf_probe_read_kernel_str: the first 8 bytes
    const comm = run(
      engine,
      `call 35
mov %r3, %r0
add %r3, ${TASK.comm}
stdw [%r10-16], 0
stdw [%r10-8], 0
mov %r1, %r10
add %r1, -16
mov %r2, 16
call 115
ldxdw %r0, [%r10-16]
exit`,
    );
    const want = Deno.readTextFileSync("/proc/thread-self/comm").trim().slice(0, 8);
    const bytes = new Uint8Array(new BigUint64Array([comm]).buffer);
    assert.equal(new TextDecoder().decode(bytes).replace(/\0.*$/s, ""), want);
  });

  Deno.test(`synthetic task/${engine}: comm follows a rename (prctl, /proc/.../comm)`, async () => {
    if (!TASK) {
      console.log("skip: no /sys/kernel/btf/vmlinux");
      return;
    }
    const commOf = () => {
      const v = run(
        engine,
        `call 35\nmov %r3, %r0\nadd %r3, ${TASK.comm}\nstdw [%r10-8], 0\nmov %r1, %r10\n` +
          `add %r1, -8\nmov %r2, 8\ncall 113\nldxdw %r0, [%r10-8]\nexit`,
      );
      return new TextDecoder().decode(new Uint8Array(new BigUint64Array([v]).buffer));
    };
    const path = "/proc/thread-self/comm";
    const before = Deno.readTextFileSync(path).trim();
    commOf(); // built
    try {
      Deno.writeTextFileSync(path, "renamed!");
      await new Promise((r) => setTimeout(r, 5)); // re-read at most once a millisecond
      assert.equal(commOf(), "renamed!");
    } finally {
      Deno.writeTextFileSync(path, before);
    }
  });

  Deno.test(`synthetic task/${engine}: kernel reads of user memory and past the objects are -EFAULT`, () => {
    if (!TASK) {
      console.log("skip: no /sys/kernel/btf/vmlinux");
      return;
    }
    // the task's mm->arg_start is a user address: a kernel read of it fails, a user read works
    const read = (helper: number) =>
      run(
        engine,
        chain([TASK.mm, TASK.argStart]).replace("mov %r0, %r6\nexit", "") +
          `mov %r3, %r6
mov %r1, %r10
add %r1, -8
mov %r2, 8
call ${helper}
exit`,
      );
    assert.equal(read(113), EFAULT);
    assert.equal(read(112), 0n);
    // far past the task (the block is a few pages): -EFAULT
    assert.equal(run(engine, chain([1 << 20])), EFAULT);
    assert.equal(run(engine, chain([-64])), EFAULT);
  });
}
