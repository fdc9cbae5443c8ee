/**
 * CO-RE against the running kernel's BTF: our relocated program must equal,
 * instruction for instruction, what libbpf makes of the same object (map
 * references aside: libbpf puts fds where we put segment ids).
 */
import assert from "node:assert/strict";
import { BpfObject } from "../api/bpf_object.ts";
import { Btf } from "../lib/btf/btf.ts";
import { readSections } from "../lib/elf/sections.ts";
import { toHex } from "../lib/encoding/hex.ts";
import { freshSegment, ROOT } from "./test_utils.ts";

const OBJ = `${ROOT}build/tests/core_fields.bpf.o`;
const LIBBPF = `${ROOT}build/tests/libbpf_insns`;

/** Instructions as hex words, with the immediates of map-referencing lddw pairs blanked. */
function normalize(words: string[]): string[] {
  const out = [...words];
  for (let i = 0; i < out.length; i++) {
    const op = out[i].slice(0, 2), src = parseInt(out[i][2], 16);
    if (op === "18" && (src === 1 || src === 2)) {
      out[i] = out[i].slice(0, 8) + "********";
      out[i + 1] = out[i + 1].slice(0, 8) + "********";
      i++;
    }
  }
  return out;
}

Deno.test("object: CO-RE relocations resolve as libbpf resolves them against vmlinux", async () => {
  try {
    Deno.statSync("/sys/kernel/btf/vmlinux");
  } catch {
    console.log("skip: no /sys/kernel/btf/vmlinux");
    return;
  }
  if (Deno.uid() !== 0) {
    console.log("skip: libbpf's reference needs root to load the object into the kernel");
    return;
  }
  const ref = await new Deno.Command(LIBBPF, {
    args: [OBJ, "core_fields"],
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  assert.equal(ref.code, 0, new TextDecoder().decode(ref.stderr));
  const theirs = new TextDecoder().decode(ref.stdout).trim().split("\n");

  using seg = freshSegment("t_obj_core");
  using obj = BpfObject.open(OBJ);
  obj.load(seg);
  const code = obj.program("core_fields").code!;
  const ours = [];
  for (let i = 0; i < code.length; i += 8) ours.push(toHex(code.subarray(i, i + 8)));
  assert.deepEqual(normalize(ours), normalize(theirs));
});

Deno.test("object: a type missing from the target BTF is an error naming it; nothing is created", () => {
  // Another object's BTF has struct pt_regs but no task_struct.
  const dir = Deno.makeTempDirSync();
  try {
    const btfPath = `${dir}/other.btf`;
    Deno.writeFileSync(
      btfPath,
      sectionData(`${ROOT}build/tests/probe_counts.bpf.o`, ".BTF"),
    );
    Btf.parse(Deno.readFileSync(btfPath)); // a valid BTF file
    using seg = freshSegment("t_obj_core_missing");
    using obj = BpfObject.open(OBJ, { btfPath });
    assert.throws(
      () => obj.load(seg),
      /core_fields\.bpf\.o: program 'core_fields' \(kprobe\/do_nanosleep, insn \d+\): CO-RE relocation .*: (field task_struct(___mine)?\.\w+|type task_struct) not found in the target BTF/,
    );
    assert.deepEqual(seg.objects(), []);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

function sectionData(path: string, name: string): Uint8Array {
  const found = readSections(Deno.readFileSync(path), path).find((s) => s.name === name);
  if (!found) throw new Error(`${path}: no section ${name}`);
  return found.data;
}
