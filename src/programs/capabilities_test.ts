import assert from "node:assert/strict";
import { ensureTracefs, kernelBtfHas } from "../ffi/shim.ts";
import {
  explainLog,
  failedProgramOf,
  probeFeatures,
  tracepointExists,
  tracepointOf,
} from "./capabilities.ts";

/** libbpf 1.1's log when the verifier refuses a program (as seen on this kernel). */
const VERIFIER_LOG = `libbpf: prog 'tcp_life_send_reset': BPF program load failed: Permission denied
libbpf: prog 'tcp_life_send_reset': -- BEGIN PROG LOAD LOG --
0: R1=ctx(off=0,imm=0) R10=fp0
; int tcp_life_send_reset(void *ctx)
0: (b7) r2 = 8
6: (79) r1 = *(u64 *)(r1 +0)
dereference of modified ctx ptr R1 off=16 disallowed
processed 7 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0
-- END PROG LOAD LOG --
libbpf: prog 'tcp_life_send_reset': failed to load: -13
libbpf: failed to load object 'tcp_life'
load tcp_life: Permission denied
`;

/** libbpf 1.1's log for a CO-RE relocation the kernel's BTF cannot satisfy. */
const CORE_LOG = `libbpf: prog 'tcp_life_send_reset': BPF program load failed: Invalid argument
libbpf: prog 'tcp_life_send_reset': -- BEGIN PROG LOAD LOG --
0: R1=ctx(off=0,imm=0) R10=fp0
; count_reset(ctx->skaddr, 1);
0: (85) call unknown#195896080
0: <invalid CO-RE relocation>
failed to resolve CO-RE relocation <byte_off> [12] struct trace_event_raw_tcp_send_reset.skaddr (0:1 @ offset 8)
processed 1 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0
-- END PROG LOAD LOG --
libbpf: prog 'tcp_life_send_reset': failed to load: -22
libbpf: failed to load object 'tcp_life'
load tcp_life: Invalid argument
`;

Deno.test("explainLog: the verifier's last words for the program it refused", () => {
  assert.equal(
    explainLog(VERIFIER_LOG),
    "the verifier refused tcp_life_send_reset: 6: (79) r1 = *(u64 *)(r1 +0); dereference of modified ctx ptr R1 off=16 disallowed",
  );
});

Deno.test("explainLog: a failed CO-RE relocation names the type and field", () => {
  assert.equal(
    explainLog(CORE_LOG),
    "the verifier refused tcp_life_send_reset: failed to resolve CO-RE relocation <byte_off> [12] struct trace_event_raw_tcp_send_reset.skaddr (0:1 @ offset 8)",
  );
});

Deno.test("explainLog: without a verifier log, libbpf's lines that name a program", () => {
  const log =
    `libbpf: prog 'packet_drop': relo #3: target candidate search failed for [7] struct x: -3
libbpf: failed to load object 'packet_drop'
load packet_drop: No such process
`;
  assert.equal(
    explainLog(log),
    "prog 'packet_drop': relo #3: target candidate search failed for [7] struct x: -3",
  );
  assert.equal(
    explainLog("libbpf: failed to load object 'x'\nload x: Operation not permitted\n"),
    "load x: Operation not permitted",
  );
});

Deno.test("failedProgramOf: the program libbpf says failed, or null", () => {
  assert.equal(failedProgramOf(VERIFIER_LOG), "tcp_life_send_reset");
  assert.equal(failedProgramOf(CORE_LOG), "tcp_life_send_reset");
  assert.equal(failedProgramOf("libbpf: map 'events': failed to create: -1\n"), null);
});

Deno.test("tracepointOf: tracepoint sections only", () => {
  assert.deepEqual(tracepointOf("tracepoint/skb/kfree_skb"), {
    category: "skb",
    name: "kfree_skb",
  });
  assert.deepEqual(tracepointOf("tp/tcp/tcp_send_reset"), {
    category: "tcp",
    name: "tcp_send_reset",
  });
  assert.equal(tracepointOf("iter/tcp"), null);
  assert.equal(tracepointOf("cgroup_skb/egress"), null);
});

/** Field names of a tracepoint's format file: what the kernel says, read without BTF. */
function formatFields(category: string, name: string): string[] {
  const text = Deno.readTextFileSync(`/sys/kernel/tracing/events/${category}/${name}/format`);
  return [...text.matchAll(/field:[^;]*?\b(\w+)(?:\[\d*\])?;/g)].map((m) => m[1]);
}

const root = Deno.uid() === 0 || (Deno.env.get("CI") ?? "") !== "";

Deno.test({
  name: "kernelBtfHas agrees with the tracepoints' format files of the running kernel",
  ignore: !root,
  fn() {
    assert.equal(kernelBtfHas("struct sk_buff"), true);
    assert.equal(kernelBtfHas("struct sk_buff", "len"), true);
    assert.equal(kernelBtfHas("struct sk_buff", "no_such_member"), false);
    assert.equal(kernelBtfHas("struct no_such_struct_here"), false);
    // an anonymous union member of struct sock_common
    assert.equal(kernelBtfHas("struct sock_common", "skc_daddr"), true);
    assert.throws(() => kernelBtfHas("sk_buff"), /struct, union, enum or typedef/);
    // the server mounts tracefs before it looks for tracepoints (ProgramManager.start); on a
    // freshly booted host nothing has mounted it yet when this unit test runs
    ensureTracefs();
    assert.ok(tracepointExists("skb", "kfree_skb"));
    assert.ok(!tracepointExists("skb", "no_such_tracepoint"));
    const kfree = formatFields("skb", "kfree_skb");
    assert.ok(kfree.includes("location"), `kfree_skb fields: ${kfree}`);
    assert.equal(
      kernelBtfHas("struct trace_event_raw_kfree_skb", "reason"),
      kfree.includes("reason"),
    );
    const destroy = formatFields("tcp", "tcp_destroy_sock");
    assert.equal(
      kernelBtfHas("struct trace_event_raw_tcp_event_sk", "family"),
      destroy.includes("family"),
    );
    assert.equal(
      kernelBtfHas("enum skb_drop_reason", "SKB_DROP_REASON_NO_SOCKET"),
      kernelBtfHas("enum skb_drop_reason"),
    );
  },
});

Deno.test({
  name: "probeFeatures: the way chosen and the fields lost follow the probe",
  ignore: !root,
  fn() {
    const [there, missing] = probeFeatures([
      {
        name: "len",
        probe: { type: "struct sk_buff", member: "len" },
        present: "read it",
        absent: "do without",
        fields: ["length"],
      },
      {
        name: "nothing",
        probe: { type: "struct sk_buff", member: "no_such_member" },
        present: "read it",
        absent: "do without",
        fields: ["a", "b"],
      },
    ]);
    assert.deepEqual(there, {
      name: "len",
      probe: "struct sk_buff.len",
      available: true,
      chosen: "read it",
      fields_unknown: [],
    });
    assert.deepEqual(missing, {
      name: "nothing",
      probe: "struct sk_buff.no_such_member",
      available: false,
      chosen: "do without",
      fields_unknown: ["a", "b"],
    });
  },
});
