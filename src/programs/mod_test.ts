import assert from "node:assert/strict";
import { connection } from "./connection/mod.ts";
import { type Program, programs, registry } from "./mod.ts";

const ROOT = new URL("../../", import.meta.url);

function exists(url: URL): boolean {
  try {
    Deno.statSync(url);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

function bpfSources(): string[] {
  const names: string[] = [];
  for (const entry of Deno.readDirSync(new URL("bpf/", ROOT))) {
    if (entry.isFile && entry.name.endsWith(".bpf.c")) names.push(entry.name.slice(0, -6));
  }
  return names.sort();
}

Deno.test("every bpf/*.bpf.c has a program of that name and a src/programs/<name>/mod.ts", () => {
  const sources = bpfSources();
  assert.ok(sources.length > 0, "no bpf/*.bpf.c found");
  for (const name of sources) {
    assert.ok(programs.has(name), `bpf/${name}.bpf.c has no program '${name}' in programs`);
    assert.ok(
      exists(new URL(`src/programs/${name}/mod.ts`, ROOT)),
      `bpf/${name}.bpf.c has no src/programs/${name}/mod.ts`,
    );
  }
});

Deno.test("every program has bpf/<name>.bpf.c and bpf/<name>.h", () => {
  assert.ok(programs.size > 0);
  for (const [name, program] of programs) {
    assert.equal(program.name, name);
    assert.ok(exists(new URL(`bpf/${name}.bpf.c`, ROOT)), `no bpf/${name}.bpf.c`);
    assert.ok(exists(new URL(`bpf/${name}.h`, ROOT)), `no bpf/${name}.h`);
    assert.ok(exists(new URL(`src/programs/${name}/mod.ts`, ROOT)));
  }
});

Deno.test("registry returns the programs by name, in order", () => {
  const other = { ...connection, name: "other" } as Program;
  const map = registry([connection, other]);
  assert.deepEqual([...map.keys()], ["connection", "other"]);
  assert.equal(map.get("other"), other);
});

Deno.test("registry throws on a duplicate name", () => {
  const twin = { ...connection } as Program;
  assert.throws(
    () => registry([connection, twin]),
    (err: unknown) => err instanceof TypeError && err.message.includes("'connection'"),
  );
});

Deno.test("registry throws on a bad name", () => {
  for (const name of ["Connection", "tcp-life", "1st", "", "a b", "_x"]) {
    assert.throws(
      () => registry([{ ...connection, name } as Program]),
      TypeError,
      `'${name}' should be refused`,
    );
  }
  assert.doesNotThrow(() => registry([{ ...connection, name: "tcp_life2" } as Program]));
});
