/**
 * Values of `extern ... __kconfig` variables, as libbpf fills its `.kconfig`
 * map: the LINUX_* values libbpf computes itself, for this runtime. CONFIG_*
 * options are the kernel's build options, which mean nothing to a userspace
 * runtime: like libbpf with an option it cannot find, a weak extern reads 0
 * and a strong one is refused.
 */

/** KERNEL_VERSION(a, b, c) of a release like "6.1.0-18-amd64", as libbpf's LINUX_KERNEL_VERSION. */
export function kernelVersionCode(release: string): number {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(release);
  if (!m) return 0;
  return (Number(m[1]) << 16) + (Number(m[2]) << 8) + Math.min(255, Number(m[3] ?? 0));
}

/**
 * The value of kconfig extern `name`, or undefined when it has none here.
 * LINUX_HAS_BPF_COOKIE: bpf_get_attach_cookie works (every probe link has a cookie).
 */
export function kconfigValue(name: string, release: string): bigint | undefined {
  switch (name) {
    case "LINUX_HAS_BPF_COOKIE":
      return 1n;
    case "LINUX_KERNEL_VERSION":
      return BigInt(kernelVersionCode(release));
    default:
      return undefined;
  }
}
