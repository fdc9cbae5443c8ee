/**
 * Whom the segment is trusted from (whoever writes it runs code in every traced
 * process): another user's segment, a symbolic link or a segment anyone may
 * write is refused, sharing is explicit (BPFTIME_SHM_GROUP), and a process that
 * drops its privileges keeps its probes through the descriptor it inherits.
 */
import assert from "node:assert/strict";
import { BpfObject } from "../api/bpf_object.ts";
import { Segment } from "../ffi/shm.ts";
import { AGENT, cookieStats, PROBES, runTraced, TARGETS } from "./probe_env.ts";
import { asNobody, bpftimeEnv, freshSegment, nobodyCanRun, ROOT } from "./test_utils.ts";

const NOBODY = 65534;

function removeQuietly(name: string) {
  try {
    Deno.removeSync(`/dev/shm/${name}`);
  } catch { /* none */ }
}

/** A valid segment file named `name`, created by user nobody (as an attacker would). */
async function squat(name: string) {
  const img = freshSegment(`${name}_img`);
  img.close();
  const copy = Deno.makeTempFileSync();
  Deno.copyFileSync(`/dev/shm/${name}_img`, copy);
  Deno.chmodSync(copy, 0o644);
  removeQuietly(`${name}_img`);
  removeQuietly(name);
  const out = await asNobody([
    "sh",
    "-c",
    `umask 077 && cp ${copy} /dev/shm/${name}`,
  ]).output();
  Deno.removeSync(copy);
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  assert.equal(Deno.statSync(`/dev/shm/${name}`).uid, NOBODY);
}

