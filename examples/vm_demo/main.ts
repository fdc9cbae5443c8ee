/**
 * `make demo` (until the malloc demo lands): assemble a small eBPF program,
 * show its disassembly, run it on our VM and check the answer in TypeScript.
 */
import { assemble, disassemble, Vm } from "../../mod.ts";

const source = await Deno.readTextFile(new URL("./fnv1a.asm", import.meta.url));
const code = assemble(source);
console.log(`assembled ${code.length / 8} instructions from examples/vm_demo/fnv1a.asm:`);
console.log(disassemble(code).split("\n").map((l) => `    ${l}`).join("\n"));

const message = "Hello from a userspace eBPF VM!";
const data = new TextEncoder().encode(message);
using vm = new Vm();
vm.load(code);
const r0 = vm.exec(data);

let expected = 0xcbf29ce484222325n;
for (const byte of data) expected = BigInt.asUintN(64, (expected ^ BigInt(byte)) * 0x100000001b3n);

console.log(`\nFNV-1a("${message}")`);
console.log(`  eBPF interpreter: 0x${r0.toString(16)}`);
console.log(`  TypeScript:       0x${expected.toString(16)}`);
if (r0 !== expected) {
  console.error("mismatch!");
  Deno.exit(1);
}
console.log("  match");
