/** Possible CPUs (what bpf_get_smp_processor_id can return), from sysfs: "0-7" -> 8. */
export function possibleCpus(): number {
  const text = Deno.readTextFileSync("/sys/devices/system/cpu/possible").trim();
  let n = 0;
  for (const part of text.split(",")) {
    const [lo, hi] = part.split("-").map(Number);
    n = Math.max(n, (hi ?? lo) + 1);
  }
  return n;
}
