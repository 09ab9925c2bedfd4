#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# What state.db keeps across restarts, and for how long. A run streamed to
# its end is written there (its whole log in one transaction, with its
# result and turn), so after a restart runs.stream replays it line for
# line as the daemon's memory did, after_seq and text_only included, with
# no upstream request; a reply continues its seq, and an idempotent
# replay of runs.create is served from it. A write that meets a locked
# database is tried again (with a warning) and lands once the lock goes;
# one still failing at exit is reported, and the run is then fetched
# upstream. Retention, from the configuration, at start and on reload:
# run logs past run_log_retention_days or beyond the newest
# run_log_max_stored go (and such a run is asked upstream again);
# webhooks past webhook_retention_days or beyond the newest
# webhook_max_stored go, none within both limits; a listener or durable
# consumer behind what is kept starts at the oldest kept webhook, even
# across a stretch of 100,000 pruned seqs.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_streams.sh"
. "$(dirname "$0")/lib_webhooks.sh"

S=whsec_runlog_secret_00000000001
DB=$T/state/state.db
DAY=86400
NOW=$(date +%s)

# sql SQL: runs SQL on state.db beside the daemon (WAL: reads never wait);
# a SELECT prints its rows as "a|b", NULL as nothing.
sql() {
	python3 - "$DB" "$1" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=2, isolation_level=None)
q = sys.argv[2]
if q.lstrip().upper().startswith("SELECT"):
    for row in db.execute(q):
        print("|".join("" if v is None else str(v) for v in row))
else:
    db.executescript(q)
EOF
}

# saved RUN N: state.db holds RUN finished, with events 1..N.
saved() {
	[ "$(sql "SELECT s.terminal, count(e.seq), min(e.seq), max(e.seq)
	    FROM run_status s LEFT JOIN run_events e USING (run_id)
	    WHERE s.run_id = $1")" = "1|$2|1|$2" ]
}

# restart: SIGTERM (exit 0 checked), then start again.
restart() {
	wh_stop
	eq "daemon exits 0 on SIGTERM (restart $((++NRESTART)))" "$WH_RC" 0
	wh_start
}
NRESTART=0

# rstream ID PARAMS: runs.stream on its own connection; prints every line.
rstream() {
	stream "$(jq -cn --argjson id "$1" --argjson p "$2" \
	    '{id:$id, method:"runs.stream", params:$p}')"
}

start_mock
wh_config "webhook_secret = $S"
wh_start

# ---- a finished run is replayed after a restart ------------------------------
stream '{"id":1,"method":"runs.create","params":{"message":"Weekly recap","tools":["gmail"]}}' >"$T/c1.out"
R1=$(run_of <"$T/c1.out")
eq "runs.create: events 1..33, then the result" "$(seqs <"$T/c1.out")" \
    "$(seq_range 1 33)"
rstream 1 "{\"run_id\":$R1}" >"$T/mem.out"
eq "runs.stream from memory: the events runs.create got" \
    "$(events <"$T/mem.out")" "$(events <"$T/c1.out")"
eq "runs.stream from memory: the same result" "$(final <"$T/mem.out")" \
    "$(final <"$T/c1.out")"
check "state.db: the run's 33 events, marked finished" wait_for 10 saved "$R1" 33
eq "state.db: its result and turn" \
    "$(sql "SELECT turn, json_extract(result, '\$.seq'),
        json_extract(result, '\$.status') FROM run_status WHERE run_id = $R1")" \
    "0|33|completed"
jeq "state.db: the result runs.create answered" \
    "$(sql "SELECT result FROM run_status WHERE run_id = $R1")" \
    "$(final <"$T/c1.out" | jq -c .result)"

restart
mock_clear
rstream 1 "{\"run_id\":$R1}" >"$T/disk.out"
eq "after a restart: runs.stream answers line for line as from memory" \
    "$(cat "$T/disk.out")" "$(cat "$T/mem.out")"
eq "after a restart: no upstream request" "$(wire_list)" ""
rstream '"a"' "{\"run_id\":$R1,\"after_seq\":20}" >"$T/a20.out"
eq "after_seq 20 across the restart: events 21..33" "$(seqs <"$T/a20.out")" \
    "$(seq_range 21 33)"
eq "after_seq 20: exactly those of the log" "$(events <"$T/a20.out")" \
    "$(events <"$T/c1.out" | tail -n 13)"
