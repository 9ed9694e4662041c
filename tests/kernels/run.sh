#!/usr/bin/env bash
# The kernel matrix: boots Debian's kernels of bullseye (5.10), bookworm (6.1) and trixie (6.12)
# under qemu, one after the other, and runs the privileged tests in each against the BPF objects
# and shim built on this machine (build/), with this machine's root as the guest's root (shared
# read-only over virtio-9p, with a tmpfs overlay on top). `make test-kernels` runs it after
# `make prepare`; see tests/kernels/README.md.
#
# Usage: tests/kernels/run.sh [--kernels 5.10,6.1,6.12] [--tests FILE,...|all] [--timeout S]
#                             [--accel auto|kvm|tcg] [--exec 'SHELL COMMAND']
# --tests: files relative to the checkout (default: the subset in DEFAULT_TESTS below; "all": every
# tests/*_test.ts but deploy_test.ts). --timeout: per kernel, killing a guest that has not
# finished (default 1800 s, 3600 s with --tests all). --accel auto (the default) uses KVM when a
# 20 s probe boot works with it, TCG otherwise. --exec runs a shell command of one's own in each
# guest (in the checkout) instead of the tests.
# Prints one line per kernel, "kernel RELEASE: N passed, M failed (T s)", and the path of the
# guest's full log (plus its tail when the kernel failed); exits 1 when any test failed on any
# kernel, or a guest did not finish within the timeout.
#
# Environment: KERNELS_ACCEL, KERNELS_TIMEOUT (the options' defaults), KERNELS_MEM (MiB, 4096),
# KERNELS_SMP (2), KERNELS_TIMEOUT_SCALE (passed to the tests as EBPF_TEST_TIMEOUT_SCALE;
# default 1 under KVM, 4 under TCG), KERNELS_DIR (the cache, default build/kernels).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
export KERNELS_DIR=${KERNELS_DIR:-$ROOT/build/kernels}

# The default subset covers every program and every fallback in about a third of the time of all
# of them (README.md has the numbers): the kernel probes (BTF, tracefs) and /api/capabilities,
# each program's end-to-end test (with the fallbacks of 5.10 and 6.1; dns against dnsmasq in a
# test namespace), attribution to cgroups and the filters over it, the ring's wake-ups, and
# the programs' stop/start and unload on exit. Left out by default (--tests all runs them):
# metrics_test.ts and stream_test.ts, whose kernel side is the same as above and which take
# 4-12 min per kernel under TCG, and the API and README tests (openapi, readme,
# original_readme), which check user-space answers. Never in the guest: deploy_test.ts
# (systemd-analyze and promtool on the unit and config files; it loads nothing into the kernel).
DEFAULT_TESTS=(
  src/programs/capabilities_test.ts
  tests/capabilities_test.ts
  tests/connection_test.ts
  tests/packet_drop_test.ts
  tests/tcp_life_test.ts
  tests/dns_test.ts
  tests/attribution_test.ts
  tests/filters_test.ts
  tests/drain_test.ts
  tests/server_test.ts
)
# Loaded before the tests start so that a missing module shows in the log, not as an obscure
# failure (the rest, nft expressions and all, load on demand through request_module).
MODPROBE="virtio_rng veth nf_tables sch_ingress cls_bpf"

kernels=5.10,6.1,6.12
tests=""
timeout=${KERNELS_TIMEOUT:-}
accel=${KERNELS_ACCEL:-auto}
exec_cmd=""
mem=${KERNELS_MEM:-4096}
smp=${KERNELS_SMP:-2}

usage() { sed -n '/^# Usage:/,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }
log() { echo "kernels: $*" >&2; }
die() { echo "kernels: error: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --kernels) kernels=${2:?}; shift 2 ;;
    --kernels=*) kernels=${1#*=}; shift ;;
    --tests) tests=${2:?}; shift 2 ;;
    --tests=*) tests=${1#*=}; shift ;;
    --timeout) timeout=${2:?}; shift 2 ;;
    --timeout=*) timeout=${1#*=}; shift ;;
    --exec) exec_cmd=${2:?}; shift 2 ;;
    --accel) accel=${2:?}; shift 2 ;;
    --accel=*) accel=${1#*=}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
case "$accel" in auto | kvm | tcg) ;; *) die "--accel takes auto, kvm or tcg, not '$accel'" ;; esac
# Under TCG on a busy 2-core host the default subset took 8-11 min a kernel, and 20 min with a
# second guest running beside it; all of the tests took up to 26 min.
[ -n "$timeout" ] || timeout=$([ "$tests" = all ] && echo 3600 || echo 1800)
[[ "$timeout" =~ ^[0-9]+$ ]] || die "--timeout takes whole seconds, not '$timeout'"

cd "$ROOT"
if [ -z "$tests" ]; then
  test_files=("${DEFAULT_TESTS[@]}")
