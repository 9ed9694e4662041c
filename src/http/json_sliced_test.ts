import assert from "node:assert/strict";
import { jsonSliced } from "./service.ts";

const decoder = new TextDecoder();

async function text(value: Record<string, unknown>): Promise<string> {
  return (await jsonSliced(value)).map((c) => decoder.decode(c)).join("");
}

Deno.test("jsonSliced writes what JSON.stringify writes", async () => {
  const event = (i: number) => ({
    pid: i,
    command: `c${i}`,
    ret: null,
    skip: undefined,
    a: [1, 2],
  });
  const values: Record<string, unknown>[] = [
    {},
    { a: 1, b: "x", c: null, d: undefined, e: true },
    { list: [], empty: {} },
    { events: Array.from({ length: 50_000 }, (_, i) => event(i)), count: 50_000 },
    {
      total: 3,
      events_by_pid: { "1": [event(1), event(2)], "7": [] },
      nested: { a: { b: [1] } },
      holes: [undefined, 1, () => 0],
    },
  ];
  for (const v of values) assert.equal(await text(v), JSON.stringify(v));
});

Deno.test("jsonSliced cuts a long list into more than one chunk", async () => {
  const events = Array.from({ length: 200_000 }, (_, i) => ({ pid: i, command: "curl" }));
  const chunks = await jsonSliced({ events });
  assert.ok(chunks.length > 1, `${chunks.length} chunk(s)`);
});
