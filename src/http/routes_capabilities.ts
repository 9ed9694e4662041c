/**
 * `GET /api/capabilities`: what this kernel lets each program do. Each hook attached or not
 * (and why), each kernel feature probed in the kernel's BTF and the way chosen, and the event
 * fields the kernel cannot give (they answer null, not zero).
 *
 * @module
 */

import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { kernelInfo } from "../kernel/release.ts";
import { errorContent } from "./errors.ts";
import type { AppContext } from "./service.ts";

const Hook = z.object({
  program: z.string().openapi({
    description: "the BPF program's name in the object",
    example: "tcp_life_send_reset",
  }),
  attach: z.string().openapi({
    description: "what it attaches to (its ELF section)",
    example: "tracepoint/tcp/tcp_send_reset",
  }),
  optional: z.boolean().openapi({ description: "whether the program runs without it" }),
  attached: z.boolean(),
  reason: z.string().nullable().openapi({ description: "why it is not attached, or null" }),
  fields_unknown: z.array(z.string()).openapi({
    description: "event fields that are null while it is not attached",
  }),
}).openapi("Hook");

const Feature = z.object({
  name: z.string().openapi({ example: "drop_reason" }),
  probe: z.string().openapi({
    description: "what was looked up in the running kernel's BTF",
    example: "struct trace_event_raw_kfree_skb.reason",
  }),
  available: z.boolean(),
  chosen: z.string().openapi({ description: "what the program does on this kernel" }),
  fields_unknown: z.array(z.string()).openapi({
    description: "event fields that are null on this kernel because of it",
  }),
}).openapi("KernelFeature");

export const ProgramCapabilities = z.object({
  name: z.string(),
  state: z.enum(["running", "stopped", "failed"]),
  hooks: z.array(Hook),
  features: z.array(Feature),
  unknown_fields: z.array(z.string()).openapi({
    description: "every event field this kernel cannot give the program (null in its events)",
  }),
}).openapi("ProgramCapabilities");

export const KernelInfo = z.object({
  release: z.string().openapi({
    description: "the kernel release (uname -r); shown only: features are probed, not inferred",
    example: "6.1.0-41-amd64",
  }),
  arch: z.string().openapi({ example: "x86_64" }),
  btf: z.string().nullable().openapi({
    description: "the kernel BTF the programs are relocated against (CO-RE)",
    example: "/sys/kernel/btf/vmlinux",
  }),
}).openapi("KernelInfo");

export const Capabilities = z.object({
  kernel: KernelInfo,
  programs: z.array(ProgramCapabilities),
}).openapi("Capabilities");

export function capabilitiesRoutes(app: OpenAPIHono, ctx: AppContext): void {
  app.openapi(
    createRoute({
      method: "get",
      path: "/api/capabilities",
      operationId: "getCapabilities",
      tags: ["server"],
      summary: "What this kernel lets each program do: hooks, features probed, unknown fields",
      request: { query: z.object({}).strict() },
      responses: {
        200: {
          description: "capabilities",
          content: { "application/json": { schema: Capabilities } },
        },
        400: errorContent("an unknown parameter"),
      },
    }),
    (c) =>
      c.json({
        kernel: kernelInfo(),
        programs: [...ctx.programs.keys()].map((name) => ctx.manager.capabilities(name)),
      }, 200),
  );
}
