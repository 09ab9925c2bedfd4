#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Signed webhooks per second and latency under CONNS (64) concurrent
# keep-alive senders (bench-webhook-load), against m8tesd, which verifies
# each delivery and commits it durably to state.db (fsync) before its 2xx,
# side by side with bench-webhook-baseline, a bare libmicrohttpd receiver
# that only checks the HMAC and stores nothing. Same loader, same run,
# ROUNDS (5) rounds taken in turns. Each round's two measurements are
# back to back, so the ratio is taken per round and its median reported
# (other work on a shared machine moves both alike); throughput and p99
# are the medians over the rounds.
# Goals: m8tesd >= 0.5x the baseline, >= 20k/s, p99 < 10 ms.
#
# After the run, m8tesd is stopped and its inbox counted (sqlite3, when
# installed): every delivery answered 2xx must be there.
set -euo pipefail
BIN=${BIN:?}
SECS=${SECS:-5}
WARMUP=${WARMUP:-1}
CONNS=${CONNS:-64}
ROUNDS=${ROUNDS:-5}
SECRET=whsec_bench_0123456789abcdef
T=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT

wait_file() { for _ in $(seq 200); do [ -s "$1" ] && return; sleep 0.05; done; echo "no $1" >&2; exit 1; }

"$BIN/bench-webhook-baseline" "$T/base.port" "$SECRET" &
wait_file "$T/base.port"
base_port=$(cat "$T/base.port")

printf 'webhook_listen = 127.0.0.1:0\nwebhook_secret = %s\n' "$SECRET" >"$T/m8tesd.conf"
M8TES_API_KEY=m8_bench "$BIN/m8tesd" --socket "$T/d.sock" \
    --base-url http://127.0.0.1:9/api/v2 --state-dir "$T/state" \
    --cache-dir "$T/cache" --config "$T/m8tesd.conf" --log-level info \
    2>"$T/m8tesd.log" &
daemon=$!
for _ in $(seq 200); do grep -q 'receiving webhooks on port' "$T/m8tesd.log" && break; sleep 0.05; done
ours_port=$(sed -n 's/.*receiving webhooks on port \([0-9]*\).*/\1/p' "$T/m8tesd.log")
[ -n "$ours_port" ] || { cat "$T/m8tesd.log"; exit 1; }

# med FIELD FILE: the median of FIELD=N over the lines of FILE.
med() {
	tr ' ' '\n' <"$2" | sed -n "s/^$1=//p" | sort -n |
	    awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

load() { "$BIN/bench-webhook-load" 127.0.0.1 "$1" "$SECRET" "$CONNS" "$SECS" "$WARMUP"; }
: >"$T/base.out"
: >"$T/ours.out"
: >"$T/ratio.out"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$ROUNDS"); do
	b=$(load "$base_port")
	o=$(load "$ours_port")
	echo "round $r baseline $b"
	echo "round $r m8tesd   $o"
	echo "$b" >>"$T/base.out"
	echo "$o" >>"$T/ours.out"
	printf '%s\n%s\n' "$b" "$o" | sed -n 's/^ok_per_s=\([0-9]*\).*/\1/p' |
	    paste -sd' ' | awk '{ printf "ratio=%.3f\n", $2 / $1 }' >>"$T/ratio.out"
	echo "round $r $(tail -n 1 "$T/ratio.out")"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

kill "$daemon"
wait "$daemon" || { echo "m8tesd did not stop cleanly"; exit 1; }
answered=$(tr ' ' '\n' <"$T/ours.out" | sed -n 's/^total_ok=//p' |
    awk '{ s += $1 } END { print s + 0 }')
if command -v sqlite3 >/dev/null; then
	stored=$(sqlite3 "$T/state/state.db" 'SELECT count(*) FROM inbox')
	echo "durability: $answered deliveries answered 2xx, $stored in the inbox after the stop"
	[ "$stored" -ge "$answered" ] || { echo "FAIL: answered deliveries missing from the inbox"; exit 1; }
else
	echo "durability: $answered answered 2xx (sqlite3 not installed: inbox not counted)"
fi

b_rate=$(med ok_per_s "$T/base.out")
o_rate=$(med ok_per_s "$T/ours.out")
b_p99=$(med p99_us "$T/base.out")
o_p99=$(med p99_us "$T/ours.out")
ratio=$(med ratio "$T/ratio.out")
echo "conns=$CONNS secs=$SECS rounds=$ROUNDS (medians)"
echo "baseline (libmicrohttpd + HMAC, stores nothing): ${b_rate}/s p99 ${b_p99} us"
echo "m8tesd (verified, fsync'd to state.db):          ${o_rate}/s p99 ${o_p99} us"
echo "ratio=$ratio, median of the rounds' (goal >= 0.50); m8tesd ${o_rate}/s (goal >= 20000); p99 ${o_p99} us (goal < 10000)"
