/**
 * Where the cgroup v2 hierarchy is mounted: `/sys/fs/cgroup` on most current hosts,
 * `/sys/fs/cgroup/unified` on hosts with the hybrid layout (v1 controllers beside it). Read from
 * `/proc/self/mountinfo`, never guessed; the shim checks the directory's filesystem magic again
 * when it attaches (`CGROUP2_SUPER_MAGIC`).
 *
 * @module
 */

/** A cgroup2 mount as `/proc/self/mountinfo` lists it. */
export interface CgroupMount {
  /** Where it is mounted. */
  mountPoint: string;
  /** Which directory of the hierarchy it shows (`/` for the whole of it). */
  root: string;
}

/** Undoes mountinfo's octal escapes (`\040` for a space). */
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal) => String.fromCharCode(parseInt(octal, 8)));
}

/** Every cgroup2 mount in a mountinfo text, in its order. */
export function cgroup2Mounts(mountinfo: string): CgroupMount[] {
  const mounts: CgroupMount[] = [];
  for (const line of mountinfo.split("\n")) {
    const fields = line.split(" ");
    const dash = fields.indexOf("-");
    if (dash < 0 || fields[dash + 1] !== "cgroup2" || fields.length < 5) continue;
    mounts.push({ root: unescape(fields[3]), mountPoint: unescape(fields[4]) });
  }
  return mounts;
}

/**
 * The mount point of the whole cgroup v2 hierarchy (of this cgroup namespace): the first
 * cgroup2 mount that shows its root, else the first one; null when there is none.
 *
 * @example cgroup2Root() // "/sys/fs/cgroup/unified" on a hybrid host
 */
export function cgroup2Root(mountinfo?: string): string | null {
  let text = mountinfo;
  if (text === undefined) {
    try {
      text = Deno.readTextFileSync("/proc/self/mountinfo");
    } catch {
      return null;
    }
  }
  const mounts = cgroup2Mounts(text);
  return (mounts.find((m) => m.root === "/") ?? mounts[0])?.mountPoint ?? null;
}
