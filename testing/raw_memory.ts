/**
 * Raw memory for tests of fault-tolerant reads: anonymous pages this process maps, protects and
 * unmaps through libc, addressed as bigints (only this file touches Deno's pointers).
 */
const libc = Deno.dlopen("libc.so.6", {
  mmap: { parameters: ["pointer", "usize", "i32", "i32", "i32", "i64"], result: "pointer" },
  munmap: { parameters: ["pointer", "usize"], result: "i32" },
  mincore: { parameters: ["pointer", "usize", "buffer"], result: "i32" },
  mprotect: { parameters: ["pointer", "usize", "i32"], result: "i32" },
});
export const PROT_NONE = 0, PROT_READ = 1, PROT_WRITE = 2;
const MAP_PRIVATE = 2, MAP_ANONYMOUS = 0x20;

const ptr = (addr: bigint) => Deno.UnsafePointer.create(addr);

/** Maps `len` bytes of zeroed, readable and writable anonymous memory; returns its address. */
export function mapAnonymous(len: number): bigint {
  const p = libc.symbols.mmap(
    null,
    BigInt(len),
    PROT_READ | PROT_WRITE,
    MAP_PRIVATE | MAP_ANONYMOUS,
    -1,
    0n,
  );
  return BigInt(Deno.UnsafePointer.value(p));
}
export function protect(addr: bigint, len: number, prot: number): number {
  return libc.symbols.mprotect(ptr(addr), BigInt(len), prot);
}
export function unmap(addr: bigint, len: number): number {
  return libc.symbols.munmap(ptr(addr), BigInt(len));
}
/** Whether `len` bytes at `addr` are mapped (mincore fails with ENOMEM on unmapped memory). */
export function isMapped(addr: bigint, len: number): boolean {
  const vec = new Uint8Array(Math.ceil(len / 4096));
  return libc.symbols.mincore(ptr(addr), BigInt(len), vec) === 0;
}
/** The bytes at `addr`, as a view (the memory must stay mapped while it is used). */
export function bytesAt(addr: bigint, len: number): Uint8Array {
  return new Uint8Array(new Deno.UnsafePointerView(ptr(addr)!).getArrayBuffer(len));
}
