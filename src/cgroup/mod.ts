/**
 * Which cgroup, unit and container an event belongs to: paths of cgroup ids
 * ({@linkcode CgroupCache}), what a path names ({@linkcode describeCgroup}), and the attribution
 * column every program's table has ({@linkcode Attributions}).
 *
 * @module
 */

export { CgroupCache, type CgroupCacheOptions, hostCgroups } from "./cache.ts";
export { type CgroupOwner, describeCgroup } from "./path.ts";
export {
  ATTRIBUTION_COLUMNS,
  attributionCounts,
  AttributionFields,
  type AttributionJson,
  attributionOf,
  Attributions,
  AttributionSummaryFields,
  countAttribution,
  unitTally,
} from "./attribution.ts";
