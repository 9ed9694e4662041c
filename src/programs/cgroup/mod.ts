/**
 * cgroup: every cgroup v2 directory made or removed, from `bpf/cgroup.bpf.c`
 * (`cgroup:cgroup_mkdir`, `cgroup:cgroup_rmdir`). Besides being events of their own (which
 * units and containers came and went, and who made them), its records keep the cgroup cache
 * of `src/cgroup/` current, so every other program's events name their cgroup, unit and
 * container, also when the cgroup is gone a moment later. It comes first in the program list:
 * each drain takes its records before the others'.
 *
 * @module
 */

import { z } from "@hono/zod-openapi";
import {
  ATTRIBUTION_COLUMNS,
  attributionCounts,
  AttributionFields,
  attributionOf,
  AttributionSummaryFields,
} from "../../cgroup/mod.ts";
import type { EventTable, Store } from "../../store/mod.ts";
import { attributionGroups, codeField, namesParse, simpleGroup } from "../filter.ts";
import { commonFilters } from "../fields.ts";
import { structLayout } from "../layout.ts";
import { type DecoderContext, defineProgram, type RecordDecoder } from "../program.ts";
import { forEachRow, isoMicros, roundMicros, type SummaryQuery } from "../query.ts";
import { EventBase, SummaryBase } from "../schema.ts";

export const columns = {
  ...ATTRIBUTION_COLUMNS,
  /** the id of the cgroup made or removed */
  cgroup: "f64",
  action: "u8",
  level: "u8",
  truncated: "u8",
  path: "str",
} as const;

type Columns = typeof columns;

const ACTIONS = ["unknown", "mkdir", "rmdir"] as const;
const MKDIR = 1, RMDIR = 2;

const FIELDS = {
  ts_ns: 8,
  id: 8,
  pid: 4,
  level: 4,
  path_len: 2,
  action: 1,
  truncated: 1,
  comm: 16,
  path: 512,
} as const;

const textDecoder = new TextDecoder();

function decoder({ obj, store, table, clock }: DecoderContext<Columns>): RecordDecoder {
  const at = structLayout(obj, "cgroup_event", FIELDS);
  const strings = store.strings;
  const attrs = attributionOf(store);
  return (view, bytes, r, size) => {
    if (size < at.$size) {
      throw new RangeError(`cgroup record of ${size} bytes, expected ${at.$size}`);
    }
    const id = view.getUint32(r + at.id, true) + view.getUint32(r + at.id + 4, true) * 4294967296;
    const action = bytes[r + at.action];
    const truncated = bytes[r + at.truncated] !== 0;
    const len = Math.min(view.getUint16(r + at.path_len, true), FIELDS.path - 1);
    const path = textDecoder.decode(bytes.subarray(r + at.path, r + at.path + len)) || "/";
    const ts = clock.wallMs(
      view.getUint32(r + at.ts_ns, true),
      view.getUint32(r + at.ts_ns + 4, true),
    );
    // a cut path is not taken: a scan reads the whole one when the id is asked for
    if (action === MKDIR && !truncated) attrs.cache.created(id, path);
    const s = store.append(table as unknown as EventTable);
    const c = table.cols;
    c.ts[s] = ts;
    c.pid[s] = view.getUint32(r + at.pid, true);
    c.comm[s] = strings.internBytes(bytes, r + at.comm, 16);
    c.cgroup[s] = id;
    c.action[s] = action;
    c.level[s] = Math.max(0, Math.min(255, view.getInt32(r + at.level, true)));
    c.truncated[s] = truncated ? 1 : 0;
    c.path[s] = strings.intern(path);
    c.attr[s] = attrs.idOf(id);
    if (action === RMDIR) attrs.cache.removed(id, ts, truncated ? undefined : path);
  };
}

