#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Robustness of the daemon and its protocol: bad lines of every kind (the
# connection goes on), the line limit, 1,000 concurrent connections, a
# client that disconnects mid-call, an upstream that is down or stalls —
# each with a clear error while other clients are served at once — plus
# JSON-RPC 2.0 echo, concurrent calls answered out of order, duplicate ids,
# cancel, daemon.describe against methods.def, and the CLI's exit codes.
# Ends with the daemon alive and no sanitizer report in its log.
. "$(dirname "$0")/lib.sh"

METHODS_DEF=$(cd "$(dirname "$0")/../../proto" && pwd)/methods.def
PING_OK='{"id":1,"result":{"pong":true}}'

# lt NAME A B: passes when integer A < B ("fail" never does).
lt() {
	if [ "$2" != fail ] && [ "$2" -lt "$3" ]; then
		ok "$1 ($2 < $3)"
	else
		not_ok "$1 ($2, want < $3)"
	fi
}
# lines: the reply lines on stdin as one JSON array.
lines() { jq -sc . 2>/dev/null || echo '"not JSON lines"'; }
# restart_daemon ARGS...: the running daemon must be alive and stop with
# status 0; then a new one starts with ARGS (and the env of the caller).
restart_daemon() {
	local st
	check "daemon alive before restart" daemon_alive
	kill "$DAEMON_PID" 2>/dev/null
	wait "$DAEMON_PID" 2>/dev/null
	st=$?
	DAEMON_PID=
	eq "daemon exits 0 on SIGTERM before restart" "$st" 0
	start_daemon "$@"
}

start_mock
start_daemon

# ---- bad lines: an error each, and the connection goes on -----------------------
out=$(raw '{"id":1,"method":' '{"id":2,"method":"daemon.ping"}' | lines)
jeq "malformed JSON: parse_error, then the next line is answered" "$out" \
    '[{"error":{"code":"m8tesd.parse_error","message":"line is not valid JSON","retryable":false}},
      {"id":2,"result":{"pong":true}}]'

out=$(raw '[1,2]' '"text"' '42' 'null' '{"id":3,"method":"daemon.ping"}' | lines)
jqt "non-objects: invalid_request each, then the ping" "$out" \
    'length == 5 and (.[:4] | all(.error.code == "m8tesd.invalid_request" and
     .error.retryable == false)) and .[4] == {"id":3,"result":{"pong":true}}'

out=$(raw '{"id":4,"method":"no.such.method"}' '{"id":5,"method":"daemon.ping"}' | lines)
jeq "unknown method: method_not_found with the id" "$out" \
    '[{"id":4,"error":{"code":"m8tesd.method_not_found","message":"no method \"no.such.method\"","retryable":false}},
      {"id":5,"result":{"pong":true}}]'

out=$(raw '{"id":6}' '{"id":7,"method":5}' '{"id":{"x":1},"method":"daemon.ping"}' \
    '{"id":8,"method":"daemon.ping"}' | lines)
jqt "bad method or id: invalid_request, then the ping" "$out" \
    'length == 4 and (.[:3] | all(.error.code == "m8tesd.invalid_request")) and
     .[0].id == 6 and .[1].id == 7 and .[3] == {"id":8,"result":{"pong":true}}'

mock_clear
out=$(raw '{"id":10,"method":"teammates.list","params":{"limit":"5"}}' \
    '{"id":11,"method":"teammates.list","params":{"limit":1.5}}' \
    '{"id":12,"method":"teammates.create","params":{"tools":"gmail"}}' \
    '{"id":13,"method":"teammates.get","params":{"teammate_id":true}}' \
    '{"id":14,"method":"teammates.list","params":{"bogus":1}}' \
    '{"id":15,"method":"teammates.list","params":[1]}' \
    '{"id":16,"method":"runs.approve","params":{"run_id":1,"decision":"allow"}}' \
    '{"id":17,"method":"daemon.ping"}' | lines)
jqt "wrong parameter types, unknown or missing: invalid_params with ids" "$out" \
    'length == 8 and ([.[:7][] | [.id, .error.code]] ==
     [[10,"m8tesd.invalid_params"],[11,"m8tesd.invalid_params"],
      [12,"m8tesd.invalid_params"],[13,"m8tesd.invalid_params"],
      [14,"m8tesd.invalid_params"],[15,"m8tesd.invalid_params"],
      [16,"m8tesd.invalid_params"]]) and
     .[7] == {"id":17,"result":{"pong":true}}'
