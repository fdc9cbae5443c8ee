/**
 * The syscall server's pins by path (BPF_OBJ_PIN, BPF_OBJ_GET, unlink), links by id
 * (BPF_LINK_GET_FD_BY_ID) and test runs, good and bad calls, against the kernel's answers
 * (build/tests/bpf_pins_links: the same calls asked of the kernel, then under `bpftime load`).
 * Pins live in the segment: one process pins, another finds the pin; nothing is left behind.
 * Maps made through bpf(2) with a struct bpf_spin_lock in their BTF value lock as the kernel's
 * (build/tests/bpf_spin_locks).
 */
import assert from "node:assert/strict";
import { kernelBpfAvailable } from "../testing/kernel_bpf.ts";
import { Segment } from "../ffi/shm.ts";
import { freshSegment, ROOT } from "./test_utils.ts";
import { BIN, runJson } from "./server_env.ts";

const APP = `${ROOT}build/tests/bpf_pins_links`;
const SPIN_LOCKS = `${ROOT}build/tests/bpf_spin_locks`;
const kernel = kernelBpfAvailable();

/** An empty directory on bpffs for one run (bpffs must be mounted at /sys/fs/bpf, as for libbpf). */
function bpffsDir(tag: string): string | undefined {
  const dir = `/sys/fs/bpf/bpftime_attach2_${tag}_${Deno.pid}`;
  try {
    Deno.mkdirSync(dir);
    return dir;
  } catch (e) {
    console.log(`skipped: cannot make ${dir} (${(e as Error).message})`);
    return undefined;
  }
}

Deno.test("server: pins by path, links by id and test runs answer as the kernel does", async () => {
  const ours = bpffsDir("ours");
  if (!ours) return;
  const seg = freshSegment(`bpftime_attach2_pins_${Deno.pid}`, 8);
  try {
    const r = await runJson(BIN, ["load", APP, ours], { BPFTIME_GLOBAL_SHM_NAME: seg.name });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.json, r.stderr);
    // Nothing was written to bpffs: the pins were the segment's, and they are gone.
    assert.deepEqual([...Deno.readDirSync(ours)], []);
    assert.equal(seg.objects().length, 0, JSON.stringify(seg.objects()));
    if (kernel.ok) {
      const theirsDir = bpffsDir("kernel")!;
      try {
        const k = await runJson(APP, [theirsDir]);
        assert.equal(k.code, 0, k.stderr);
        assert.deepEqual(r.json, k.json);
      } finally {
        Deno.removeSync(theirsDir, { recursive: true });
      }
    } else {
      console.log(`kernel side skipped: ${kernel.reason}`);
      assert.equal(r.json.value_through_pin, 42);
      assert.equal(r.json.pin_same_path_again, "EEXIST");
    }
  } finally {
    Deno.removeSync(ours, { recursive: true });
    const name = seg.name;
    seg.close();
    try {
      Segment.remove(name);
    } catch { /* removed */ }
  }
});

Deno.test("server: pins outlive their process and are found by path from another; unlink frees them and what they held", async () => {
  const dir = bpffsDir("across");
  if (!dir) return;
  const seg = freshSegment(`bpftime_attach2_pins_across_${Deno.pid}`, 8);
  const env = { BPFTIME_GLOBAL_SHM_NAME: seg.name };
  try {
    const pin = await runJson(BIN, ["load", APP, dir, "pin"], env);
    assert.equal(pin.code, 0, pin.stderr);
    assert.deepEqual(pin.json, { update: "ok", pin: "ok", prog: "ok", link: "ok", pin_link: "ok" });
    // The pinned map, and the pinned link with the program and map it holds, outlive it.
    assert.equal(seg.objects().length, 4, JSON.stringify(seg.objects()));
    const get = await runJson(BIN, ["load", APP, dir, "get"], env);
    assert.equal(get.code, 0, get.stderr);
    assert.deepEqual(get.json, {
      get: "ok",
      lookup: "ok",
      value: 42,
      unlink: "ok",
      get_link: "ok",
      link_info: "ok",
      prog_of_link: "ok",
      unlink_link: "ok",
    });
    // The last pins of objects whose creator is gone: unlinking them frees them and what they
    // held (the link's program and its map), as the kernel does.
    assert.equal(seg.objects().length, 0, JSON.stringify(seg.objects()));
    if (kernel.ok) {
      const k1 = await runJson(APP, [dir, "pin"]);
      const k2 = await runJson(APP, [dir, "get"]);
      assert.deepEqual([k1.json, k2.json], [pin.json, get.json]);
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
    const name = seg.name;
    seg.close();
    try {
      Segment.remove(name);
    } catch { /* removed */ }
  }
});

Deno.test("server: BTF-declared spin locks in maps made through bpf(2) answer as the kernel does", async () => {
  const seg = freshSegment(`bpftime_attach2_spin_${Deno.pid}`, 8);
  try {
    const r = await runJson(BIN, ["load", SPIN_LOCKS], { BPFTIME_GLOBAL_SHM_NAME: seg.name });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.json, r.stderr);
    assert.equal(r.json.locked_read, "lock 0 pad 5 count 7");
    if (kernel.ok) {
      const k = await runJson(SPIN_LOCKS, []);
      assert.equal(k.code, 0, k.stderr);
      assert.deepEqual(r.json, k.json);
    } else {
      console.log(`kernel side skipped: ${kernel.reason}`);
    }
    assert.equal(seg.objects().length, 0);
  } finally {
    const name = seg.name;
    seg.close();
    Segment.remove(name);
  }
});