const CgroupEvent = EventBase.extend({
  type: z.literal("cgroup"),
  pid: z.number().int().openapi({ description: "the process that made or removed it" }),
  command: z.string().openapi({ description: "its command (systemd, runc, mkdir, ...)" }),
  action: z.enum(["mkdir", "rmdir"]).openapi({ description: "made or removed" }),
  cgroup_id: z.number().int().openapi({ description: "the cgroup's id (its inode number)" }),
  level: z.number().int().openapi({ description: "its depth below the root" }),
  path: z.string().openapi({
    description: "its path as the kernel reported it (cut at 511 bytes; see path_truncated)",
    example: "/system.slice/nginx.service",
  }),
  path_truncated: z.boolean(),
  ...AttributionFields,
}).openapi("CgroupEvent", {
  description:
    "a cgroup v2 directory made or removed; cgroup_path, unit and container describe that cgroup",
});

const Count = z.number().int().nonnegative();

const CgroupSummary = SummaryBase.extend({
  events: Count.openapi({ description: "cgroups made or removed in the window" }),
  by_action: z.record(z.string(), Count),
  ...AttributionSummaryFields,
  known_cgroups: Count.openapi({
    description: "cgroups the cache knows now (existing ones and removed ones it still keeps)",
  }),
  removed_known: Count.openapi({ description: "removed cgroups it still keeps" }),
  retention_seconds: Count.openapi({ description: "how long a removed cgroup is kept" }),
  scans: Count.openapi({ description: "scans of the cgroup tree since start" }),
}).openapi("CgroupSummary");

function toJson(table: EventTable<Columns>, s: number, store: Store) {
  const c = table.cols;
  return {
    type: "cgroup" as const,
    wall_time: isoMicros(c.ts[s]),
    timestamp_ms: roundMicros(c.ts[s]),
    pid: c.pid[s],
    command: store.strings.get(c.comm[s]),
    action: ACTIONS[c.action[s]] ?? "unknown",
    cgroup_id: c.cgroup[s],
    level: c.level[s],
    path: store.strings.get(c.path[s]),
    path_truncated: c.truncated[s] !== 0,
    ...attributionOf(store).json(c.attr[s]),
  };
}

function summarize(table: EventTable<Columns>, query: SummaryQuery, store: Store) {
  const c = table.cols;
  const byAction = new Map<string, number>();
  const byAttr = new Map<number, number>();
  const events = forEachRow(table as unknown as EventTable, store, query, (s) => {
    const action = ACTIONS[c.action[s]] ?? "unknown";
    byAction.set(action, (byAction.get(action) ?? 0) + 1);
    byAttr.set(c.attr[s], (byAttr.get(c.attr[s]) ?? 0) + 1);
  });
  const cache = attributionOf(store).cache;
  return {
    events,
    by_action: Object.fromEntries([...byAction].sort((a, b) => b[1] - a[1])),
    ...attributionCounts(store, byAttr),
    known_cgroups: cache.size,
    removed_known: cache.removedKnown,
    retention_seconds: Math.round(cache.retentionMs / 1000),
    scans: cache.scans,
  };
}

export const cgroup = defineProgram<Columns>({
  name: "cgroup",
  // a record (with its 512-byte path) is about 570 bytes: 1 MiB holds about 1800, a burst of
  // containers starting; one lost costs a read of /sys/fs/cgroup when its id is asked for
  ringSize: 1024 * 1024,
  description:
    "Every cgroup v2 directory made or removed (systemd units, containers): its id, path, unit and container, and who made it. Keeps the attribution of every other program's events current.",
  columns,
  eventSchema: CgroupEvent,
  summarySchema: CgroupSummary,
  optionalHooks: {
    cgroup_mkdir: [],
    cgroup_rmdir: [],
  },
  filters: {
    ...commonFilters(),
    action: codeField("made (mkdir) or removed (rmdir)", {
      example: "mkdir",
      parse: namesParse({ mkdir: MKDIR, rmdir: RMDIR }),
      key: (cols) => (s) => cols.action[s],
    }),
  },
  groups: {
    ...attributionGroups(),
    action: simpleGroup("mkdir or rmdir", (table) => (s) => ACTIONS[table.cols.action[s]]),
    command: simpleGroup(
      "the command that made or removed it",
      (table, store) => (s) => store.strings.get(table.cols.comm[s]),
    ),
  },
  decoder,
  toJson,
  summarize,
});
