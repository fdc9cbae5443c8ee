/** The implementation an IFUNC selects on this machine (see bpftime_ifunc_target). */
import { bpftime, cString, lastError } from "./lib.ts";

/** Address of `name`'s selected implementation relative to library `path`'s load base. */
export function ifuncTarget(path: string, name: string): bigint {
  const out = new BigUint64Array(1);
  const rc = bpftime().bpftime_ifunc_target(cString(path), cString(name), out);
  if (rc < 0) throw new Error(lastError() || `${path}: IFUNC '${name}' does not resolve`);
  return out[0];
}
