/**
 * The metric family every program has: its events by systemd unit, a label bounded like the
 * command labels (the busiest units at the scrapes until the cap is full; the rest `other`).
 *
 * @module
 */

import { attributionOf, unitTally } from "../cgroup/mod.ts";
import type { MetricFamily } from "../metrics/exposition.ts";
import { LabelCap } from "../metrics/label_cap.ts";
import type { Store } from "../store/mod.ts";

const caps = new WeakMap<Store, Map<string, LabelCap>>();

/**
 * `ebpf_server_events_by_unit_total{program, unit}`: the events of each program by unit (`none`
 * without one), counted at ingest; per program, `max` units get a label of their own.
 */
export function unitFamily(store: Store, programs: readonly string[], max: number): MetricFamily {
  let perProgram = caps.get(store);
  if (!perProgram) caps.set(store, perProgram = new Map());
  const attrs = attributionOf(store);
  const unitOf = (attr: number) => attrs.json(attr).unit ?? "none";
  const samples: MetricFamily["samples"] = [];
  for (const program of programs) {
    let cap = perProgram.get(program);
    if (!cap) perProgram.set(program, cap = new LabelCap(max));
    const { own, other } = cap.split(
      unitTally(store, program),
      (attr) => store.strings.intern(unitOf(attr)),
    );
    const byUnit = new Map<string, number>();
    for (const [attr, n] of own) byUnit.set(unitOf(attr), (byUnit.get(unitOf(attr)) ?? 0) + n);
    for (const [unit, value] of byUnit) samples.push({ labels: { program, unit }, value });
    let rest = 0;
    for (const n of other.values()) rest += n;
    if (other.size) samples.push({ labels: { program, unit: "other" }, value: rest });
  }
  return {
    name: "ebpf_server_events_by_unit_total",
    type: "counter",
    help:
      `events by program and systemd unit (none: no unit or cgroup not known; the ${max} busiest units of each program get a label, the rest are "other")`,
    samples,
  };
}
