/**
 * Maps differential test against the kernel, array family: array and
 * per-CPU array under random operations.
 */
import { mapDiffSegment, randomOpsTests } from "./maps_kernel_diff_env.ts";

randomOpsTests([
  { type: "array", keySize: 4, valueSize: 12 },
  { type: "percpu_array", keySize: 4, valueSize: 16 },
], mapDiffSegment("array"));
