#!/usr/bin/env bash
# What the dns program's hooks cost. First its cgroup_skb programs alone, timed by the kernel
# (bench/dns_prog_time.c); then bench/dns_cost.c's round trips and connect() calls with the dns
# program stopped and running, interleaved, on one server started with --programs dns (the
# program is stopped and started through the API between runs). Prints the median of each, the
# difference per operation (CPU time of the load, per operation), and the server's CPU per DNS
# query. About a minute.
#
# Usage: sudo bench/dns_cost.sh [ROUNDS (default 7)] [N per run (default 100000)]
set -euo pipefail

ROUNDS=${1:-7}
N=${2:-100000}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BUILD=$HERE/build
NS=ebpfsrv-dnscost-$$
PORT=$((20000 + RANDOM % 20000))

mkdir -p "$BUILD"
(cd "$ROOT" && make -s prepare >/dev/null)
DEPS=$ROOT/build/deps
cc -O2 -Wall -Wextra -Werror "$HERE/dns_cost.c" -o "$BUILD/dns_cost"
cc -O2 -Wall -Wextra -Werror -I"$DEPS/include" "$HERE/dns_prog_time.c" \
  "$DEPS/lib/libbpf.a" "$DEPS/lib/libelf.a" "$DEPS/lib/libz.a" -o "$BUILD/dns_prog_time"

# The programs alone, timed by the kernel (BPF_PROG_TEST_RUN; nothing attached): the median of 5.
echo "cgroup_skb programs, per packet (BPF_PROG_TEST_RUN, median of 5 runs of 20000):"
for _ in 1 2 3 4 5; do "$BUILD/dns_prog_time" "$ROOT/build/bpf/dns.bpf.o" 20000; done |
  python3 -c '
import json, statistics, sys
runs = {}
for line in sys.stdin:
    r = json.loads(line)
    runs.setdefault((r["program"], r["packet"]), []).append(r["ns_per_run"])
for (prog, packet), ns in runs.items():
    print(f"  {prog:12} {packet:6} {statistics.median(ns):5.0f} ns")
'

server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  ip netns del "$NS" 2>/dev/null || true
}
trap cleanup EXIT
ip netns add "$NS"
ip -n "$NS" link set lo up

cd "$ROOT"
DENO_NO_UPDATE_CHECK=1 deno run --allow-all src/main.ts --addr "127.0.0.1:$PORT" \
  --programs dns --log-level warn &
server=$!
for _ in $(seq 100); do curl -sf "localhost:$PORT/health" >/dev/null && break; sleep 0.2; done
# The deno process that runs the server (deno run execs no child; $! is it).
cpu() { awk '{print $14 + $15}' "/proc/$server/stat"; }
ticks=$(getconf CLK_TCK)

run() { # MODE -> ns per op
  case "$1" in
    dns) ip netns exec "$NS" "$BUILD/dns_cost" dns "$N" ;;
    *) "$BUILD/dns_cost" "$1" "$N" 9999 ;;
  esac | sed 's/.*"cpu_ns_per_op":\([0-9.]*\).*/\1/'
}

results=$(mktemp)
for round in $(seq "$ROUNDS"); do
  # the order alternates, so a drift of the machine's load does not favour one state
  order="stopped running"
  [ $((round % 2)) = 0 ] && order="running stopped"
  for state in $order; do
    if [ "$state" = stopped ]; then
      curl -sf -X POST "localhost:$PORT/api/programs/dns/stop" >/dev/null
    else
      curl -sf -X POST "localhost:$PORT/api/programs/dns/start" >/dev/null
    fi
    for mode in udp connect dns; do
      before=$(cpu)
      ns=$(run "$mode")
      curl -sf "localhost:$PORT/api/programs/dns/summary?duration=1" >/dev/null # drains
      after=$(cpu)
      echo "$round $state $mode $ns $((after - before))" >>"$results"
    done
  done
done

python3 - "$results" "$N" "$ticks" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
n, ticks = int(sys.argv[2]), int(sys.argv[3])
med = lambda mode, state: statistics.median(float(r[3]) for r in rows if r[2] == mode and r[1] == state)
# the cost: the median over rounds of (running - stopped) within a round
def cost(mode):
    by = {(r[0], r[1]): float(r[3]) for r in rows if r[2] == mode}
    return statistics.median(by[(k, "running")] - by[(k, "stopped")] for k, s in by if s == "running")
what = {
    "udp": "UDP round trip, not DNS (2 packets out, 2 in)",
    "connect": "connect() of a UDP socket, not to a DNS port",
    "dns": "DNS query and answer over UDP (2 DNS packets, 2 others)",
}
print(f"{'workload':58} {'stopped':>10} {'running':>10} {'cost':>9}")
for mode, text in what.items():
    off, on = med(mode, "stopped"), med(mode, "running")
    print(f"{text:58} {off:8.0f}ns {on:8.0f}ns {cost(mode):+7.0f}ns")
cpu = statistics.median(int(r[4]) for r in rows if r[2] == "dns" and r[1] == "running")
print(f"server CPU per DNS query (parse, pair, store): {cpu / ticks / n * 1e6:.1f} us "
      f"(median of {len(rows) // 6} runs of {n})")
EOF
rm -f "$results"
