/** libbpf's SEC() names: program type and, for auto-attach, what to attach to. */

export const PROG_TYPE = { kprobe: 2, tracepoint: 5, raw_tracepoint: 17 } as const;

export type AttachSpec =
  | {
    kind: "uprobe";
    retprobe: boolean;
    path: string;
    func?: string;
    offset: bigint;
    /** `uprobe.replace/`: the program's return value replaces the function's. */
    replace?: boolean;
  }
  | { kind: "tracepoint"; category: string; name: string }
  | { kind: "usdt"; path: string; provider: string; name: string };

export interface SectionInfo {
  progType: number;
  /** Undefined when the section only names the type (attach manually). */
  attach?: AttachSpec;
}

/**
 * Parses `uprobe/PATH:FUNC[+OFF]`, `uretprobe/...`, `uprobe.replace/PATH:FUNC` (ours: the
 * program's return value becomes the function's, its body skipped), `usdt/PATH:PROVIDER:NAME`,
 * `tracepoint/CAT/NAME`, `tp/CAT/NAME`.
 */
export function parseSection(section: string): SectionInfo | undefined {
  const usdt = /^usdt(?:\/(.*))?$/.exec(section);
  if (usdt) {
    if (!usdt[1]) return { progType: PROG_TYPE.kprobe };
    // As libbpf: the path may hold ':' only before the last two fields.
    const m = /^(.+):([^:]+):([^:]+)$/.exec(usdt[1]);
    if (!m) throw new Error(`section '${section}': expected usdt/PATH:PROVIDER:NAME`);
    return {
      progType: PROG_TYPE.kprobe,
      attach: { kind: "usdt", path: m[1], provider: m[2], name: m[3] },
    };
  }
  const up = /^(uprobe|uretprobe)(\.s|\.replace)?(?:\/(.*))?$/.exec(section);
  if (up) {
    const retprobe = up[1] === "uretprobe";
    const replace = up[2] === ".replace";
    if (replace && retprobe) throw new Error(`section '${section}': a return probe cannot replace`);
    if (!up[3]) return { progType: PROG_TYPE.kprobe };
    const m = /^(.+):([^:+]*)(?:\+(0x[0-9a-fA-F]+|\d+))?$/.exec(up[3]);
    if (!m) {
      throw new Error(`section '${section}': expected ${up[1]}${up[2] ?? ""}/PATH:FUNC[+OFFSET]`);
    }
    const [, path, func, off] = m;
    // A bare address (uprobe/PATH:0x1234) is a file offset, as in libbpf.
    if (/^(0x[0-9a-fA-F]+|\d+)$/.test(func)) {
      return {
        progType: PROG_TYPE.kprobe,
        attach: {
          kind: "uprobe",
          retprobe,
          path,
          offset: BigInt(func),
          ...(replace ? { replace } : {}),
        },
      };
    }
    return {
      progType: PROG_TYPE.kprobe,
      attach: {
        kind: "uprobe",
        retprobe,
        path,
        func,
        offset: off ? BigInt(off) : 0n,
        ...(replace ? { replace } : {}),
      },
    };
  }
  const tp = /^(?:tracepoint|tp)(?:\/([^/]+)\/([^/]+))?$/.exec(section);
  if (tp) {
    return tp[1]
      ? {
        progType: PROG_TYPE.tracepoint,
        attach: { kind: "tracepoint", category: tp[1], name: tp[2] },
      }
      : { progType: PROG_TYPE.tracepoint };
  }
  if (/^(kprobe|kretprobe)(\/|$)/.test(section)) return { progType: PROG_TYPE.kprobe };
  if (/^(raw_tracepoint|raw_tp)(\/|$)/.test(section)) return { progType: PROG_TYPE.raw_tracepoint };
  return undefined;
}