eq "after_seq 20: the same result" "$(final <"$T/a20.out")" \
    "$(final <"$T/c1.out")"
rstream 2 "{\"run_id\":$R1,\"after_seq\":33}" >"$T/a33.out"
eq "after_seq 33 (the last): only the result" \
    "$(wc -l <"$T/a33.out") $(final <"$T/a33.out")" "1 $(final <"$T/c1.out")"
rstream 3 "{\"run_id\":$R1,\"after_seq\":500}" >"$T/a500.out"
eq "after_seq past the end: only the result" \
    "$(wc -l <"$T/a500.out") $(final <"$T/a500.out")" "1 $(final <"$T/c1.out")"
rstream 4 "{\"run_id\":$R1,\"text_only\":true}" >"$T/t.out"
eq "text_only across the restart: the text deltas, seq 6..23" \
    "$(seqs <"$T/t.out") $(types <"$T/t.out" | tr , '\n' | sort -u)" \
    "$(seq_range 6 23) text-delta"
eq "still no upstream request" "$(wire_list)" ""
eq "daemon.stats: no upstream stream opened" "$(stats_of upstream_streams)" 0

# ---- a reply continues the run's seq after a restart -------------------------
mock_clear
stream "{\"id\":5,\"method\":\"runs.reply\",\"params\":{\"run_id\":$R1,\"message\":\"Also as PDF\"}}" >"$T/r1.out"
eq "reply after a restart: the one POST" "$(wire_list)" \
    "POST /api/v2/runs/$R1/reply"
last=$(final <"$T/r1.out" | jq .result.seq)
eq "reply after a restart: seq goes on from 34" "$(seqs <"$T/r1.out")" \
    "$(seq_range 34 "$last")"
jqt "reply: the new turn's result" "$(final <"$T/r1.out")" \
    ".result.status == \"completed\" and .result.run_id == $R1 and $last > 40"
check "state.db: both turns, $last events" wait_for 10 saved "$R1" "$last"
eq "state.db: the second turn starts after event 33" \
    "$(sql "SELECT turn FROM run_status WHERE run_id = $R1")" 33
restart
mock_clear
rstream 6 "{\"run_id\":$R1}" >"$T/both.out"
eq "after another restart: both turns' events, 1..$last" \
    "$(events <"$T/both.out")" \
    "$( (events <"$T/c1.out"; events <"$T/r1.out") )"
eq "... and the second turn's result" "$(final <"$T/both.out")" \
    "$(final <"$T/r1.out")"
eq "... with no upstream request" "$(wire_list)" ""

# ---- an idempotent replay of runs.create after a restart --------------------
IDEM='{"id":7,"method":"runs.create","params":{"message":"Idem recap","idempotency_key":"runlog-idem-1"}}'
stream "$IDEM" >"$T/i1.out"
R2=$(run_of <"$T/i1.out")
check "state.db: run $R2 saved" wait_for 10 saved "$R2" 33
restart
mock_clear
stream "$IDEM" >"$T/i2.out"
eq "idempotent replay after a restart: the one POST, answered by the run" \
    "$(mock_requests | jq -r '[.[] | "\(.method) \(.path) \(.headers["idempotency-key"])"] | join(",")')" \
    "POST /api/v2/runs/ runlog-idem-1"
eq "idempotent replay: the run's events from state.db" \
    "$(events <"$T/i2.out")" "$(events <"$T/i1.out")"
eq "idempotent replay: its result" "$(final <"$T/i2.out")" \
    "$(final <"$T/i1.out")"

# ---- state.db locked by another process -------------------------------------
# lock_db (lib_webhooks.sh) holds the lock until unlock_db.
unlock_db() { touch "$T/unlock"; wait "$LOCKER"; }
log_has() { grep -qF -- "$1" "$T/daemon.log"; }

lock_db 30
stream '{"id":8,"method":"runs.create","params":{"message":"Locked recap"}}' >"$T/l1.out"
R3=$(run_of <"$T/l1.out")
jqt "a run ending while state.db is locked is answered as ever" \
    "$(final <"$T/l1.out")" '.result.status == "completed" and .result.seq == 33'
check "the failed write is logged, to be tried again" wait_for 10 log_has \
    "run $R3: cannot write its event log to state.db yet (Device or resource busy); trying again"
eq "nothing of it in state.db while locked" \
    "$(sql "SELECT count(*) FROM run_events WHERE run_id = $R3")" 0
