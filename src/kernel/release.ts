/**
 * Which kernel this is and where its BTF comes from: the head of `/api/capabilities`.
 *
 * @module
 */

/** Where libbpf finds the running kernel's BTF first (CO-RE relocations are made against it). */
export const KERNEL_BTF = "/sys/kernel/btf/vmlinux";

/** The running kernel, as `/api/capabilities` and the start-up log show it. */
export interface KernelInfo {
  /** `uname -r`, e.g. `6.1.0-41-amd64`: shown, never used to decide anything. */
  release: string;
  /** `uname -m`-like architecture of this build, e.g. `x86_64`. */
  arch: string;
  /** The BTF the programs were relocated against, or null when there is none. */
  btf: string | null;
}

/** The running kernel's release and BTF source. */
export function kernelInfo(): KernelInfo {
  let btf: string | null = KERNEL_BTF;
  try {
    Deno.statSync(KERNEL_BTF);
  } catch {
    btf = null;
  }
  return { release: Deno.osRelease(), arch: Deno.build.arch, btf };
}
