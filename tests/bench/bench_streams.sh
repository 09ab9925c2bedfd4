#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# One run's stream fanned out to 1, 100 and 1000 local subscribers
# through m8tesd, side by side with the bare fan-out baseline
# (bench-stream-fanout: one process reading the same stream from the mock
# and writing the same lines to the same number of Unix sockets), both
# measured in this run by bench-stream-load:
#  - throughput: a burst of text deltas, events/s each subscriber got and
#    deliveries/s in all, from the first delta to the last final line;
#  - latency: one delta a millisecond; the mock stamps each frame as it
#    writes it ([stamp]), the loader takes emit -> read; the daemon's added
#    p99 is its p99 minus the baseline's;
#  - memory: the daemon's peak RSS (VmHWM, reset before each run), and what
#    a 100-subscriber burst adds to it with one more subscriber that never
#    reads, against the same burst without it (before and after).
# Goals: >= 0.5x the baseline's throughput and < 2 ms added p99 at 100
# subscribers; peak RSS flat while a subscriber stalls.
set -euo pipefail
BIN=${BIN:?}
SIZES=${SIZES:-1 100 1000}
T=$(mktemp -d)
KEY=m8_bench_key_0123456789
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT

"$BIN/m8tes-mockd" --listen 127.0.0.1:0 --api-key "$KEY" \
    --port-file "$T/port" 2>/dev/null &
for _ in $(seq 100); do [ -s "$T/port" ] && break; sleep 0.05; done
PORT=$(cat "$T/port")
API=http://127.0.0.1:$PORT/api/v2
M8TES_API_KEY=$KEY "$BIN/m8tesd" --socket "$T/d.sock" --base-url "$API" \
    --state-dir "$T/state" --cache-dir "$T/cache" --log-level warn &
DPID=$!
for _ in $(seq 100); do [ -S "$T/d.sock" ] && break; sleep 0.05; done

NRUN=0
# origin MESSAGE: starts a streaming run at the mock (its own stream is
# read by curl and dropped), waits at the run's gate; sets RUN.
origin() {
	NRUN=$((NRUN + 1))
	curl -sN -H "Authorization: Bearer $KEY" \
	    -H 'Content-Type: application/json' \
	    -d "{\"message\":\"$1\",\"stream\":true}" "$API/runs/" \
	    >"$T/origin.$NRUN" &
	for _ in $(seq 200); do
		grep -qs awaiting_approval "$T/origin.$NRUN" && break
		sleep 0.02
	done
	RUN=$(grep -m1 -o '"run_id":[0-9]*' "$T/origin.$NRUN" | cut -d: -f2)
}
approve() {
	curl -s -H "Authorization: Bearer $KEY" \
	    -H 'Content-Type: application/json' \
	    -d "{\"request_id\":\"req_$1_1\",\"decision\":\"allow\"}" \
	    "$API/runs/$1/approve" >/dev/null
}
hwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$DPID/status"; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$DPID/status"; }

# measure daemon|baseline SUBS MESSAGE [STALL]: one run to SUBS
# subscribers; sets OUT (the loader's line) and HWM (the daemon's peak).
measure() {
	local mode=$1 n=$2 msg=$3 stall=${4:-0} sock=$T/d.sock fan=
	origin "$msg"
	rm -f "$T/ready"
	if [ "$mode" = baseline ]; then
		sock=$T/b.$NRUN.sock
		"$BIN/bench-stream-fanout" "$sock" "$n" "$PORT" "$RUN" "$KEY" &
		fan=$!
		for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.02; done
	else
		echo 5 >"/proc/$DPID/clear_refs" 2>/dev/null || true
		RSS0=$(rss_kb)
	fi
	"$BIN/bench-stream-load" "$sock" "$n" "$RUN" "$T/ready" "$mode" \
	    "$stall" >"$T/load.out" &
	local load=$!
	for _ in $(seq 3000); do [ -e "$T/ready" ] && break; sleep 0.01; done
	approve "$RUN"
	wait "$load" || true
	[ -n "$fan" ] && { wait "$fan" || true; }
	OUT=$(cat "$T/load.out")
	HWM=$(hwm_kb)
}
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<" $2"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

echo "daemon RSS at start: $(($(rss_kb) / 1024)) MiB"
for n in $SIZES; do
	long=20000
	[ "$n" -ge 1000 ] && long=4000
	burst="[approval][stamp][long:$long] Bench"
	measure baseline "$n" "$burst"
	base=$OUT
	measure daemon "$n" "$burst"
	ours=$OUT
	hwm=$HWM
	echo "subs=$n burst baseline $base"
	echo "subs=$n burst m8tesd   $ours"
	echo "subs=$n throughput ratio=$(ratio "$(field deliveries_per_s "$ours")" \
	    "$(field deliveries_per_s "$base")") (m8tesd/baseline deliveries/s; goal >= 0.50 at 100)"
	paced="[approval][stamp][slow:1][long:2000] Paced"
	measure baseline "$n" "$paced"
	base=$OUT
	measure daemon "$n" "$paced"
	ours=$OUT
	[ "$HWM" -gt "$hwm" ] && hwm=$HWM
	echo "subs=$n paced baseline $base"
	echo "subs=$n paced m8tesd   $ours"
	echo "subs=$n p99 baseline=$(field p99_us "$base") us m8tesd=$(field p99_us "$ours") us added=$(($(field p99_us "$ours") - $(field p99_us "$base"))) us (goal < 2000 at 100)"
	echo "subs=$n m8tesd peak RSS (VmHWM) $((hwm / 1024)) MiB"
done

# What a burst adds to the daemon's peak RSS with one subscriber that
# never reads, against the same burst without it, run before and after.
burst="[approval][stamp][long:20000] Bench"
grown() { echo $(((HWM - RSS0) / 1024)); }
measure daemon 100 "$burst"
before=$(grown)
measure daemon 100 "$burst" 1
stalled=$(grown)
echo "stall subs=100 with staller $OUT"
measure daemon 100 "$burst"
after=$(grown)
lagged=$("$BIN/m8tes" --socket "$T/d.sock" --json call daemon.stats |
    jq .streams.lagged)
echo "stall peak RSS added by a burst: without=${before} MiB, with a stalled subscriber=${stalled} MiB, without again=${after} MiB (goal: flat); subscribers lagged in all: $lagged"
echo "daemon RSS at the end: $(($(rss_kb) / 1024)) MiB"
