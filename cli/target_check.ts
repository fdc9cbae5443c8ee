/**
 * What `bpftime start` and `bpftime load` can tell before exec about a target their preloaded
 * library cannot enter: a static executable has no dynamic loader to read LD_PRELOAD, and the
 * loader ignores LD_PRELOAD (entries with a slash) in a setuid or setgid program that changes
 * the user or group it runs as (secure-execution mode, AT_SECURE).
 */
import { elfLinkage, programHeadersEnd } from "../mod.ts";

/** The file execvp would run for `prog`: itself if it has a slash, else the first in $PATH. */
export function resolveProgram(prog: string): string | undefined {
  if (prog.includes("/")) return prog;
  for (const dir of (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(":")) {
    const path = `${dir || "."}/${prog}`;
    try {
      const st = Deno.statSync(path);
      if (st.isFile && (st.mode ?? 0) & 0o111) return path;
    } catch { /* not here */ }
  }
  return undefined;
}

/** The first bytes of a file, enough for its ELF header and program headers. */
function readHead(path: string): Uint8Array {
  using f = Deno.openSync(path);
  const head = new Uint8Array(4096);
  const n = f.readSync(head) ?? 0;
  return head.subarray(0, n);
}

/** The mount options of the filesystem holding `path` (from /proc/self/mountinfo). */
function mountOptions(path: string): string[] {
  let real: string;
  try {
    real = Deno.realPathSync(path);
  } catch {
    return [];
  }
  let best = "", options: string[] = [];
  const unescape = (s: string) =>
    s.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
  for (const line of Deno.readTextFileSync("/proc/self/mountinfo").split("\n")) {
    const fields = line.split(" ");
    if (fields.length < 6) continue;
    const mountPoint = unescape(fields[4]);
    const inside = mountPoint === "/" || real === mountPoint || real.startsWith(`${mountPoint}/`);
    if (inside && mountPoint.length >= best.length) {
      best = mountPoint;
      options = fields[5].split(",");
    }
  }
  return options;
}

function userName(uid: number): string {
  try {
    const line = Deno.readTextFileSync("/etc/passwd").split("\n")
      .find((l) => l.split(":")[2] === String(uid));
    if (line) return `${line.split(":")[0]} (uid ${uid})`;
  } catch { /* no passwd */ }
  return `uid ${uid}`;
}

function groupName(gid: number): string {
  try {
    const line = Deno.readTextFileSync("/etc/group").split("\n")
      .find((l) => l.split(":")[2] === String(gid));
    if (line) return `${line.split(":")[0]} (gid ${gid})`;
  } catch { /* no group file */ }
  return `gid ${gid}`;
}

/**
 * Why `library` (a phrase, e.g. "the agent") cannot be preloaded into the program at `path`,
 * or undefined when nothing stands in its way (or the file cannot be inspected: exec will say).
 */
export function whyNotPreloaded(path: string, library: string): string | undefined {
  let st: Deno.FileInfo;
  try {
    st = Deno.statSync(path);
  } catch {
    return undefined;
  }
  if (!st.isFile) return undefined;
  const mode = st.mode ?? 0;
  const nosuid = () => mountOptions(path).includes("nosuid");
  const uid = Deno.uid(), gid = Deno.gid();
  if (mode & 0o4000 && st.uid !== null && uid !== null && st.uid !== uid && !nosuid()) {
    return `is setuid to ${userName(st.uid)}: it runs in secure-execution mode, where the ` +
      `dynamic loader ignores LD_PRELOAD, so ${library} is not loaded`;
  }
  if (
    mode & 0o2000 && mode & 0o010 && st.gid !== null && gid !== null && st.gid !== gid && !nosuid()
  ) {
    return `is setgid to ${groupName(st.gid)}: it runs in secure-execution mode, where the ` +
      `dynamic loader ignores LD_PRELOAD, so ${library} is not loaded`;
  }
  let head: Uint8Array;
  try {
    head = readHead(path);
    if (head.length < 64 || head[0] !== 0x7f || head[1] !== 0x45) return undefined; // a script
    const end = programHeadersEnd(head, path);
    if (end > head.length) head = Deno.readFileSync(path);
    const linkage = elfLinkage(head, path);
    // The dynamic loader itself, run as a program, loads the program it is given.
    const isLoader = /^ld(-linux[^/]*)?\.so/.test(path.split("/").pop()!);
    if (!linkage.interp && !isLoader) {
      return `is statically linked (no program interpreter, as pure Go programs are): ` +
        `there is no dynamic loader to preload ${library}`;
    }
  } catch {
    return undefined; // not an ELF file we read (e.g. 32-bit): exec decides
  }
  return undefined;
}
