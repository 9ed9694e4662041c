#!/usr/bin/env bash
# Installs what building and running ebpf-server needs on Debian 12 / Ubuntu, as root:
# the BPF toolchain from Debian's packages and Deno from the npm registry's `deno` package.
# Idempotent: when everything is there it only checks, in well under a second.
set -euo pipefail

DENO_VERSION=${DENO_VERSION:-2.9.6}
PACKAGES=(clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev make gcc libc6-dev dpkg-dev iproute2 nftables python3)
# Only the tests need these: a real Prometheus scrapes a test server (over TLS too: openssl makes
# the test certificates), promtool checks /metrics, systemd-analyze checks the unit file, strace
# checks its system call filter against what the server calls, the README examples (this
# project's and the original project's) run with curl and jq, make test-kernels boots kernels in
# qemu from a busybox initramfs, and dnsmasq serves and dig asks the dns tests' queries.
TEST_PACKAGES=(prometheus systemd strace openssl curl jq qemu-system-x86 busybox-static kmod cpio
  xz-utils dnsmasq-base bind9-dnsutils)

log() { echo "setup: $*" >&2; }
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

wanted=("${PACKAGES[@]}")
[ "${SETUP_TEST_PACKAGES:-0}" = 1 ] && wanted+=("${TEST_PACKAGES[@]}")
missing=()
for p in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ! command -v deno >/dev/null && ! command -v npm >/dev/null; then
  missing+=(nodejs npm)
fi
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  # A policy-rc.d that says 101 keeps packages with services (prometheus) from starting them.
  policy=/usr/sbin/policy-rc.d
  made_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null && as_root chmod 755 "$policy"
    made_policy=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ "$made_policy" = 1 ] && as_root rm -f "$policy"
fi

if ! command -v deno >/dev/null || ! deno --version 2>/dev/null | grep -q "^deno 2\."; then
  log "installing deno@${DENO_VERSION} from the npm registry"
  as_root npm install --global --no-audit --no-fund "deno@${DENO_VERSION}" >/dev/null
  command -v deno >/dev/null || { log "error: deno is not on PATH after npm install -g (npm prefix: $(npm prefix -g))"; exit 1; }
fi
