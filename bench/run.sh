#!/usr/bin/env bash
# The benchmark of issues 6 and 14, in one command (as root, from anywhere):
#   bench/run.sh            full run, about 25 minutes; writes bench/RESULTS.md
#   bench/run.sh --quick    one repeat of shorter runs, about 4 minutes
# Other flags go to bench/run.ts: --repeats N, --duration S, --no-bpftrace, --out FILE,
# --only connection,all-programs,store,server (some parts only).
# It builds what it needs (make prepare at the top, then bench/Makefile), installs bpftrace and
# wrk with apt-get when missing, and sends traffic to loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) -ne 0 ]]; then
	echo "bench/run.sh: run it as root (it loads BPF programs)" >&2
	exit 1
fi
missing=()
command -v bpftrace >/dev/null || missing+=(bpftrace)
command -v wrk >/dev/null || missing+=(wrk)
if ((${#missing[@]})); then
	apt-get install -y "${missing[@]}" >/dev/null
fi
make prepare >/dev/null
make -C bench >/dev/null
export DENO_NO_UPDATE_CHECK=1
exec deno run --allow-all bench/run.ts "$@"