eq "refused params: nothing sent upstream" "$(mock_requests | jq length)" 0

out=$(printf '{"id":20,"method":"daemon.ping","params":{"x":"\xff\xfe"}}\n{"id":21,"method":"daemon.ping"}\n' |
    socat -t 5 - UNIX-CONNECT:"$SOCK" | lines)
jqt "invalid UTF-8: invalid_utf8, then the next line" "$out" \
    'length == 2 and .[0].error.code == "m8tesd.invalid_utf8" and
     .[1] == {"id":21,"result":{"pong":true}}'

d63=$(printf '%.0s[' $(seq 63))$(printf '%.0s]' $(seq 63))
d64=$(printf '%.0s[' $(seq 64))$(printf '%.0s]' $(seq 64))
out=$(raw "{\"id\":22,\"method\":\"daemon.ping\",\"x\":$d63}" \
    "{\"id\":23,\"method\":\"daemon.ping\",\"x\":$d64}" \
    '{"id":24,"method":"daemon.ping"}' | lines)
jqt "nesting: 64 levels pass, 65 are too_deep, then the next line" "$out" \
    'length == 3 and .[0] == {"id":22,"result":{"pong":true}} and
     .[1].error.code == "m8tesd.too_deep" and
     .[2] == {"id":24,"result":{"pong":true}}'

out=$(printf '\n\r\n{"id":25,"method":"daemon.ping"}\r\n\n' |
    socat -t 5 - UNIX-CONNECT:"$SOCK" | lines)
jeq "empty lines ignored, CRLF tolerated" "$out" '[{"id":25,"result":{"pong":true}}]'

