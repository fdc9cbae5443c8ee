/** Parser for bpf_conformance `.data` files (see shared/conformance/README.md). */
import { parseHexBytes } from "../encoding/hex.ts";

export interface ConformanceCase {
  name: string;
  asm: string;
  /** Expected r0, absent when the program must be refused. */
  result?: bigint;
  /** The memory block r1 points at; absent means r1 = r2 = 0. */
  mem?: Uint8Array<ArrayBuffer>;
  /** Expected instruction words of the assembled program. */
  raw?: bigint[];
  /** Present when the program must be refused (its text is the expected reason). */
  error?: string;
}

export function parseDataFile(name: string, text: string): ConformanceCase {
  const sections = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of text.split("\n")) {
    const header = /^-- (.+?)\s*$/.exec(line);
    if (header) {
      current = [];
      sections.set(header[1], current);
    } else if (current) {
      current.push(line);
    }
  }
  const section = (key: string) => sections.get(key)?.join("\n");
  const asm = section("asm");
  if (asm === undefined) throw new Error(`${name}: no '-- asm' section`);
  const c: ConformanceCase = { name, asm };
  const result = section("result")?.trim();
  if (result) c.result = BigInt.asUintN(64, BigInt(result));
  const mem = section("mem");
  if (mem !== undefined) c.mem = parseHexBytes(mem);
  const raw = section("raw");
  if (raw !== undefined) {
    c.raw = raw.split("\n").map((l) => l.replace(/#.*/, "").trim()).filter((l) => l !== "")
      .map((l) => BigInt(l));
  }
  const error = section("error");
  if (error !== undefined) c.error = error.trim();
  if (c.result === undefined && c.error === undefined) {
    throw new Error(`${name}: neither '-- result' nor '-- error' section`);
  }
  return c;
}

/** All `.data` files under the given files or directories, sorted by path. */
export async function findDataFiles(paths: readonly string[]): Promise<string[]> {
  const found: string[] = [];
  const walk = async (p: string) => {
    const st = await Deno.stat(p);
    if (st.isFile) {
      found.push(p);
      return;
    }
    for await (const entry of Deno.readDir(p)) {
      const child = `${p.replace(/\/$/, "")}/${entry.name}`;
      if (entry.isDirectory) await walk(child);
      else if (entry.name.endsWith(".data")) found.push(child);
    }
  };
  for (const p of paths) await walk(p);
  return found.sort();
}