unlock_db
check "once the lock is gone, the retry writes it" wait_for 10 saved "$R3" 33
restart
mock_clear
rstream 9 "{\"run_id\":$R3}" >"$T/l2.out"
eq "after a restart: that run from state.db" "$(events <"$T/l2.out")" \
    "$(events <"$T/l1.out")"
eq "... with no upstream request" "$(wire_list)" ""

# Still locked at exit: said so in the log; after the restart the run is
# fetched from the upstream, as without state.db.
lock_db 30
stream '{"id":10,"method":"runs.create","params":{"message":"Locked at exit"}}' >"$T/x1.out"
R4=$(run_of <"$T/x1.out")
check "locked: the failed write is logged" wait_for 10 log_has \
    "run $R4: cannot write its event log to state.db yet"
wh_stop
eq "daemon exits 0 on SIGTERM with state.db locked" "$WH_RC" 0
check "the log it could not write is reported at exit" log_has \
    "run $R4: its event log is not in state.db (Device or resource busy); it will not be replayed after a restart"
unlock_db
wh_config "webhook_secret = $S"
wh_start
mock_clear
rstream 11 "{\"run_id\":$R4}" >"$T/x2.out"
eq "that run is asked upstream: attach (409, ended), then its state" \
    "$(wire_list)" "GET /api/v2/runs/$R4/stream,GET /api/v2/runs/$R4"
jqt "... and answered" "$(final <"$T/x2.out")" \
    ".result.status == \"completed\" and .result.run_id == $R4"

# ---- retention of run logs -----------------------------------------------------
wh_stop
eq "daemon exits 0 on SIGTERM" "$WH_RC" 0
sql "INSERT INTO run_status (run_id, terminal, updated_at, result, turn)
    VALUES (9001, 1, $((NOW - 40 * DAY)), '{\"run_id\":9001,\"seq\":1}', 0),
           (9002, 1, $((NOW - 20 * DAY)),
            '{\"run_id\":9002,\"text\":\"kept\",\"seq\":2,\"status\":\"completed\"}', 0);
    INSERT INTO run_events (run_id, seq, event) VALUES
        (9001, 1, '{\"type\":\"text-delta\",\"id\":\"t\",\"delta\":\"old\"}'),
        (9002, 1, '{\"type\":\"text-delta\",\"id\":\"t\",\"delta\":\"ke\"}'),
        (9002, 2, '{\"type\":\"text-delta\",\"id\":\"t\",\"delta\":\"pt\"}');"
wh_config "webhook_secret = $S" "run_log_retention_days = 30" \
    "run_log_max_stored = 100"
wh_start
check "at start, retention deletes what is past it" wait_for 10 log_has \
    "state.db retention: 2 rows deleted"
eq "run_log_retention_days = 30: the run idle for 40 days is gone, 20 kept" \
    "$(sql "SELECT group_concat(run_id) FROM (SELECT run_id FROM run_status
        WHERE run_id > 9000 ORDER BY run_id)")" 9002
mock_clear
rstream 12 '{"run_id":9002}' >"$T/k.out"
eq "the kept one is served from state.db as stored" "$(cat "$T/k.out")" \
    '{"id":12,"seq":1,"event":{"type":"text-delta","id":"t","delta":"ke"}}
{"id":12,"seq":2,"event":{"type":"text-delta","id":"t","delta":"pt"}}
{"id":12,"result":{"run_id":9002,"text":"kept","seq":2,"status":"completed"}}'
eq "... with no upstream request" "$(wire_list)" ""
jqt "the pruned one is asked upstream (which does not know it)" \
    "$(rstream 13 '{"run_id":9001}' | final)" '.error.code == "m8tes.not_found"'
eq "... GET /runs/9001/stream" "$(wire_list)" "GET /api/v2/runs/9001/stream"

# A reload with run_log_max_stored = 2 keeps the two runs updated last.
wh_config "webhook_secret = $S" "run_log_max_stored = 2"
mark=$(wc -l <"$T/daemon.log")
jqt "daemon.reload" "$(call daemon.reload)" '.result.reloaded == true'
pruned_since() { tail -n +"$((mark + 1))" "$T/daemon.log" | grep -q 'state.db retention: [0-9]* rows deleted'; }
check "the reload applies the new limit at once" wait_for 10 pruned_since
eq "run_log_max_stored = 2: the two newest runs are kept" \
    "$(sql "SELECT group_concat(run_id) FROM (SELECT run_id FROM run_status
        ORDER BY run_id)")" "$R3,$R4"
