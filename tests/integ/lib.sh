# SPDX-License-Identifier: MIT
#
# Helpers for integration tests: start m8tes-mockd and m8tesd as real
# processes on a temporary socket and a free port, talk to them, assert.
# Each test script sources this file, calls its checks and ends with
# `finish`, which prints "N passed, N failed" and sets the exit status.

set -u
BIN=${BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build/bin}
KEY=m8_integration_test_key_0123456789
T=$(mktemp -d "${TMPDIR:-/tmp}/m8integ.XXXXXX")
SOCK=$T/m8tesd.sock
PASSED=0
FAILED=0
MOCK_PID=
DAEMON_PID=

cleanup() {
	[ -n "$DAEMON_PID" ] && kill "$DAEMON_PID" 2>/dev/null
	[ -n "$MOCK_PID" ] && kill "$MOCK_PID" 2>/dev/null
	wait 2>/dev/null
	if [ "$FAILED" -ne 0 ] || [ -n "${KEEP:-}" ]; then
		echo "--- daemon log (tail)"; tail -n 30 "$T/daemon.log" 2>/dev/null
		echo "--- mock log (tail)"; tail -n 10 "$T/mock.log" 2>/dev/null
	fi
	rm -rf "$T"
}
trap cleanup EXIT

ok() { PASSED=$((PASSED + 1)); echo "ok   $*"; }
not_ok() { FAILED=$((FAILED + 1)); echo "FAIL $*"; }

# check NAME COMMAND...: passes when COMMAND succeeds.
check() {
	local name=$1; shift
	if "$@"; then ok "$name"; else not_ok "$name"; fi
}

# jqt NAME JSON FILTER: passes when jq -e FILTER holds for JSON, one value.
# The JSON must be exactly one value: jq -e alone exits 0 on empty input,
# which would let a missing reply pass.
jqt() {
	local name=$1 json=$2 filter=$3
	if printf '%s\n' "$json" |
	    jq -e -s "length == 1 and (.[0] | $filter)" >/dev/null 2>&1; then
		ok "$name"
	else
		not_ok "$name"
		echo "  filter: $filter"
		echo "  json:   $(printf '%s' "$json" | head -c 600)"
	fi
}

finish() {
	echo "$PASSED passed, $FAILED failed"
	[ "$FAILED" -eq 0 ]
}

wait_for() { # wait_for SECONDS COMMAND...
	local end=$((SECONDS + $1)); shift
	until "$@" 2>/dev/null; do
		[ $SECONDS -ge $end ] && return 1
		sleep 0.05
	done
}

start_mock() {
	rm -f "$T/mock.port"
	"$BIN/m8tes-mockd" --listen 127.0.0.1:0 --api-key "$KEY" \
	    --port-file "$T/mock.port" "$@" >"$T/mock.log" 2>&1 &
	MOCK_PID=$!
	wait_for 10 test -s "$T/mock.port" || { echo "mock did not start"; cat "$T/mock.log"; exit 1; }
	MOCK=http://127.0.0.1:$(cat "$T/mock.port")
	MOCK_URL=$MOCK/api/v2
}

# BACKOFF=default leaves out --retry-backoff (the daemon's own 0.5 s).
start_daemon() {
	local backoff=(--retry-backoff "${BACKOFF:-0.05}")
	[ "${BACKOFF:-}" = default ] && backoff=()
	rm -f "$SOCK"
	M8TES_API_KEY=${DAEMON_KEY-$KEY} "$BIN/m8tesd" --socket "$SOCK" \
	    --base-url "${BASE_URL:-$MOCK_URL}" --state-dir "$T/state" \
	    --cache-dir "$T/cache" ${backoff[@]+"${backoff[@]}"} \
	    --log-level debug "$@" >>"$T/daemon.log" 2>&1 &
	DAEMON_PID=$!
	wait_for 10 sh -c "echo '{\"method\":\"daemon.ping\"}' | socat -t 2 - UNIX-CONNECT:$SOCK | grep -q pong" ||
	    { echo "daemon did not start"; cat "$T/daemon.log"; exit 1; }
}

stop_daemon() {
	kill "$DAEMON_PID" 2>/dev/null
	wait "$DAEMON_PID" 2>/dev/null
	DAEMON_PID=
}

# raw LINE...: sends lines on one connection, prints every reply line
# (and appends them to $T/replies.log); the exit status is socat's.
raw() {
	printf '%s\n' "$@" | socat -t "${RAW_WAIT:-10}" - UNIX-CONNECT:"$SOCK" |
	    tee -a "$T/replies.log"
	return "${PIPESTATUS[1]}"
}