elif [ "$tests" = all ]; then
  # Every test file under tests/ but deploy_test.ts, and the default's kernel probes in src/.
  mapfile -t test_files < <(
    printf '%s\n' "${DEFAULT_TESTS[@]}" | grep -v '^tests/'
    ls tests/*_test.ts | grep -v '^tests/deploy_test\.ts$'
  )
  test_files+=(src/programs/capabilities_test.ts)
else
  IFS=, read -r -a test_files <<<"$tests"
fi
for f in "${test_files[@]}"; do
  [ -f "$f" ] || die "no test file $f (paths are relative to $ROOT)"
done
IFS=, read -r -a lines <<<"$kernels"

for tool in qemu-system-x86_64 cpio gzip xz depmod deno; do
  command -v "$tool" >/dev/null || die "$tool is missing (make test-kernels installs it)"
done
for f in build/bpf/connection.bpf.o build/libebpf_shim.so; do
  [ -e "$f" ] || die "$f is not built (make prepare)"
done

# --- The guests' qemu -------------------------------------------------------------------------
qpid=""
stop_qemu() {
  if [ -n "$qpid" ] && kill -0 "$qpid" 2>/dev/null; then
    kill -TERM "$qpid" 2>/dev/null || true
    for _ in 1 2 3 4 5; do kill -0 "$qpid" 2>/dev/null || break; sleep 1; done
    kill -KILL "$qpid" 2>/dev/null || true
    wait "$qpid" 2>/dev/null || true
  fi
  qpid=""
}
# An interrupted run (Ctrl-C, CI's own timeout) leaves no qemu behind.
trap stop_qemu EXIT
trap 'stop_qemu; exit 130' INT TERM

# Boots KERNEL_DIR's vmlinuz with INITRD and the results share RESULTS (the serial console goes
# to CONSOLE) and waits for the guest to power off, at most LIMIT seconds; returns 124 when it
# had to kill it. Extra arguments go on the kernel command line.
boot() {
  local kdir=$1 initrd=$2 results=$3 console=$4 limit=$5 accel_opts started
  shift 5
  if [ "$use_accel" = kvm ]; then
    accel_opts=(-accel kvm -cpu host)
  else
    accel_opts=(-accel tcg,thread=multi -cpu max)
  fi
  # -nodefaults: no VGA, NIC or floppy to probe (the tests use loopback and namespaces only).
  # multidevs=remap: the host's root spans several filesystems; without it inode numbers
  # could repeat across them inside the guest.
  qemu-system-x86_64 "${accel_opts[@]}" -m "$mem" -smp "$smp" \
    -nodefaults -no-user-config -display none -no-reboot \
    -serial "file:$console" \
    -kernel "$kdir/vmlinuz" -initrd "$initrd" \
    -append "console=ttyS0 rdinit=/init panic=-1 $*" \
    -device virtio-rng-pci \
    -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
    -virtfs "local,path=$results,mount_tag=results,security_model=none,multidevs=remap" \
    </dev/null >>"$console.qemu" 2>&1 &
  qpid=$!
  started=$(date +%s)
  while kill -0 "$qpid" 2>/dev/null; do
    if [ $(($(date +%s) - started)) -ge "$limit" ]; then
      stop_qemu
      return 124
    fi
    sleep 1
  done
  local rc=0
  wait "$qpid" 2>/dev/null || rc=$?
  qpid=""
  return "$rc"
}

# --- Kernels -----------------------------------------------------------------------------------
mapfile -t fetched < <("$HERE/fetch.sh" "${lines[@]}")
[ ${#fetched[@]} -eq ${#lines[@]} ] || die "fetch.sh did not give every kernel"

run_dir=$KERNELS_DIR/runs/$(date +%Y%m%d-%H%M%S)
mkdir -p "$run_dir"
# Keep the last 5 runs' logs (and any from the last day: another run may be going on).
ls -1d "$KERNELS_DIR"/runs/*/ 2>/dev/null | head -n -5 | while read -r old; do
  if [ -n "$(find "$old" -maxdepth 0 -mtime +0)" ]; then rm -rf "$old"; fi
done

# KVM when asked, or when "auto" finds /dev/kvm and a guest actually boots with it (on this
# kind of machine /dev/kvm opens but a nested guest hangs at "Booting from ROM"): a 20 s probe
# that powers off at once from the initramfs.
use_accel=tcg
if [ "$accel" = kvm ]; then
  use_accel=kvm
elif [ "$accel" = auto ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
  read -r _ rel dir <<<"${fetched[0]}"
  probe=$run_dir/kvm-probe
  mkdir -p "$probe"
  "$HERE/initramfs.sh" "$dir" "$probe/initramfs.cpio.gz"
  use_accel=kvm
  # 2>>: bash's own "Aborted" line when qemu dies of a signal (KVM's probe does, here) goes to
  # the log, not the terminal.
  if boot "$dir" "$probe/initramfs.cpio.gz" "$probe" "$probe/console.log" 20 kernels_probe=1 \
    2>>"$probe/console.log.qemu" &&
    grep -q 'kernels-probe: ok' "$probe/console.log"; then
    log "KVM works: using it"
  else
    log "KVM is there but a guest does not boot with it (nested?): using TCG"
    use_accel=tcg
  fi
fi
scale=${KERNELS_TIMEOUT_SCALE:-$([ "$use_accel" = kvm ] && echo 1 || echo 4)}

# The guest type-checks the test files like any `deno test`; checking them here first fills
# the type-check cache in DENO_DIR, which the guest reads through the overlay (natively this
# takes seconds, under TCG minutes).
if [ -z "$exec_cmd" ]; then
  log "type-checking ${#test_files[@]} test files on the host"
  if ! check_out=$(CI=true DENO_NO_UPDATE_CHECK=1 NO_COLOR=1 deno test --no-run --allow-all \
    "${test_files[@]}" 2>&1); then
    echo "$check_out" >&2
    die "deno test --no-run failed: the tests do not type-check"
  fi
fi
deno_dir=$(DENO_NO_UPDATE_CHECK=1 deno info --json 2>/dev/null |
  sed -n 's/^ *"denoDir": "\(.*\)",*$/\1/p')

# Single-quotes a value for the sh that sources the config.
q() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

failed_kernels=()
for entry in "${fetched[@]}"; do
  read -r line release kdir <<<"$entry"
  out=$run_dir/$release
  mkdir -p "$out"
  console=$out/console.log
  "$HERE/initramfs.sh" "$kdir" "$out/initramfs.cpio.gz"
  {
    echo "KT_REPO=$(q "$ROOT")"
    echo "KT_LINE=$(q "$line")"
    echo "KT_RELEASE=$(q "$release")"
    echo "KT_MODULES=$(q "$kdir/root/lib/modules/$release")"
    echo "KT_TESTS=$(q "${test_files[*]}")"
    echo "KT_MODPROBE=$(q "$MODPROBE")"
    echo "KT_EXEC=$(q "$exec_cmd")"
    # What the tests' deno needs from this environment: its PATH, HOME and cache. Values are
    # split on spaces in the guest. Without HOME (CI may run so), the user's home from passwd:
    # where deno, like the tools it runs, looks then.
    home=${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}
    echo "KT_ENV=$(q "PATH=$PATH HOME=$home ${deno_dir:+DENO_DIR=$deno_dir }EBPF_TEST_TIMEOUT_SCALE=$scale")"
  } >"$out/config"

  log "$release: booting ($use_accel, ${#test_files[@]} test files, timeout ${timeout} s); log: $console"
  started=$(date +%s)
  rc=0
  boot "$kdir" "$out/initramfs.cpio.gz" "$out" "$console" "$timeout" 2>>"$console.qemu" || rc=$?
  wall=$(($(date +%s) - started))

  # Counts from deno test's own summary: "ok | 20 passed (9 steps) | 0 failed (2m3s)".
  summary=$(grep -E '^(ok|FAILED) \| [0-9]+ passed' "$out/tests.log" 2>/dev/null | tail -n 1 || true)
  passed=$(grep -oE '[0-9]+ passed' <<<"$summary" | grep -oE '^[0-9]+' || echo 0)
  failed=$(grep -oE '[0-9]+ failed' <<<"$summary" | grep -oE '^[0-9]+' || echo 0)
  code=$(cat "$out/exit-code" 2>/dev/null || echo "")
  note=""
  if [ "$rc" = 124 ]; then
    note=", timed out"
  elif [ -e "$out/init-error" ]; then
    note=", $(head -n 1 "$out/init-error")"
  elif [ -z "$code" ]; then
    note=", the guest stopped before the tests finished"
  elif [ -z "$summary" ] && [ "$code" != 0 ]; then
    note=", deno test exited with $code before any summary"
  fi
  if [ -e "$out/test-start" ] && [ -e "$out/test-end" ]; then
    # Guest uptime when the tests started and ended: boot (to the tests' start) and test time.
    t0=$(cut -d. -f1 "$out/test-start") t1=$(cut -d. -f1 "$out/test-end")
    log "$release: boot $t0 s, tests $((t1 - t0)) s (guest clock), qemu $wall s"
  fi
  echo "kernel $release: $passed passed, $failed failed ($wall s$note)"
  if [ "$code" != 0 ] || [ -n "$note" ]; then
    failed_kernels+=("$release")
    echo "--- last 40 lines of $console ---"
    tail -n 40 "$console" | sed 's/\r$//'
    echo "---"
  fi
done

if [ ${#failed_kernels[@]} -gt 0 ]; then
  log "failed on: ${failed_kernels[*]} (logs in $run_dir)"
  exit 1
fi
log "every test passed on every kernel (logs in $run_dir)"
