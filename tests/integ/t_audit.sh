#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The audit log: every upstream call is recorded in state.db with the
# peer's uid, pid and process name (from SO_PEERCRED and /proc), the
# method, the upstream status, the time and the duration; the daemon's own
# methods and refused calls are not. audit.list and `m8tes audit [--uid N]
# [--method GLOB] [--limit N]` read it, newest first, for admins only (a
# non-root user gets a permission error). It survives restarts and is
# bounded: rows older than audit_retention_days go, and at most 100000 are
# kept. Needs root (creates m8t_alice and m8t_bob); skips otherwise.

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_peers.sh"

need_root
for u in m8t_alice m8t_bob; do
	ensure_user "$u" || { echo "cannot create user $u"; exit 1; }
done
ALICE=$(id -u m8t_alice) BOB=$(id -u m8t_bob)
chmod 755 "$T"
CONF=$T/m8tesd.conf
printf 'socket_mode = 0666\naudit_retention_days = 2\n' >"$CONF"
start_mock
start_daemon --config "$CONF"

# peer_call PEER METHOD PARAMS: one call with socat as PEER; the reply in
# OUT, the client's pid in PID_OUT.
peer_call() {
	req_line "$2" "${3-}" >"$T/req"
	setpriv --reuid="$(peer_uid "$1")" --regid="$(peer_gid "$1")" \
	    --clear-groups -- socat -t 10 - UNIX-CONNECT:"$SOCK" \
	    <"$T/req" >"$T/reply" &
	PID_OUT=$!
	wait "$PID_OUT"
	OUT=$(tail -n 1 "$T/reply")
	cat "$T/reply" >>"$T/replies.log"
}
# m8tes_call PEER ARGS...: the m8tes client as PEER (JSON output); its
# pid in PID_OUT, its exit status in RC_OUT, its output in OUT.
m8tes_call() {
	local p=$1
	shift
	setpriv --reuid="$(peer_uid "$p")" --regid="$(peer_gid "$p")" \
	    --clear-groups -- "$BIN/m8tes" --socket "$SOCK" --json "$@" \
	    >"$T/reply" 2>&1 &
	PID_OUT=$!
	wait "$PID_OUT"
	RC_OUT=$?
	OUT=$(cat "$T/reply")
	cat "$T/reply" >>"$T/replies.log"
}
# row UID PID COMM METHOD STATUS: the expected row, less time and duration.
row() {
	printf '{"uid":%s,"pid":%s,"comm":"%s","method":"%s","status":%s}' "$@"
}

T0=$(now_ms)
peer_call m8t_alice teammates.list '{"cache":"bypass"}'
r1=$(row "$ALICE" "$PID_OUT" socat teammates.list 200)
m8tes_call m8t_alice teammates get 424242
eq "alice: m8tes teammates get of a missing teammate exits 3" "$RC_OUT" 3
r2=$(row "$ALICE" "$PID_OUT" m8tes teammates.get 404)
peer_call m8t_bob runs.create '{"message":"audit me","stream":false}'
r3=$(row "$BOB" "$PID_OUT" socat runs.create 201)
peer_call m8t_bob teammates.create '{"name":"bob'"'"'s"}'
r4=$(row "$BOB" "$PID_OUT" socat teammates.create 201)
peer_call 0:0 runs.create '{"message":"streamed"}'
jqt "root: a streamed run" "$OUT" '.result.finished == true'
r5=$(row 0 "$PID_OUT" socat runs.create 200)
mock_fault '{"method":"GET","path":"/api/v2/agents/","status":503,"times":0}'
peer_call m8t_alice teammates.list '{"cache":"bypass"}'
r6=$(row "$ALICE" "$PID_OUT" socat teammates.list 503)
mock_faults_clear
# Not upstream calls: the daemon's own methods, refused calls, bad params.
peer_call m8t_alice daemon.ping
peer_call m8t_alice daemon.hello
peer_call m8t_alice auth.status
jqt "alice may not read auth.status" "$OUT" '.error.code == "m8tesd.forbidden"'
peer_call m8t_alice teammates.list '{"limit":"many"}'
T1=$(now_ms)

out=$(call audit.list)
want="[$r6,$r5,$r4,$r3,$r2,$r1]"
jeq "audit.list: every upstream call, newest first, nothing else" \
    "$(printf '%s' "$out" | jq -c '[.result.data[] | del(.time_ms, .duration_ms)]')" \
    "$want"
jqt "audit.list: times within the test's, in order" "$out" \
    "[.result.data[].time_ms] as \$t | (\$t | all(. >= $T0 and . <= $T1)) and
     \$t == (\$t | sort | reverse)"
jqt "audit.list: durations" "$out" \
    "all(.result.data[]; .duration_ms >= 0 and .duration_ms <= $((T1 - T0)))"

jqt "audit.list uid=alice" "$(call audit.list "{\"uid\":$ALICE}")" \
    "[.result.data[] | del(.time_ms, .duration_ms)] == [$r6,$r2,$r1]"
