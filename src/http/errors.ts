/**
 * One shape for every error answer, and the hook that turns zod's validation failures into a
 * 400 naming the field.
 *
 * @module
 */

import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { ZodError } from "zod";

export const ErrorResponse = z.object({
  error: z.string().openapi({
    description: "what was wrong, naming the field",
    example: "invalid query parameter 'pid': must be a non-negative integer",
  }),
  issues: z.array(z.object({
    field: z.string().openapi({ description: "the parameter or body field" }),
    message: z.string(),
  })).optional(),
}).openapi("Error");

const TARGET_NAME: Record<string, string> = {
  query: "query parameter",
  param: "path parameter",
  json: "body field",
  header: "header",
};

/** Field-by-field messages of a validation failure. */
export function describeIssues(error: ZodError, target: string) {
  const kind = TARGET_NAME[target] ?? target;
  return error.issues.flatMap((issue) => {
    if (issue.code === "unrecognized_keys") {
      return issue.keys.map((key) => ({
        field: key,
        message: `unknown ${kind} '${key}'`,
      }));
    }
    const field = issue.path.join(".") || "(body)";
    return [{ field, message: `invalid ${kind} '${field}': ${issue.message}` }];
  });
}

/** The `defaultHook` of the app: a 400 with every issue, the first one as `error`. */
export function validationHook(
  result: { success: true } | { success: false; error: ZodError; target: string },
  c: Context,
) {
  if (result.success) return;
  const issues = describeIssues(result.error, result.target);
  return c.json({ error: issues[0]?.message ?? "invalid request", issues }, 400);
}

/** The OpenAPI entry of an error answer. */
export function errorContent(description: string) {
  return { description, content: { "application/json": { schema: ErrorResponse } } };
}
