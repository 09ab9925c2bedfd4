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

# jqt NAME JSON FILTER: passes when jq -e FILTER holds for JSON.
jqt() {
	local name=$1 json=$2 filter=$3
	if printf '%s\n' "$json" | jq -e "$filter" >/dev/null 2>&1; then
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

start_daemon() {
	rm -f "$SOCK"
	M8TES_API_KEY=${DAEMON_KEY-$KEY} "$BIN/m8tesd" --socket "$SOCK" \
	    --base-url "${BASE_URL:-$MOCK_URL}" --state-dir "$T/state" \
	    --cache-dir "$T/cache" --retry-backoff "${BACKOFF:-0.05}" \
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

# raw LINE...: sends lines on one connection, prints every reply line.
raw() {
	printf '%s\n' "$@" | socat -t "${RAW_WAIT:-10}" - UNIX-CONNECT:"$SOCK"
}

# rpc METHOD [PARAMS_JSON]: one call through the real client; prints the
# result (or error) JSON line, and the exit status is the client's.
rpc() {
	local method=$1 params=${2:-'{}'}
	"$BIN/m8tes" --socket "$SOCK" --json call "$method" "$params"
}

# Mock inspection.
mock_requests() { curl -s "$MOCK/__mock/requests"; }
mock_clear() { curl -s -X DELETE "$MOCK/__mock/requests" >/dev/null; }
mock_fault() { curl -s -X POST -d "$1" "$MOCK/__mock/faults" >/dev/null; }
mock_faults_clear() { curl -s -X DELETE "$MOCK/__mock/faults" >/dev/null; }
mock_reset() { curl -s -X POST "$MOCK/__mock/reset" >/dev/null; }
# last_request: the most recent recorded request (JSON).
last_request() { mock_requests | jq -c '.[-1]'; }