# logged CMD...: runs CMD, passing on its output and error output and
# appending both to $T/replies.log (the key-leak checks read it); the exit
# status is CMD's.
logged() {
	local out rc err
	err=$(mktemp "$T/logged.err.XXXXXX")
	out=$("$@" 2>"$err")
	rc=$?
	[ -z "$out" ] || printf '%s\n' "$out" | tee -a "$T/replies.log"
	cat "$err" >>"$T/replies.log"
	cat "$err" >&2
	rm -f "$err"
	return "$rc"
}

# rpc METHOD [PARAMS_JSON]: one call through the real client; prints the
# result (or error) JSON line, and the exit status is the client's. Its
# output and error output are also appended to $T/replies.log.
rpc() {
	local params=${2:-'{}'}
	logged "$BIN/m8tes" --socket "$SOCK" --json call "$1" "$params"
}

# Mock inspection.
mock_requests() { curl -s "$MOCK/__mock/requests"; }
mock_clear() { curl -s -X DELETE "$MOCK/__mock/requests" >/dev/null; }
mock_fault() { curl -s -X POST -d "$1" "$MOCK/__mock/faults" >/dev/null; }
mock_faults_clear() { curl -s -X DELETE "$MOCK/__mock/faults" >/dev/null; }
mock_reset() { curl -s -X POST "$MOCK/__mock/reset" >/dev/null; }
# last_request: the most recent recorded request (JSON).
last_request() { mock_requests | jq -c '.[-1]'; }

# ---- more helpers (request lines, exact checks, timing, sanitizers) -------

# now_ms: wall clock in milliseconds.
now_ms() { date +%s%3N; }

# eq NAME GOT WANT: passes when GOT is exactly WANT.
eq() {
	if [ "$2" = "$3" ]; then
		ok "$1"
	else
		not_ok "$1"
		echo "  got:  $(printf '%s' "$2" | head -c 600)"
		echo "  want: $(printf '%s' "$3" | head -c 600)"
		return 1
	fi
}

# jeq NAME JSON_GOT JSON_WANT: passes when both are the same JSON value
# (key order ignored, compared with jq -S).
jeq() {
	local g w
	g=$(printf '%s' "$2" | jq -cS . 2>/dev/null) || g="(not JSON) $2"
	w=$(printf '%s' "$3" | jq -cS . 2>/dev/null) || w="(not JSON) $3"
	eq "$1" "$g" "$w"
}

# req_line METHOD [PARAMS_JSON [ID]]: one protocol request line.
req_line() {
	local p=${2-} id=${3:-1}
	[ -n "$p" ] || p='{}'
	jq -cn --arg m "$1" --argjson p "$p" --argjson id "$id" \
	    '{id: $id, method: $m, params: $p}'
}

# call METHOD [PARAMS_JSON [ID]]: one call on its own connection, straight
# on the socket; prints the final reply line (result or error, with id).
call() {
	local line
	line=$(req_line "$@") || { echo '{"error":"bad test params"}'; return 0; }
	raw "$line" | tail -n 1
}

# mock_since SEQ: recorded requests after sequence number SEQ.
mock_since() { curl -s "$MOCK/__mock/requests?since=$1"; }
# mock_seq: sequence number of the last recorded request (0 if none).
mock_seq() { mock_requests | jq '[.[].seq] | max // 0'; }
mock_config() { curl -s -X POST -d "$1" "$MOCK/__mock/config" >/dev/null; }

# daemon_stats: the result of daemon.stats.
daemon_stats() { call daemon.stats | jq -c .result; }

# ping_ms: milliseconds for a daemon.ping on a fresh connection, or
# "fail" when the answer is not {"pong":true}.
ping_ms() {
	local t0 out
	t0=$(now_ms)
	out=$(printf '%s\n' '{"id":1,"method":"daemon.ping"}' |
	    socat -t 5 - UNIX-CONNECT:"$SOCK" 2>/dev/null)
	if [ "$out" != '{"id":1,"result":{"pong":true}}' ]; then
		echo fail
		return
	fi
	echo $(($(now_ms) - t0))
}