Deno.test("segment trust: another user's segment is refused by the control plane, the loader and the agent", async () => {
  if (!(await nobodyCanRun(TARGETS.pie))) {
    console.log("skip: needs root to switch to user nobody, and a checkout nobody can read");
    return;
  }
  const name = "t_trust_squat";
  await squat(name);
  try {
    const owner = /belongs to uid 65534 \(nobody\), not to you \(uid 0 \(root\)\) or root/;
    assert.throws(() => Segment.open(name), owner);
    assert.throws(() => Segment.open(name, { create: true }), owner);
    assert.throws(() => Segment.open(name), /Remove \/dev\/shm\/t_trust_squat/);
    // `bpftime run` refuses to load into it.
    const run = await bpftimeEnv(["run", `${ROOT}build/bpf/malloc.bpf.o`], {
      BPFTIME_GLOBAL_SHM_NAME: name,
    });
    assert.equal(run.code, 1);
    assert.match(run.stderr, owner);
    // A traced process runs on without probes and says why.
    const seg = { name } as Segment;
    const r = await runTraced(seg, TARGETS.pie, ["funcs", "10"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, owner);
    assert.match(r.stderr, /running without probes/);
    // Trusting that user is an explicit choice.
    Segment.open(name, { trustUid: NOBODY }).close();
  } finally {
    removeQuietly(name);
  }
});

Deno.test("segment trust: symbolic links and segments others may write are refused; sharing is explicit", async () => {
  const name = "t_trust_mode";
  const seg = freshSegment(name);
  seg.close();
  try {
    removeQuietly("t_trust_link");
    Deno.symlinkSync(`/dev/shm/${name}`, "/dev/shm/t_trust_link");
    assert.throws(() => Segment.open("t_trust_link"), /is a symbolic link; refusing it/);
    assert.throws(() => Segment.open("t_trust_link", { create: true }), /symbolic link/);

    Deno.chmodSync(`/dev/shm/${name}`, 0o666);
    assert.throws(() => Segment.open(name), /mode 0666, wider than the 0600 asked for/);
    const r = await runTraced({ name } as Segment, TARGETS.pie, ["funcs", "10"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /mode 0666, wider than the 0600 asked for.*running without probes/);

    // Group sharing: refused unless BPFTIME_SHM_GROUP names that very group.
    Deno.chmodSync(`/dev/shm/${name}`, 0o660);
    Deno.chownSync(`/dev/shm/${name}`, 0, NOBODY);
    assert.throws(() => Segment.open(name), /mode 0660, wider than the 0600 asked for/);
    assert.throws(() => Segment.open(name, { group: "0" }), /shared with group 65534/);
    Segment.open(name, { group: String(NOBODY) }).close();
    assert.throws(
      () => Segment.open(name, { group: "no-such-group-x" }),
      /no group 'no-such-group-x'/,
    );
    assert.throws(() => Segment.open("t_trust_new", { create: true, mode: 0o666 }), /any user/);

    // A new shared segment gets the group and mode 0660 whatever the umask.
    removeQuietly("t_trust_shared");
    Segment.open("t_trust_shared", { create: true, group: "nogroup" }).close();
    const st = Deno.statSync("/dev/shm/t_trust_shared");
    assert.equal(st.mode! & 0o777, 0o660);
    assert.equal(st.gid, NOBODY);
  } finally {
    for (const n of [name, "t_trust_link", "t_trust_shared", "t_trust_new"]) removeQuietly(n);
  }
});

Deno.test("segment trust: an ordinary user cannot use root's unshared segment, and is told how to share", async () => {
  if (!(await nobodyCanRun(TARGETS.pie))) {
    console.log("skip: needs root to switch to user nobody, and a checkout nobody can read");
    return;
  }
  const seg = freshSegment("t_trust_unshared");
  seg.close();
  try {
    const out = await asNobody([TARGETS.pie, "funcs", "10"], {
      LD_PRELOAD: AGENT,
      BPFTIME_GLOBAL_SHM_NAME: "t_trust_unshared",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    assert.match(
      stderr,
      /Permission denied \(its owner has not shared it with you; see BPFTIME_SHM_GROUP\)/,
    );
  } finally {
    removeQuietly("t_trust_unshared");
  }
});

Deno.test("segment trust: a process that drops privileges under `bpftime start` keeps its probes (inherited descriptor)", async () => {
  if (!(await nobodyCanRun(TARGETS.pie))) {
    console.log("skip: needs root to switch to user nobody, and a checkout nobody can read");
    return;
  }
  const seg = freshSegment("t_trust_setuid", 8);
  const obj = BpfObject.open(PROBES);
  try {
    obj.load(seg);
    obj.program("on_entry").attachUprobe({ path: TARGETS.pie, func: "add", cookie: 5n });
    const r = await bpftimeEnv([
      "start",
      "setpriv",
      "--reuid=nobody",
      "--regid=nogroup",
      "--clear-groups",
      TARGETS.pie,
      "funcs",
      "1000",
    ], { BPFTIME_GLOBAL_SHM_NAME: seg.name });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "");
    assert.equal(cookieStats(obj, 5).calls, 1000n);
    // The segment stays root's, mode 0600: nothing was widened.
    const st = Deno.statSync(`/dev/shm/${seg.name}`);
    assert.equal(st.uid, 0);
    assert.equal(st.mode! & 0o777, 0o600);
  } finally {
    obj.close();
    seg.close();
    removeQuietly("t_trust_setuid");
  }
});

Deno.test("segment trust: an inherited descriptor that is not a segment is ignored; the name is used", async () => {
  const { seg, obj } = (() => {
    const s = freshSegment("t_trust_badfd", 8);
    const o = BpfObject.open(PROBES);
    o.load(s);
    return { seg: s, obj: o };
  })();
  try {
    obj.program("on_entry").attachUprobe({ path: TARGETS.pie, func: "add", cookie: 6n });
    // fd 0 is /dev/null here, not a segment.
    const r = await runTraced(seg, TARGETS.pie, ["funcs", "100"], { BPFTIME_SHM_FD: "0" });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "");
    assert.equal(cookieStats(obj, 6).calls, 100n);
  } finally {
    obj.close();
    seg.close();
    removeQuietly("t_trust_badfd");
  }
});
