/**
 * A worker for the racing-munmap tests: flips one page while the main thread reads it. "mprotect"
 * makes it PROT_NONE and readable again; "munmap" unmaps it and maps a zero page at the address
 * again, stopping if another thread of Deno took the address meanwhile (MAP_FIXED_NOREPLACE).
 * Message in: { addr, ms, kind }; message out: { n: flips, ours: whether the page is still ours }.
 */
const libc = Deno.dlopen("libc.so.6", {
  mmap: { parameters: ["pointer", "usize", "i32", "i32", "i32", "i64"], result: "pointer" },
  munmap: { parameters: ["pointer", "usize"], result: "i32" },
  mprotect: { parameters: ["pointer", "usize", "i32"], result: "i32" },
});

// deno-lint-ignore no-explicit-any
const worker = self as any;
worker.onmessage = (e: MessageEvent<{ addr: string; ms: number; kind: string }>) => {
  const p = Deno.UnsafePointer.create(BigInt(e.data.addr));
  const until = performance.now() + e.data.ms;
  let n = 0, ours = true;
  while (ours && performance.now() < until) {
    if (e.data.kind === "mprotect") {
      libc.symbols.mprotect(p, 4096n, 0);
      libc.symbols.mprotect(p, 4096n, 3);
      n++;
      continue;
    }
    libc.symbols.munmap(p, 4096n);
    const q = libc.symbols.mmap(p, 4096n, 3, 0x22 | 0x100000, -1, 0n);
    ours = Deno.UnsafePointer.value(q) === Deno.UnsafePointer.value(p);
    n++;
  }
  worker.postMessage({ n, ours });
};
