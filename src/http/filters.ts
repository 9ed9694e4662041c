/**
 * The field filters of programs as query parameters: one optional string parameter per field,
 * parsed by the field (a comma list, `!` to exclude), a malformed value a 400 naming the
 * parameter; and the parsed values gathered into a {@linkcode Where}.
 *
 * @module
 */

import { z } from "@hono/zod-openapi";
import type { Program } from "../programs/program.ts";
import {
  type FilterField,
  MAX_VALUES,
  type ParsedParam,
  parseParam,
  type Where,
} from "../programs/filter.ts";

/** The query parameter of one field. */
function param(name: string, field: FilterField) {
  return z.union([z.string(), z.array(z.string())]).optional()
    .transform((text, ctx): ParsedParam | undefined => {
      if (text === undefined) return undefined;
      if (Array.isArray(text)) {
        ctx.addIssue({
          code: "custom",
          message: "is given more than once: give one comma list (a,b matches any of them)",
        });
        return z.NEVER;
      }
      try {
        return parseParam(field, text);
      } catch (err) {
        ctx.addIssue({ code: "custom", message: (err as Error).message });
        return z.NEVER;
      }
    })
    .openapi({
      type: "string",
      description:
        `Filter by ${field.description}. A comma list matches any of its values, a value starting with ! excludes it (at most ${MAX_VALUES} values); different parameters must all hold.`,
      example: field.example,
      param: { name, in: "query" },
    });
}

/** The query parameters of `fields`, by name. */
export function filterParams(fields: Readonly<Record<string, FilterField>> | undefined) {
  const shape: Record<string, ReturnType<typeof param>> = {};
  for (const [name, field] of Object.entries(fields ?? {})) shape[name] = param(name, field);
  return shape;
}

/**
 * Fields whose values mean the same in every program that has them: the routes over several
 * programs take these (the others, such as `outcome`, differ by program and are taken by each
 * program's own routes).
 */
export const SHARED_FIELDS = [
  "unit",
  "container",
  "container_runtime",
  "cgroup",
  "uid",
  "source",
  "destination",
  "port",
  "protocol",
  "family",
] as const;

/**
 * The shared fields of several programs by name (for routes over all of them): the first
 * program's field of each name parses it.
 */
export function unionFields(programs: Iterable<Program>): Record<string, FilterField> {
  const out: Record<string, FilterField> = {};
  for (const program of programs) {
    for (const name of SHARED_FIELDS) {
      const field = program.filters?.[name];
      if (field) out[name] ??= field;
    }
  }
  return out;
}

/** The parsed field parameters of a validated query. */
export function whereOf(
  query: Record<string, unknown>,
  fields: Readonly<Record<string, FilterField>> | undefined,
): Where {
  const where = new Map<string, ParsedParam>();
  for (const name of Object.keys(fields ?? {})) {
    const p = query[name] as ParsedParam | undefined;
    if (p !== undefined) where.set(name, p);
  }
  return where;
}

/** The echo of every filter applied: field filters, and pid and command when given. */
export function filterEcho(
  query: { pid?: number; command?: string },
  where: Where,
): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  if (query.pid !== undefined) out.pid = [String(query.pid)];
  if (query.command !== undefined) out.command = [query.command];
  for (const [name, p] of where) out[name] = p.echo;
  return out;
}

/** The OpenAPI shape of the echo. */
export const FilterEcho = z.record(z.string(), z.array(z.string())).openapi({
  description:
    "the filters applied, each parameter's values in normal form (excluded ones with their !); pid and command when given",
  example: {
    unit: ["nginx.service"],
    result: ["!ok", "!EINPROGRESS"],
    destination: ["10.0.0.0/8"],
  },
});
