/**
 * What the running kernel lets each program do, from the real server: `/api/capabilities`,
 * `/health`'s short form, `/api/drop-reasons` and the drop summary, checked against what the
 * kernel's own tracepoint format files say (read here without BTF). On every kernel of the
 * matrix (tests/kernels/) the same assertions hold: every program runs, every hook attaches, and
 * exactly the fields the kernel cannot give are unknown.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { z } from "@hono/zod-openapi";
import type { Capabilities as CapabilitiesSchema } from "../src/http/routes_capabilities.ts";
import { canRunPrivileged, privileged, startServer } from "./_server.ts";

type Capabilities = z.infer<typeof CapabilitiesSchema>;
type ProgramCaps = Capabilities["programs"][number];
type FeatureStatus = ProgramCaps["features"][number];

/** Field names in a tracepoint's format file (what the kernel says, without BTF). */
function formatFields(category: string, name: string): string[] {
  for (const dir of ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]) {
    let text: string;
    try {
      text = Deno.readTextFileSync(`${dir}/events/${category}/${name}/format`);
    } catch {
      continue;
    }
    return [...text.matchAll(/field:[^;]*?\b(\w+)(?:\[\d*\])?;/g)].map((m) => m[1]);
  }
  throw new Error(`no format file for tracepoint ${category}:${name}`);
}

function feature(program: ProgramCaps, name: string): FeatureStatus {
  const found = program.features.find((f) => f.name === name);
  assert.ok(found, `${program.name} probes ${name}: ${JSON.stringify(program.features)}`);
  return found;
}

Deno.test({
  name: privileged("capabilities: every program runs on this kernel, with what it lacks named"),
  ignore: !canRunPrivileged,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await using server = await startServer();
    const caps = await server.json<Capabilities>("/api/capabilities");
    const byName = new Map(caps.programs.map((p) => [p.name, p]));
    const kfreeHasReason = formatFields("skb", "kfree_skb").includes("reason");
    const destroyHasFamily = formatFields("tcp", "tcp_destroy_sock").includes("family");

    await t.step("the kernel: release and BTF", () => {
      assert.equal(caps.kernel.release, Deno.osRelease());
      assert.equal(caps.kernel.btf, "/sys/kernel/btf/vmlinux");
      assert.deepEqual([...byName.keys()], [
        "cgroup",
        "connection",
        "packet_drop",
        "tcp_life",
        "dns",
      ]);
    });

    await t.step("every program running, every hook attached (iterators run on demand)", () => {
      for (const program of caps.programs) {
        assert.equal(program.state, "running", program.name);
        assert.ok(program.hooks.length > 0, `${program.name} has hooks`);
        for (const hook of program.hooks) {
          if (hook.attach.startsWith("iter/")) {
            assert.equal(hook.attached, false);
            assert.match(hook.reason ?? "", /iterator/);
          } else {
            assert.equal(hook.attached, true, `${program.name}: ${JSON.stringify(hook)}`);
            assert.equal(hook.reason, null);
          }
        }
      }
      const cgroup = byName.get("cgroup")!;
      assert.deepEqual(
        cgroup.hooks.map((h) => [h.attach, h.optional]),
        [["tracepoint/cgroup/cgroup_mkdir", true], ["tracepoint/cgroup/cgroup_rmdir", true]],
      );
      const life = byName.get("tcp_life")!;
      const reset = life.hooks.find((h) => h.program === "tcp_life_send_reset");
      assert.equal(reset?.attach, "tracepoint/tcp/tcp_send_reset");
      assert.equal(reset?.optional, true);
      assert.deepEqual(reset?.fields_unknown, ["resets_sent"]);
    });

    await t.step("features follow the kernel's tracepoint formats", () => {
      const drop = byName.get("packet_drop")!;
      const reason = feature(drop, "drop_reason");
      assert.equal(reason.probe, "struct trace_event_raw_kfree_skb.reason");
      assert.equal(reason.available, kfreeHasReason);
      assert.deepEqual(reason.fields_unknown, kfreeHasReason ? [] : ["reason", "reason_code"]);
      assert.deepEqual(drop.unknown_fields, kfreeHasReason ? [] : ["reason", "reason_code"]);
      const family = feature(byName.get("tcp_life")!, "destroy_sock_family");
      assert.equal(family.available, destroyHasFamily);
      assert.match(family.chosen, destroyHasFamily ? /from tcp:tcp_destroy_sock/ : /socket/);
      assert.deepEqual(byName.get("tcp_life")!.unknown_fields, []);
      assert.deepEqual(byName.get("connection")!.unknown_fields, []);
    });

    await t.step("/health says the same in short", async () => {
      const health = await server.json<{
        kernel: {
          release: string;
          unknown_fields: Record<string, string[]>;
          hooks_left_out: string[];
        };
      }>("/health");
      assert.equal(health.kernel.release, Deno.osRelease());
      assert.deepEqual(
        health.kernel.unknown_fields,
        kfreeHasReason ? {} : { packet_drop: ["reason", "reason_code"] },
      );
      assert.deepEqual(health.kernel.hooks_left_out, []);
    });

    await t.step("/api/drop-reasons and the drop summary answer on any kernel", async () => {
      const reasons = await server.json<{
        available: boolean;
        reasons: { code: number; name: string }[];
        note: string | null;
      }>("/api/drop-reasons");
      assert.equal(
        reasons.available,
        feature(byName.get("packet_drop")!, "drop_reason_names")
          .available,
      );
      if (reasons.available) {
        assert.ok(reasons.reasons.some((r) => r.name === "NO_SOCKET"), "NO_SOCKET is listed");
        assert.equal(reasons.note, null);
      } else {
        assert.deepEqual(reasons.reasons, []);
        assert.match(reasons.note ?? "", /no enum skb_drop_reason/);
      }
      const summary = await server.json<{ total_drops: number; by_reason: object }>(
        "/api/programs/packet_drop/summary?duration=60",
      );
      assert.equal(typeof summary.total_drops, "number");
    });
  },
});
