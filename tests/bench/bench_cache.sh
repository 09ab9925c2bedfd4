#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The cache's read path, side by side with baselines measured in the same
# run, against m8tes-mockd holding 20 teammates (a full default page, about
# 19 KB of JSON):
#
#  (a) one cached teammates.list as a whole process, `m8tes --json
#      teammates list`, against `curl -s` of the same list straight from
#      the mock: medians of RUNS runs each, the two taking turns
#      (bench-spawn), so that a change in the machine's load hits both;
#      with hyperfine installed, its medians too (ROUNDS x RUNS runs, in
#      turns of RUNS). For scale, /bin/true against curl: the most any
#      whole process can reach here. Goal >= 5x faster.
#  (b) cached teammates.list round trips per second through m8tesd with 16
#      concurrent clients, against the bare epoll server answering every
#      line with the same reply bytes (bench-echo-server REPLY_FILE):
#      medians of ROUNDS runs of SECS s each, taking turns; goal >= 0.5x.
#  (c) 1000 concurrent identical teammates.list calls on 1000 connections
#      (bench-burst) while the upstream takes 300 ms to answer: upstream
#      requests the mock recorded; goal 1.
#
set -euo pipefail
BIN=${BIN:?}
SECS=${SECS:-3}
RUNS=${RUNS:-200}
ROUNDS=${ROUNDS:-3}
KEY=m8_bench_cache_key_0123456789
T=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT

median() { sort -g | awk '{ v[NR] = $1 } END {
	print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

"$BIN/m8tes-mockd" --listen 127.0.0.1:0 --api-key "$KEY" \
    --port-file "$T/port" >"$T/mock.log" 2>&1 &
for _ in $(seq 100); do [ -s "$T/port" ] && break; sleep 0.05; done
MOCK=http://127.0.0.1:$(cat "$T/port")
for i in $(seq 20); do
	curl -s -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
	    -d "{\"name\":\"teammate $i\",\"instructions\":\"handle queue $i\"}" \
	    "$MOCK/api/v2/agents/" >/dev/null
done
M8TES_API_KEY=$KEY "$BIN/m8tesd" --socket "$T/d.sock" \
    --base-url "$MOCK/api/v2" --state-dir "$T/state" --cache-dir "$T/cache" \
    --log-level warn &
for _ in $(seq 100); do [ -S "$T/d.sock" ] && break; sleep 0.05; done

LIST='{"id":1,"method":"teammates.list","params":{}}'
M8=("$BIN/m8tes" --socket "$T/d.sock" --json teammates list)
CURL=(curl -s -H "Authorization: Bearer $KEY" "$MOCK/api/v2/agents/")
"${M8[@]}" >"$T/m8.out"                       # the miss: now cached
printf '%s\n' "$LIST" | socat - UNIX-CONNECT:"$T/d.sock" >"$T/reply.txt"
[ "$(jq -r .cache "$T/reply.txt")" = hit ] || { echo "not a cache hit"; exit 1; }
"${CURL[@]}" | jq -c .data >"$T/curl.ids"
jq -c .data "$T/m8.out" | cmp -s - "$T/curl.ids" ||
    { echo "m8tes and curl disagree"; exit 1; }
echo "list: $(jq '.result.data | length' "$T/reply.txt") teammates," \
    "reply $(wc -c <"$T/reply.txt") bytes"

# ---- (a) a whole process -------------------------------------------------
ms() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }
out=$("$BIN/bench-spawn" "$RUNS" "${M8[@]}" -- "${CURL[@]}")
floor=$("$BIN/bench-spawn" "$RUNS" true -- "${CURL[@]}")
echo "(a) whole process, $RUNS runs each, taking turns (bench-spawn):"
echo "    m8tes --json teammates list (cache hit)  median $(echo "$out" | ms a_ms) ms"
echo "    curl -s of the same list from the mock   median $(echo "$out" | ms b_ms) ms"
echo "    ratio=$(echo "$out" | ms ratio)x faster (goal >= 5)"
echo "    for scale: /bin/true $(echo "$floor" | ms a_ms) ms, curl" \
    "$(echo "$floor" | ms b_ms) ms: at most $(echo "$floor" | ms ratio)x"
if command -v hyperfine >/dev/null 2>&1; then
	: >"$T/a.m8"
	: >"$T/a.curl"
	for r in $(seq "$ROUNDS"); do
		# hyperfine -N splits a command at blanks unless quoted.
		hyperfine -N --style none --warmup 20 --runs "$RUNS" \
		    --export-json "$T/a.$r.json" "$(printf '%q ' "${M8[@]}")" \
		    "$(printf '%q ' "${CURL[@]}")" >/dev/null 2>&1
		jq '.results[0].times[]' "$T/a.$r.json" >>"$T/a.m8"
		jq '.results[1].times[]' "$T/a.$r.json" >>"$T/a.curl"
	done
	m=$(median <"$T/a.m8")
	c=$(median <"$T/a.curl")
	printf '    hyperfine -N (%s x %s runs): m8tes %.3f ms, curl %.3f ms,' \
	    "$ROUNDS" "$RUNS" "$(echo "$m * 1000" | bc -l)" \
	    "$(echo "$c * 1000" | bc -l)"
	echo " ratio=$(ratio "$c" "$m")x"
fi

# ---- (b) throughput, 16 clients ------------------------------------------
"$BIN/bench-echo-server" "$T/echo.sock" "$T/reply.txt" &
for _ in $(seq 100); do [ -S "$T/echo.sock" ] && break; sleep 0.05; done
figure() { sed -n 's/.*rtt_per_s=\([0-9]*\).*/\1/p'; }
: >"$T/b.echo"
: >"$T/b.m8"
for r in $(seq "$ROUNDS"); do
	"$BIN/bench-ping" "$T/echo.sock" 16 "$SECS" "$LIST" | figure >>"$T/b.echo"
	"$BIN/bench-ping" "$T/d.sock" 16 "$SECS" "$LIST" | figure >>"$T/b.m8"
done
e=$(median <"$T/b.echo")
d=$(median <"$T/b.m8")
echo "(b) cached teammates.list, 16 clients ($ROUNDS x ${SECS} s, in turn):"
echo "    baseline(echo, same reply)  rtt_per_s=$e  (runs: $(tr '\n' ' ' <"$T/b.echo"))"
echo "    m8tesd                      rtt_per_s=$d  (runs: $(tr '\n' ' ' <"$T/b.m8"))"
echo "    ratio=$(ratio "$d" "$e") (goal >= 0.50)"

# ---- (c) 1000 concurrent identical calls ---------------------------------
curl -s -X POST -d '{"method":"GET","path":"/api/v2/agents/","delay_ms":300,"times":1}' \
    "$MOCK/__mock/faults" >/dev/null
curl -s -X DELETE "$MOCK/__mock/requests" >/dev/null
out=$("$BIN/bench-burst" "$T/d.sock" 1000 \
    '{"id":1,"method":"teammates.list","params":{"limit":7}}')
n=$(curl -s "$MOCK/__mock/requests?path=/api/v2/agents/" | jq length)
echo "(c) 1000 concurrent identical calls: $out"
echo "    upstream_requests=$n (goal 1)"