check "... $R3 with its whole log" saved "$R3" 33
eq "... $R4 as it was answered: its state fetched, no events" \
    "$(sql "SELECT (SELECT count(*) FROM run_events WHERE run_id = $R4),
        json_extract(result, '\$.run.id') FROM run_status
        WHERE run_id = $R4")" "0|$R4"
mock_clear
rstream 14 "{\"run_id\":$R3}" >"$T/l3.out"
eq "a kept run: from state.db" "$(cat "$T/l3.out")" \
    "$(sed 's/^{"id":9,/{"id":14,/' "$T/l2.out")"
eq "... with no upstream request" "$(wire_list)" ""
rstream 15 "{\"run_id\":$R2}" >"$T/p.out"
eq "a pruned run is attached upstream again" "$(wire_list)" \
    "GET /api/v2/runs/$R2/stream,GET /api/v2/runs/$R2"
jqt "... and answered" "$(final <"$T/p.out")" \
    ".result.status == \"completed\" and .result.run_id == $R2"

# ---- retention of received webhooks -----------------------------------------------
out=$(wh_deliver "{\"secret\":\"$S\",\"count\":6,\"distinct\":true}")
eq "6 webhooks received" "$(wh_status "$out")" "200 200 200 200 200 200"
jqt "consumer c1 acknowledges seq 1" \
    "$(wh_call webhooks.ack '{"consumer":"c1","seq":1}')" '.result.acked == 1'
wh_config "webhook_secret = $S" "webhook_max_stored = 4"
mark=$(wc -l <"$T/daemon.log")
jqt "daemon.reload" "$(call daemon.reload)" '.result.reloaded == true'
check "the reload prunes the inbox" wait_for 10 pruned_since
eq "webhook_max_stored = 4: seqs 3..6 kept" \
    "$(sql "SELECT group_concat(seq) FROM (SELECT seq FROM inbox ORDER BY seq)")" \
    "3,4,5,6"
eq "after_seq 0, below what is kept: starts at the oldest kept" \
    "$(wh_events '{"after_seq":0}' 4 | jq -r .seq | paste -sd, -)" "3,4,5,6"
eq "consumer c1 (acked 1): starts at the oldest kept" \
    "$(wh_events '{"consumer":"c1"}' 4 | jq -r .seq | paste -sd, -)" "3,4,5,6"

# As if 200,000 webhooks had come and gone since consumer c2's ack: one
# 40 days old at seq 200000 (past webhook_retention_days), one 20 days old
# and one new.
wh_stop
eq "daemon exits 0 on SIGTERM" "$WH_RC" 0
sql "INSERT INTO inbox (seq, webhook_id, received_at, event_type, run_id,
        headers, body) VALUES
      (200000, 'msg_40d', $((NOW - 40 * DAY)), 'run.completed', 1, '{}', '{}'),
      (200001, 'msg_20d', $((NOW - 20 * DAY)), 'run.completed', 2, '{}', '{}'),
      (200002, 'msg_new', $NOW, 'run.completed', 3, '{}', '{}');
    INSERT INTO consumers (name, acked_seq) VALUES ('c2', 6);"
wh_config "webhook_secret = $S" "webhook_retention_days = 30"
wh_start
check "at start: retention" wait_for 10 log_has \
    "state.db retention: 1 rows deleted"
eq "webhook_retention_days = 30: 40 days old gone; 20 days old and new kept" \
    "$(sql "SELECT group_concat(webhook_id) FROM (SELECT webhook_id FROM inbox
        WHERE seq >= 200000 ORDER BY seq)")" "msg_20d,msg_new"
eq "... and the 4 recent ones" "$(sql "SELECT count(*) FROM inbox WHERE seq < 200000")" 4
evs=$(wh_events '{"consumer":"c2"}' 2)
eq "consumer c2, 199,995 seqs behind a pruned stretch: not lagged, the kept ones" \
    "$(printf '%s\n' "$evs" | jq -r '"\(.seq) \(.webhook_id)"' | paste -sd, -)" \
    "200001 msg_20d,200002 msg_new"
eq "after_seq 6 likewise" \
    "$(wh_events '{"after_seq":6}' 2 | jq -r .seq | paste -sd, -)" \
    "200001,200002"

check_daemon_end
finish