# daemon_alive: the daemon process started by start_daemon still runs.
daemon_alive() { [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; }

# log_clean: no sanitizer report in the daemon's log.
log_clean() {
	! grep -qE 'runtime error|AddressSanitizer|LeakSanitizer' \
	    "$T/daemon.log" 2>/dev/null
}

# check_daemon_end: the daemon is alive, answers a ping, stops cleanly on
# SIGTERM (exit status 0) and left no sanitizer report. Ends the daemon.
check_daemon_end() {
	local st
	check "daemon still alive" daemon_alive
	eq "daemon answers a ping at the end" "$(call daemon.ping)" \
	    '{"id":1,"result":{"pong":true}}'
	kill "$DAEMON_PID" 2>/dev/null
	wait "$DAEMON_PID" 2>/dev/null
	st=$?
	DAEMON_PID=
	eq "daemon exits 0 on SIGTERM" "$st" 0
	if log_clean; then
		ok "no sanitizer report in the daemon log"
	else
		not_ok "no sanitizer report in the daemon log"
		grep -m 20 -E -A 12 'runtime error|AddressSanitizer|LeakSanitizer' \
		    "$T/daemon.log" | head -n 60
	fi
	check_no_key
}

# check_no_key: neither $KEY nor any key in TEST_KEYS (blank-separated:
# the other keys a test used) is in the daemon's log or in a reply that
# call, rpc or raw printed ($T/replies.log).
TEST_KEYS=${TEST_KEYS-}
check_no_key() {
	local k h hits=
	for k in "$KEY" $TEST_KEYS; do
		h=$(grep -nF -- "$k" "$T/daemon.log" "$T/replies.log" \
		    2>/dev/null | cut -c 1-200)
		[ -z "$h" ] || hits="$hits$h"$'\n'
	done
	if [ -z "$hits" ]; then
		ok "no API key in the daemon log or in any reply"
	else
		not_ok "no API key in the daemon log or in any reply"
		printf '%s\n' "$hits" | head -n 10
	fi
}

# qsort QUERY: the key=value pairs of a query string in sorted order.
qsort() { printf '%s' "$1" | tr '&' '\n' | LC_ALL=C sort | paste -sd'&' -; }

# wire NAME VERB PATH QUERY BODY [idem]: exactly one upstream request was
# recorded since the last mock_clear: VERB on the raw path /api/v2PATH, the
# query QUERY (its key=value pairs in any order), "Authorization: Bearer
# $KEY", "Content-Type: application/json", an Idempotency-Key header only
# with "idem", and BODY (compared as JSON; "" means no body at all). Sets
# WIRE to the recorded request for further checks.
wire() {
	local name=$1 verb=$2 path=$3 query=$4 body=$5 idem=${6:-} reqs
	reqs=$(mock_requests)
	eq "$name: one upstream request" "$(printf '%s' "$reqs" | jq length)" 1
	WIRE=$(printf '%s' "$reqs" | jq -c '.[-1] // {}')
	eq "$name: wire method and path" \
	    "$(printf '%s' "$WIRE" | jq -r '"\(.method) \(.path)"')" \
	    "$verb /api/v2$path"
	eq "$name: wire query" \
	    "$(qsort "$(printf '%s' "$WIRE" | jq -r '.query')")" \
	    "$(qsort "$query")"
	eq "$name: wire headers" \
	    "$(printf '%s' "$WIRE" | jq -r '[.headers.authorization,
	        .headers["content-type"],
	        (.headers["idempotency-key"] // "" | length > 0)] | @tsv')" \
	    "$(printf 'Bearer %s\tapplication/json\t%s' "$KEY" \
	        "$([ -n "$idem" ] && echo true || echo false)")"
	if [ -z "$body" ]; then
		eq "$name: wire body (none)" \
		    "$(printf '%s' "$WIRE" | jq -r '.body')" ""
	else
		jeq "$name: wire body" \
		    "$(printf '%s' "$WIRE" | jq -r '.body')" "$body"
	fi
}

# rpc_ok NAME METHOD [PARAMS_JSON]: clears the mock's records, calls through
# the real client, checks it exits 0 and leaves the result in OUT.
rpc_ok() {
	local name=$1 rc
	shift
	mock_clear
	OUT=$(rpc "$@" 2>"$T/rpc.err")
	rc=$?
	eq "$name: m8tes exits 0" "$rc" 0
	[ "$rc" -eq 0 ] || echo "  stderr: $(head -c 300 "$T/rpc.err")"
}

# mock_get PATH: GET /api/v2PATH straight from the mock (test set-up, e.g.
# advancing a polled run), with the key.
mock_get() {
	curl -s -H "Authorization: Bearer $KEY" "$MOCK_URL$1"
}
# mock_post PATH JSON: POST straight to the mock (test set-up).
mock_post() {
	curl -s -H "Authorization: Bearer $KEY" \
	    -H 'Content-Type: application/json' -d "$2" "$MOCK_URL$1"
}

# run_with_files: a finished run of the mock (it has report.csv and
# chart.png); prints its id.
run_with_files() {
	local id
	id=$(mock_post /runs/ '{"message":"make a report","stream":false}' |
	    jq -r .id)
	mock_get "/runs/$id" >/dev/null
	mock_get "/runs/$id" >/dev/null
	echo "$id"
}
