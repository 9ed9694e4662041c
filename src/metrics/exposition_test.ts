/**
 * The text exposition format: HELP and TYPE lines, label escaping, special float values.
 *
 * @module
 */

import assert from "node:assert/strict";
import { renderMetrics } from "./exposition.ts";

Deno.test("renderMetrics: HELP and TYPE lines precede each family's samples", () => {
  const text = renderMetrics([
    {
      name: "a_total",
      type: "counter",
      help: "things counted",
      samples: [{ labels: { program: "x" }, value: 1 }, { labels: { program: "y" }, value: 2 }],
    },
    { name: "b", type: "gauge", help: "a level", samples: [{ value: 3 }] },
  ]);
  assert.equal(
    text,
    [
      "# HELP a_total things counted",
      "# TYPE a_total counter",
      'a_total{program="x"} 1',
      'a_total{program="y"} 2',
      "# HELP b a level",
      "# TYPE b gauge",
      "b 3",
      "",
    ].join("\n"),
  );
});

Deno.test("renderMetrics: a family without samples still has its HELP and TYPE", () => {
  const text = renderMetrics([{ name: "c_total", type: "counter", help: "none yet", samples: [] }]);
  assert.equal(text, "# HELP c_total none yet\n# TYPE c_total counter\n");
});

Deno.test("renderMetrics: no labels and empty labels both give a bare name", () => {
  const text = renderMetrics([
    { name: "g", type: "gauge", help: "h", samples: [{ value: 1 }, { labels: {}, value: 2 }] },
  ]);
  assert.deepEqual(text.split("\n").slice(2, 4), ["g 1", "g 2"]);
});

Deno.test('renderMetrics: label values escape \\, " and newline', () => {
  const text = renderMetrics([{
    name: "m",
    type: "gauge",
    help: "h",
    samples: [
      { labels: { command: "back\\slash" }, value: 1 },
      { labels: { command: 'say "hi"' }, value: 2 },
      { labels: { command: "two\nlines" }, value: 3 },
      { labels: { command: '\\"\n', other: "plain" }, value: 4 },
      { labels: { command: "tab\tstays, unicode ü stays" }, value: 5 },
    ],
  }]);
  const lines = text.split("\n");
  assert.equal(lines[2], 'm{command="back\\\\slash"} 1');
  assert.equal(lines[3], 'm{command="say \\"hi\\""} 2');
  assert.equal(lines[4], 'm{command="two\\nlines"} 3');
  // A backslash is escaped once, before the quote and newline escapes add their own.
  assert.equal(lines[5], 'm{command="\\\\\\"\\n",other="plain"} 4');
  assert.equal(lines[6], 'm{command="tab\tstays, unicode ü stays"} 5');
  assert.equal(lines.length, 8, "a newline in a label value does not break the line");
});

Deno.test("renderMetrics: HELP text escapes \\ and newline (quotes stay)", () => {
  const text = renderMetrics([
    { name: "m", type: "counter", help: 'a\\b\nc "quoted"', samples: [] },
  ]);
  assert.equal(text.split("\n")[0], '# HELP m a\\\\b\\nc "quoted"');
});

Deno.test("renderMetrics: +Inf, -Inf and NaN as the format spells them", () => {
  const text = renderMetrics([{
    name: "v",
    type: "gauge",
    help: "h",
    samples: [
      { labels: { k: "inf" }, value: Infinity },
      { labels: { k: "ninf" }, value: -Infinity },
      { labels: { k: "nan" }, value: NaN },
      { labels: { k: "frac" }, value: 0.25 },
      { labels: { k: "big" }, value: 2 ** 53 },
      { labels: { k: "neg" }, value: -3 },
    ],
  }]);
  assert.deepEqual(text.split("\n").slice(2, 8), [
    'v{k="inf"} +Inf',
    'v{k="ninf"} -Inf',
    'v{k="nan"} NaN',
    'v{k="frac"} 0.25',
    'v{k="big"} 9007199254740992',
    'v{k="neg"} -3',
  ]);
});
