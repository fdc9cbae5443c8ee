/**
 * Typed keys and values for maps: fixed-size codecs for integers and C-like
 * structs (natural alignment, like clang lays out a BPF struct). Plain
 * encoding; `typed()` in api/typed_map.ts puts a map behind a pair of codecs.
 *
 * ```ts
 * const stats = struct({ calls: u64, bytes: u64 });
 * const bytes = encode(stats, { calls: 1n, bytes: 128n });
 * decode(stats, bytes).calls; // 1n
 * ```
 */
export interface Codec<T> {
  size: number;
  align: number;
  read(view: DataView, at: number): T;
  write(view: DataView, at: number, value: T): void;
}

const int = <T>(
  size: number,
  read: (v: DataView, at: number) => T,
  write: (v: DataView, at: number, x: T) => void,
): Codec<T> => ({ size, align: size, read, write });

export const u8 = int(1, (v, at) => v.getUint8(at), (v, at, x: number) => v.setUint8(at, x));
export const u16 = int(
  2,
  (v, at) => v.getUint16(at, true),
  (v, at, x: number) => v.setUint16(at, x, true),
);
export const u32 = int(
  4,
  (v, at) => v.getUint32(at, true),
  (v, at, x: number) => v.setUint32(at, x, true),
);
export const i32 = int(
  4,
  (v, at) => v.getInt32(at, true),
  (v, at, x: number) => v.setInt32(at, x, true),
);
export const u64 = int(
  8,
  (v, at) => v.getBigUint64(at, true),
  (v, at, x: bigint) => v.setBigUint64(at, BigInt.asUintN(64, x), true),
);
export const i64 = int(
  8,
  (v, at) => v.getBigInt64(at, true),
  (v, at, x: bigint) => v.setBigInt64(at, BigInt.asIntN(64, x), true),
);

/** char[n] holding a NUL-terminated string. */
export function cstring(n: number): Codec<string> {
  return {
    size: n,
    align: 1,
    read: (v, at) => {
      const bytes = new Uint8Array(v.buffer, v.byteOffset + at, n);
      const end = bytes.indexOf(0);
      return new TextDecoder().decode(bytes.subarray(0, end < 0 ? n : end));
    },
    write: (v, at, s) => {
      const bytes = new Uint8Array(v.buffer, v.byteOffset + at, n);
      bytes.fill(0);
      bytes.set(new TextEncoder().encode(s).subarray(0, n - 1));
    },
  };
}

type Fields = Record<string, Codec<unknown>>;
type StructOf<F extends Fields> = { [K in keyof F]: F[K] extends Codec<infer T> ? T : never };

/** A struct with C layout: each field at its natural alignment, the size padded to the largest. */
export function struct<F extends Fields>(fields: F): Codec<StructOf<F>> {
  let offset = 0, align = 1;
  const layout: [string, Codec<unknown>, number][] = [];
  for (const [name, codec] of Object.entries(fields)) {
    offset = Math.ceil(offset / codec.align) * codec.align;
    layout.push([name, codec, offset]);
    offset += codec.size;
    align = Math.max(align, codec.align);
  }
  return {
    size: Math.ceil(offset / align) * align,
    align,
    read: (v, at) =>
      Object.fromEntries(layout.map(([name, c, off]) => [name, c.read(v, at + off)])) as StructOf<
        F
      >,
    write: (v, at, value) => {
      for (const [name, c, off] of layout) {
        c.write(v, at + off, (value as Record<string, unknown>)[name]);
      }
    },
  };
}

export function encode<T>(codec: Codec<T>, value: T): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(codec.size);
  codec.write(new DataView(bytes.buffer), 0, value);
  return bytes;
}

export function decode<T>(codec: Codec<T>, bytes: Uint8Array): T {
  return codec.read(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), 0);
}
