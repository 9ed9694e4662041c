/**
 * Whether answers may show raw kernel addresses. They are off by default: a kernel text address
 * gives away where the kernel was loaded (KASLR) to anyone who can read the API. The server sets
 * this once at start from `--expose-kernel-addresses`.
 *
 * @module
 */

let exposed = false;

/** Sets whether answers may carry raw kernel addresses (`--expose-kernel-addresses`). */
export function setKernelAddressesExposed(on: boolean): void {
  exposed = on;
}

/** Whether answers may carry raw kernel addresses. */
export function kernelAddressesExposed(): boolean {
  return exposed;
}

/** `0x...` of a kernel address when they are exposed, else undefined. */
export function kernelAddress(addr: bigint): string | undefined {
  return exposed ? `0x${addr.toString(16)}` : undefined;
}