# ---- the 1 MiB line limit ----------------------------------------------------------
ping30='{"id":30,"method":"daemon.ping"}'
{
	# Exactly 1,048,576 bytes: accepted.
	printf '%s' "$ping30"
	printf '%*s\n' $((1048576 - ${#ping30})) ''
	# One byte over: refused, the connection goes on.
	pre='{"id":31,"method":"daemon.ping","params":{"x":"'
	printf '%s' "$pre"
	head -c $((1048577 - ${#pre} - 3)) /dev/zero | tr '\0' a
	printf '"}}\n'
	# Five MiB: refused once, skipped without being buffered.
	head -c $((5 * 1048576)) /dev/zero | tr '\0' b
	printf '\n{"id":32,"method":"daemon.ping"}\n'
} >"$T/long.txt"
eq "set-up: the over-limit line is 1,048,577 bytes" \
    "$(sed -n 2p "$T/long.txt" | tr -d '\n' | wc -c)" 1048577
out=$(socat -t 10 - UNIX-CONNECT:"$SOCK" <"$T/long.txt" | lines)
jqt "line limit: at the limit ok, over it line_too_long (twice), then the next line" \
    "$out" 'length == 4 and .[0] == {"id":30,"result":{"pong":true}} and
     .[1].error.code == "m8tesd.line_too_long" and
     .[2].error.code == "m8tesd.line_too_long" and
     .[3] == {"id":32,"result":{"pong":true}}'
check "daemon alive after the long lines" daemon_alive

# ---- JSON-RPC 2.0 ------------------------------------------------------------------
out=$(raw '{"jsonrpc":"2.0","id":"a","method":"daemon.ping"}' \
    '{"jsonrpc":"2.0","id":41,"method":"nope"}' | lines)
jeq "JSON-RPC 2.0: jsonrpc echoed on results and errors" "$out" \
    '[{"jsonrpc":"2.0","id":"a","result":{"pong":true}},
      {"jsonrpc":"2.0","id":41,"error":{"code":"m8tesd.method_not_found","message":"no method \"nope\"","retryable":false}}]'
out=$(raw '{"method":"daemon.ping"}')
eq "no id: the reply has none" "$out" '{"result":{"pong":true}}'

# ---- concurrent calls on one connection -------------------------------------------
mock_fault '{"method":"GET","path":"/api/v2/agents/","delay_ms":1200}'
out=$(raw '{"id":"slow","method":"teammates.list","params":{"limit":3}}' \
    '{"id":"fast","method":"daemon.ping"}' \
    '{"id":"fast-upstream","method":"settings.get"}' | lines)
eq "slow and fast calls: answered in the order they complete" \
    "$(jq -c '[.[].id]' <<<"$out")" '["fast","fast-upstream","slow"]'
jqt "slow and fast calls: each its own result" "$out" \
    '.[0].result == {"pong":true} and .[1].result.retention_mode == "standard"
     and .[2].result.has_more == false'

mock_fault '{"method":"GET","path":"/api/v2/agents/","delay_ms":800}'
out=$(raw '{"id":7,"method":"teammates.list","params":{"limit":4}}' \
    '{"id":7,"method":"daemon.ping"}' | lines)
jqt "duplicate id in flight: duplicate_id at once, the first call completes" \
    "$out" 'length == 2 and .[0].id == 7 and
     .[0].error.code == "m8tesd.duplicate_id" and .[1].id == 7 and
     .[1].result.has_more == false'
out=$(raw '{"id":7,"method":"daemon.ping"}' '{"id":7,"method":"daemon.ping"}' | lines)
jeq "the same id again after the first completed: fine" "$out" \
    '[{"id":7,"result":{"pong":true}},{"id":7,"result":{"pong":true}}]'

mock_fault '{"method":"GET","path":"/api/v2/agents/","delay_ms":2000}'
t0=$(now_ms)
out=$(raw '{"id":7,"method":"teammates.list","params":{"limit":5}}' \
    '{"id":8,"method":"cancel","params":{"id":7}}' \
    '{"id":9,"method":"cancel","params":{"id":"nope"}}' | lines)
took=$(($(now_ms) - t0))
jeq "cancel: the call ends cancelled, cancel answers cancelled:true" \
    "$(jq -c '.[:2]' <<<"$out")" \
    '[{"id":7,"error":{"code":"m8tesd.cancelled","message":"cancelled","retryable":false}},
      {"id":8,"result":{"cancelled":true}}]'
jqt "cancel of an id not in flight: no_such_call" "$out" \
    '.[2].id == 9 and .[2].error.code == "m8tesd.no_such_call"'
lt "cancel: answered without waiting for the upstream (ms)" "$took" 1000
jqt "cancel: the upstream request is dropped" "$(daemon_stats)" \
    '.upstream.active == 0'
mock_faults_clear

# ---- flood past the per-connection cap of 256 calls in flight -------------------
# webhooks.listen stays in flight until cancelled or the connection closes.
for i in $(seq 257); do
	printf '{"id":%d,"method":"webhooks.listen"}\n' "$i"
done >"$T/flood.txt"
printf '{"id":999,"method":"daemon.ping"}\n' >>"$T/flood.txt"
out=$( (cat "$T/flood.txt"; sleep 1.5) | timeout 3 socat - UNIX-CONNECT:"$SOCK" |
    jq -c 'select(has("error")) | [.id, .error.code]' | jq -sc .)
eq "257 calls in flight on one connection: the 257th and more refused" "$out" \
    '[[257,"m8tesd.too_many_calls"],[999,"m8tesd.too_many_calls"]]'
sleep 0.3
jqt "after the flood: its 256 calls went with the connection" "$(daemon_stats)" \
    '.connections.open == 1'
eq "after the flood: ping" "$(call daemon.ping)" "$PING_OK"

# ---- daemon.describe lists every method of methods.def -----------------------------
want=$(sed -n 's/^M("\([^"]*\)", *\([A-Z]*\), *"\([^"]*\)".*/\1 \2 \3/p' "$METHODS_DEF" |
    LC_ALL=C sort)
got=$(call daemon.describe | jq -r '.result.methods[] |
    "\(.name) \(.http.verb // "NONE") \(.http.path // "")"' | sed 's/ $//' |
    LC_ALL=C sort)
eq "daemon.describe: $(wc -l <<<"$want") methods, verbs and paths as in methods.def" \
    "$got" "$(sed 's/ $//' <<<"$want")"
jqt "daemon.describe: params of teammates.list" \
    "$(call daemon.describe '{"method":"teammates.list"}')" \
    '.result.methods | length == 1 and (.[0].params | map(.name) ==
     ["user_id","limit","starting_after","include_archived"]) and
     (.[0].params | map(.in) | all(. == "query")) and .[0].kind != null'

# ---- exit codes of the CLI ----------------------------------------------------------
"$BIN/m8tes" --socket "$SOCK" --json call teammates.get '{"teammate_id":999}' \
    >/dev/null 2>&1
eq "m8tes: not_found exits 3" "$?" 3
"$BIN/m8tes" --socket "$SOCK" --json call teammates.get '{"bogus":1}' \
    >/dev/null 2>&1
eq "m8tes: invalid params exits 2" "$?" 2
"$BIN/m8tes" --socket "$SOCK" --json call runs.get '{"run_id":"../x"}' \
    >/dev/null 2>&1
eq "m8tes: invalid path segment exits 2" "$?" 2
"$BIN/m8tes" --socket "$T/no-daemon.sock" --json call daemon.ping \
    >/dev/null 2>&1
eq "m8tes: no daemon exits 69" "$?" 69
mock_fault '{"method":"GET","path":"/api/v2/agents/","status":429,"retry_after":0,"times":3}'
"$BIN/m8tes" --socket "$SOCK" --json call teammates.list '{"limit":6}' \
    >/dev/null 2>&1
eq "m8tes: rate_limited exits 5" "$?" 5
mock_faults_clear

# ---- 1,000 concurrent connections ----------------------------------------------------
if command -v python3 >/dev/null 2>&1; then
	res=$(python3 - "$SOCK" 1000 <<'EOF'
import json, socket, sys
path, n = sys.argv[1], int(sys.argv[2])
def readline(s):
    buf = b""
    while not buf.endswith(b"\n"):
        c = s.recv(65536)
        if not c:
            break
        buf += c
    return buf.decode()
socks = []
for i in range(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)  # blocking: waits while the backlog is full
    s.settimeout(20)
    socks.append(s)
ctl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
ctl.connect(path)
ctl.settimeout(20)
ctl.sendall(b'{"id":0,"method":"daemon.stats"}\n')
opened = json.loads(readline(ctl))["result"]["connections"]["open"]
for i, s in enumerate(socks):
    s.sendall(b'{"id":%d,"method":"daemon.ping"}\n' % i)
pongs = 0
for i, s in enumerate(socks):
    try:
        if json.loads(readline(s)) == {"id": i, "result": {"pong": True}}:
            pongs += 1
    except Exception:
        pass
for s in socks:
    s.close()
print(json.dumps({"open": opened, "pongs": pongs}))
EOF
)
	jeq "1000 connections held at once, all answered" "$res" \
	    '{"open":1001,"pongs":1000}'
else
	mkdir -p "$T/conc"
	for i in $(seq 1000); do
		printf '{"id":%d,"method":"daemon.ping"}\n' "$i" |
		    socat -t 20 - UNIX-CONNECT:"$SOCK" >"$T/conc/$i" 2>/dev/null &
	done
	wait
	n=0
	for i in $(seq 1000); do
		[ "$(cat "$T/conc/$i")" = "{\"id\":$i,\"result\":{\"pong\":true}}" ] &&
		    n=$((n + 1))
	done
	eq "1000 concurrent connections (socat), all answered" "$n" 1000
fi
# The connection cap: 4,096 held, the next one is told m8tesd.busy.
if command -v python3 >/dev/null 2>&1; then
	res=$(python3 - "$SOCK" 4096 <<'EOF'
import json, socket, sys, time
path, n = sys.argv[1], int(sys.argv[2])
socks = []
for i in range(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)  # blocking: waits while the backlog is full
    s.settimeout(20)
    socks.append(s)
time.sleep(0.5)
extra = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
extra.connect(path)
extra.settimeout(20)
buf = b""
while True:
    c = extra.recv(65536)
    if not c:
        break
    buf += c
socks[0].sendall(b'{"id":1,"method":"daemon.ping"}\n')
pong = socks[0].recv(65536).decode().strip()
for s in socks:
    s.close()
print(json.dumps({"extra": json.loads(buf.decode()), "pong": json.loads(pong)}))
EOF
)
	jeq "4097th connection: m8tesd.busy and closed, the others still served" \
	    "$res" '{"extra":{"error":{"code":"m8tesd.busy","message":"too many connections","retryable":true}},
	      "pong":{"id":1,"result":{"pong":true}}}'
fi
sleep 0.3
jqt "after the 1000 connections: they are closed" "$(daemon_stats)" \
    '.connections.open == 1'
eq "after the 1000 connections: ping" "$(call daemon.ping)" "$PING_OK"

# ---- a client that disconnects mid-call -----------------------------------------
mock_fault '{"method":"GET","path":"/api/v2/agents/","delay_ms":3000}'
before=$(daemon_stats)
(printf '%s\n' '{"id":1,"method":"teammates.list","params":{"limit":7}}'
    sleep 10) | timeout 0.5 socat - UNIX-CONNECT:"$SOCK" >/dev/null 2>&1
lt "mid-call disconnect: another client's ping (ms)" "$(ping_ms)" 200
cpu0=$(awk '{print $14 + $15}' "/proc/$DAEMON_PID/stat")
sleep 1
cpu1=$(awk '{print $14 + $15}' "/proc/$DAEMON_PID/stat")
lt "mid-call disconnect: the daemon idles (CPU ticks in 1 s)" \
    $((cpu1 - cpu0)) 20
after=$(daemon_stats)
jqt "mid-call disconnect: daemon.stats shows the call gone" \
    "$(jq -cn --argjson b "$before" --argjson a "$after" '{b: $b, a: $a}')" \
    '.a.connections.open == 1 and .a.upstream.active == 0 and
     .a.upstream.requests == .b.upstream.requests + 1 and
     .a.calls.total >= .b.calls.total + 2 and
     .a.connections.accepted >= .b.connections.accepted + 2'
mock_faults_clear

# ---- the upstream stalls past --upstream-timeout --------------------------------
restart_daemon --upstream-timeout 1
mock_fault '{"method":"GET","path":"/api/v2/agents/","delay_ms":4000,"times":0}'
mock_clear
t0=$(now_ms)
"$BIN/m8tes" --socket "$SOCK" --json call teammates.list '{"limit":8}' \
    >/dev/null 2>"$T/stall.err" &
cli=$!
sleep 0.5
lt "stalled upstream: another client's ping meanwhile (ms)" "$(ping_ms)" 200
out=$(call teammates.list '{"limit":9}')
took=$(($(now_ms) - t0))
wait "$cli"
eq "stalled upstream: m8tes exits 75" "$?" 75
jqt "stalled upstream: m8tesd.upstream_timeout, retryable" "$out" \
    '.error.code == "m8tesd.upstream_timeout" and .error.retryable == true
     and (.error | has("status") | not)'
eq "stalled upstream: 3 attempts per call" \
    "$(mock_requests | jq -c '[.[] | .query] | group_by(.) | map(length)')" '[3,3]'
lt "stalled upstream: given up within the timeouts (ms)" "$took" 8000
mock_faults_clear
eq "stalled upstream: ping afterwards" "$(call daemon.ping)" "$PING_OK"

# ---- the upstream is down ----------------------------------------------------------------
"$BIN/m8tes-mockd" --listen 127.0.0.1:0 --api-key x --port-file "$T/dead.port" \
    >/dev/null 2>&1 &
dead=$!
wait_for 10 test -s "$T/dead.port"
dead_port=$(cat "$T/dead.port")
kill "$dead"
wait "$dead" 2>/dev/null
BACKOFF=1 BASE_URL=http://127.0.0.1:$dead_port/api/v2 restart_daemon
t0=$(now_ms)
call teammates.list '{"limit":10}' >"$T/down.out" &
down=$!
sleep 0.5
lt "upstream down: another client's ping meanwhile (ms)" "$(ping_ms)" 200
wait "$down"
took=$(($(now_ms) - t0))
jqt "upstream down: m8tesd.upstream_unreachable, retryable" "$(cat "$T/down.out")" \
    '.error.code == "m8tesd.upstream_unreachable" and .error.retryable == true
     and (.error.message | length > 0)'
check "upstream down: retried with backoff 1 s + 2 s ($took ms)" \
    test "$took" -ge 2900 -a "$took" -lt 6000
"$BIN/m8tes" --socket "$SOCK" --json call settings.get cache=bypass \
    >/dev/null 2>&1 &
cli=$!
sleep 0.3
lt "upstream down: another ping while the CLI waits (ms)" "$(ping_ms)" 200
wait "$cli"
eq "upstream down: m8tes exits 69" "$?" 69
jqt "upstream down: stats count the failures" "$(daemon_stats)" \
    '.upstream.failures >= 2 and .upstream.retries >= 4 and
     .upstream.active == 0'

check_daemon_end
finish