jqt "audit.list method=runs.*" "$(call audit.list '{"method":"runs.*"}')" \
    "[.result.data[] | del(.time_ms, .duration_ms)] == [$r5,$r3]"
jqt "audit.list limit=2" "$(call audit.list '{"limit":2}')" \
    "[.result.data[] | del(.time_ms, .duration_ms)] == [$r6,$r5]"
jqt "audit.list since the future" \
    "$(call audit.list "{\"since\":$(( T1 / 1000 + 60 ))}")" '.result.data == []'
jeq "audit.list limit=0 is refused" "$(call audit.list '{"limit":0}')" \
    '{"id":1,"error":{"code":"m8tesd.invalid_params","message":"\"limit\" must be 1..10000","retryable":false}}'

# The command line, as root and as alice.
m8tes_call 0:0 audit --uid "$BOB"
eq "m8tes audit --uid bob exits 0" "$RC_OUT" 0
jqt "m8tes audit --uid bob: bob's calls" "$OUT" \
    "[.data[] | del(.time_ms, .duration_ms)] == [$r4,$r3]"
m8tes_call 0:0 audit --method 'teammates.*' --limit 1
jqt "m8tes audit --method 'teammates.*' --limit 1" "$OUT" \
    "[.data[] | del(.time_ms, .duration_ms)] == [$r6]"
m8tes_call m8t_alice audit
eq "m8tes audit as alice: permission error (exit 4)" "$RC_OUT" 4
eq "... saying why" "$OUT" \
    "m8tes: audit.list needs root, the daemon's own user or admin = true (m8tesd.forbidden)"
m8tes_call m8t_alice audit --uid "$ALICE"
eq "m8tes audit --uid (her own) as alice: refused too" "$RC_OUT" 4
m8tes_call m8t_bob call audit.list '{}'
eq "audit.list as bob: refused" "$RC_OUT" 4
if command -v script >/dev/null 2>&1; then
	script -qec "$BIN/m8tes --socket $SOCK audit --uid $BOB" /dev/null \
	    >"$T/table" 2>&1
	tr -d '\r' <"$T/table" >>"$T/replies.log"
	eq "m8tes audit on a terminal: a table" \
	    "$(tr -d '\r' <"$T/table" | sed -n 1p | tr -s ' ')" \
	    "TIME UID PID COMM METHOD STATUS DURATION"
	check "... with bob's rows" [ "$(tr -d '\r' <"$T/table" | grep -c " $BOB ")" = 2 ]
fi

# ---- in state.db: across a restart, and bounded ----------------------------

before=$(call audit.list | jq -c .result)
stop_daemon
start_daemon --config "$CONF"
eq "the audit log survives a restart" "$(call audit.list | jq -c .result)" "$before"

if command -v python3 >/dev/null 2>&1; then
	# sql STATEMENT...: runs statements on state.db (daemon stopped).
	sql() {
		python3 - "$T/state/state.db" "$@" <<'EOF'
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1])
now = int(time.time() * 1000)
day = 86400000
for stmt in sys.argv[2:]:
    if stmt.startswith("old:"):  # old:UID:DAYS:COUNT rows that old
        _, uid, days, n = stmt.split(":")
        db.executemany("INSERT INTO audit (time_ms, uid, pid, comm, method,"
                       " status, duration_ms) VALUES (?, ?, 1, 'old',"
                       " 'teammates.list', 200, 0)",
                       [(now - int(float(days) * day), int(uid))] * int(n))
    else:
        for r in db.execute(stmt):
            print(*r)
db.commit()
EOF
	}
	stop_daemon
	sql "old:7777:3:5" "old:7777:1:4"
	start_daemon --config "$CONF"
	peer_call m8t_alice teammates.list '{"cache":"bypass"}'
	jqt "audit_retention_days = 2: rows 3 days old are gone, a day old kept" \
	    "$(call audit.list '{"uid":7777}')" '.result.data | length == 4'
	stop_daemon
	eq "... in state.db" "$(sql 'SELECT count(*) FROM audit WHERE uid = 7777')" 4

	sql "old:8888:0:100010"
	eq "100010 rows more in state.db" \
	    "$(sql 'SELECT count(*) FROM audit WHERE uid = 8888')" 100010
	start_daemon --config "$CONF"
	peer_call m8t_bob teammates.list '{"cache":"bypass"}'
	last=$(row "$BOB" "$PID_OUT" socat teammates.list 200)
	jqt "the newest call is recorded" "$(call audit.list '{"limit":1}')" \
	    "[.result.data[] | del(.time_ms, .duration_ms)] == [$last]"
	stop_daemon
	eq "at most 100000 rows are kept" "$(sql 'SELECT count(*) FROM audit')" 100000
	eq "... the oldest went first" \
	    "$(sql 'SELECT count(*) FROM audit WHERE uid != 8888')" 1
	start_daemon --config "$CONF"
else
	echo "SKIP: python3 is missing (retention checks)"
fi

check_daemon_end
finish
