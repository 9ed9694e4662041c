import assert from "node:assert/strict";
import { describeCgroup } from "./path.ts";

const ID = "0123456789abcdef".repeat(4);

Deno.test("systemd units: the deepest unit on the path", () => {
  assert.deepEqual(describeCgroup("/system.slice/nginx.service"), {
    unit: "nginx.service",
    container_id: null,
    container_runtime: null,
  });
  assert.equal(
    describeCgroup("/user.slice/user-1000.slice/session-3.scope").unit,
    "session-3.scope",
  );
  assert.equal(describeCgroup("/system.slice").unit, "system.slice");
  assert.equal(describeCgroup("/system.slice/nginx.service/worker").unit, "nginx.service");
  assert.deepEqual(describeCgroup("/"), {
    unit: null,
    container_id: null,
    container_runtime: null,
  });
  assert.equal(describeCgroup("/ebpf-test-1/plain").unit, null);
});

Deno.test("containers: systemd scopes of each runtime", () => {
  for (
    const [prefix, runtime] of [
      ["docker-", "docker"],
      ["cri-containerd-", "containerd"],
      ["crio-", "cri-o"],
      ["libpod-", "podman"],
    ]
  ) {
    const got = describeCgroup(`/system.slice/${prefix}${ID}.scope`);
    assert.deepEqual(got, {
      unit: `${prefix}${ID}.scope`,
      container_id: ID,
      container_runtime: runtime,
    });
  }
  // not 64 hex: no container
  assert.equal(describeCgroup(`/system.slice/docker-${ID.slice(1)}.scope`).container_id, null);
  assert.equal(describeCgroup("/system.slice/crio-conmon-x.scope").container_id, null);
});

Deno.test("containers: cgroupfs drivers and kubepods paths", () => {
  assert.deepEqual(describeCgroup(`/docker/${ID}`), {
    unit: null,
    container_id: ID,
    container_runtime: "docker",
  });
  assert.deepEqual(describeCgroup(`/kubepods/burstable/pod1234-5678/${ID}`), {
    unit: null,
    container_id: ID,
    container_runtime: "cri",
  });
  const slice =
    `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod12_34.slice/cri-containerd-${ID}.scope`;
  assert.deepEqual(describeCgroup(slice), {
    unit: `cri-containerd-${ID}.scope`,
    container_id: ID,
    container_runtime: "containerd",
  });
  assert.equal(describeCgroup(`/machine.slice/libpod-${ID}.scope/container`).container_id, ID);
});
