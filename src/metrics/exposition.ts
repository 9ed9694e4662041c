/**
 * The Prometheus text exposition format (version 0.0.4): families of samples written as text.
 *
 * @module
 */

/** One metric family: all samples share name, type and help. */
export interface MetricFamily {
  name: string;
  type: "counter" | "gauge" | "histogram";
  help: string;
  /** A histogram's samples carry `suffix` `_bucket` (with an `le` label), `_sum` or `_count`. */
  samples: { labels?: Record<string, string>; value: number; suffix?: string }[];
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function escapeHelp(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

/** Renders families as exposition text. */
export function renderMetrics(families: MetricFamily[]): string {
  let out = "";
  for (const f of families) {
    out += `# HELP ${f.name} ${escapeHelp(f.help)}\n# TYPE ${f.name} ${f.type}\n`;
    for (const s of f.samples) {
      const labels = s.labels && Object.keys(s.labels).length
        ? `{${Object.entries(s.labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(",")}}`
        : "";
      out += `${f.name}${s.suffix ?? ""}${labels} ${formatValue(s.value)}\n`;
    }
  }
  return out;
}
