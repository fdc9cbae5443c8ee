/**
 * What the proctrace tests share: the scripted process tree, and its events reduced to what
 * both modes must agree on (pids and ppids renamed by order of appearance, argv, exit codes).
 */
import { ROOT } from "./test_utils.ts";

export const TREE_SCRIPT = `${ROOT}tests/fixtures/proctrace_tree.sh`;

export interface JsonEvent {
  event_type: "process_exec" | "process_exit";
  timestamp: string;
  pid: number;
  ppid: number;
  comm: string;
  argc?: number;
  argv?: string[];
  exit_code?: number;
  duration_ns?: number;
}

export function parseLines(stdout: string): JsonEvent[] {
  return stdout.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
}

/** The events with pids renamed p0, p1, ... in order of appearance (the tracer's parent is p0). */
export function normalized(events: JsonEvent[]): string[] {
  const names = new Map<number, string>();
  const name = (pid: number) => {
    if (!names.has(pid)) names.set(pid, `p${names.size}`);
    return names.get(pid)!;
  };
  return events.map((e) => {
    const ppid = name(e.ppid), pid = name(e.pid);
    return e.event_type === "process_exec"
      ? `exec ${pid} parent ${ppid} ${JSON.stringify(e.argv)}`
      : `exit ${pid} parent ${ppid} code ${e.exit_code}`;
  });
}

/** What proctrace_tree.sh must produce, in order. */
export const TREE_EVENTS = [
  `exec p1 parent p0 ["/bin/sh","${TREE_SCRIPT}"]`,
  `exec p2 parent p1 ["/bin/true","first arg","second"]`,
  `exit p2 parent p1 code 0`,
  `exec p3 parent p1 ["/bin/sh","-c","exit 7","sh-arg"]`,
  `exit p3 parent p1 code 7`,
  `exec p5 parent p4 ["/bin/sh","-c","exit 3"]`,
  `exit p5 parent p4 code 3`,
  `exit p4 parent p1 code 4`,
  `exec p6 parent p1 ["/bin/sleep","0.05"]`,
  `exit p6 parent p1 code 0`,
  `exit p1 parent p0 code 5`,
];
