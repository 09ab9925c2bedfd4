#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# daemon.ping round trips per second through m8tesd, 1 and 16 concurrent
# clients, side by side with a bare epoll line server measured in the same
# run (bench-echo-server). Goal: m8tesd >= 0.5x the baseline.
set -euo pipefail
BIN=${BIN:?}
SECS=${SECS:-3}
T=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT

"$BIN/bench-echo-server" "$T/echo.sock" & sleep 0.3
M8TES_API_KEY=m8_bench "$BIN/m8tesd" --socket "$T/d.sock" \
    --base-url http://127.0.0.1:9/api/v2 --state-dir "$T/state" \
    --log-level warn &
for _ in $(seq 100); do [ -S "$T/d.sock" ] && break; sleep 0.05; done

figure() { sed -n 's/.*rtt_per_s=\([0-9]*\).*/\1/p'; }
for c in 1 16; do
	base=$("$BIN/bench-ping" "$T/echo.sock" "$c" "$SECS")
	ours=$("$BIN/bench-ping" "$T/d.sock" "$c" "$SECS")
	b=$(echo "$base" | figure)
	o=$(echo "$ours" | figure)
	ratio=$(awk -v o="$o" -v b="$b" 'BEGIN { printf "%.2f", o / b }')
	echo "clients=$c baseline(echo) $base"
	echo "clients=$c m8tesd         $ours"
	echo "clients=$c ratio=$ratio (goal >= 0.50)"
done
