#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Streaming runs on the socket: runs.create (streaming by default),
# runs.reply, tasks.run and runs.stream answer with the upstream's events
# as `event` lines numbered by `seq`, then one result line with the
# accumulated run (text, errors of every terminal type, stop reason, tool
# calls); text_only. One upstream transfer per run however many local
# subscribers (the mock's request log proves it); late joiners and
# reconnects with after_seq get exactly what they missed; a finished run
# is served from the daemon's log with no upstream request. Permission
# requests and questions reach every subscriber and are answered from any
# client. A subscriber that stops reading is held at a bounded queue, then
# gets `lagged` and resumes from the log, while the others get everything
# and the daemon's memory stays bounded.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_streams.sh"

# The stalled-reader check compares the daemon's RSS growth over two
# floods. Under ASan, freed memory waits in a quarantine of up to 256 MiB
# before reuse, which makes that growth vary by tens of MiB from run to
# run; a small quarantine keeps use-after-free detection for recent frees
# and lets RSS follow live memory.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=4

start_mock
start_daemon

TEXT1='Done — I worked through \"Weekly recap\" and saved the numbers to report.csv, with a chart in chart.png.'
# The events of a plain turn whose output text has N words.
plain_types() {
	printf 'metadata,reasoning-start,reasoning-delta,reasoning-end,text-start,'
	for _ in $(seq "$1"); do printf 'text-delta,'; done
	printf 'text-end,tool-call-start,tool-call-delta,tool-call-delta,'
	printf 'tool-call-end,tool-result-end,todo-update,run_metrics,metadata,done'
}

# ---- runs.create streams by default -----------------------------------------
mock_clear
stream '{"id":1,"method":"runs.create","params":{"message":"Weekly recap","tools":["gmail"]}}' >"$T/c1.out"
wire "runs.create" POST /runs/ "" \
    '{"message":"Weekly recap","stream":true,"tools":["gmail"]}' idem
eq "runs.create: event types in order" "$(types <"$T/c1.out")" \
    "$(plain_types 18)"
eq "runs.create: seq 1..33, then the result" "$(seqs <"$T/c1.out")" \
    "$(seq_range 1 33)"
eq "runs.create: every line carries the call's id" \
    "$(jq -r .id "$T/c1.out" | sort -u)" 1
eq "runs.create: the events as the upstream sent them (metadata)" \
    "$(sed -n 1p "$T/c1.out")" \
    '{"id":1,"seq":1,"event":{"type":"metadata","payload":{"run_id":1,"teammate_id":null}}}'
eq "runs.create: the events as the upstream sent them (tool call)" \
    "$(sed -n 25,29p "$T/c1.out" | jq -c .event | paste -sd' ' -)" \
    '{"type":"tool-call-start","toolCallId":"toolu_1_1","toolName":"gmail"} {"type":"tool-call-delta","toolCallId":"toolu_1_1","delta":"{\"to\":\"ops@example.com\","} {"type":"tool-call-delta","toolCallId":"toolu_1_1","delta":"\"subject\":\"Weekly recap\"}"} {"type":"tool-call-end","toolCallId":"toolu_1_1"} {"type":"tool-result-end","toolCallId":"toolu_1_1","result":{"status":"sent","message_id":"msg_mock_1"}}'
RESULT1=$(final <"$T/c1.out")
jeq "runs.create: the accumulated run" "$RESULT1" "{\"result\":{
    \"run_id\":1,\"text\":\"$TEXT1\",\"reasoning\":\"Step 1 of 2. \n\",
    \"plan\":\"\",\"errors\":[],\"has_errors\":false,
    \"stop_reason\":\"end_turn\",\"finished\":true,\"truncated\":false,
    \"tool_calls\":[{\"id\":\"toolu_1_1\",\"name\":\"gmail\",
      \"arguments\":\"{\\\"to\\\":\\\"ops@example.com\\\",\\\"subject\\\":\\\"Weekly recap\\\"}\",
      \"result\":{\"status\":\"sent\",\"message_id\":\"msg_mock_1\"},
      \"completed\":true,
      \"todos\":[{\"id\":\"1\",\"content\":\"Pull the numbers\",\"status\":\"completed\"},
                 {\"id\":\"2\",\"content\":\"Send the recap\",\"status\":\"completed\"}]}],
    \"usage\":{\"input_tokens\":1200,\"output_tokens\":300,\"cache_read_tokens\":0,
      \"cache_creation_tokens\":0,\"total_tokens\":1500,\"cost_usd\":\"0.012000\"},
    \"seq\":33,\"status\":\"completed\"}}"
eq "runs.create: text is the concatenated text deltas" \
    "$(jq -j 'select(.event.type == "text-delta") | .event.delta' "$T/c1.out")" \
    "$(jq -r .result.text <<<"$RESULT1")"

# ---- text_only ----------------------------------------------------------------
mock_clear
stream '{"id":"t","method":"runs.create","params":{"message":"Weekly recap","text_only":true}}' >"$T/c2.out"
wire "text_only" POST /runs/ "" '{"message":"Weekly recap","stream":true}' idem
eq "text_only: only text-delta events" "$(types <"$T/c2.out" | tr , '\n' | sort -u)" \
    text-delta
eq "text_only: they keep the run's seq (6..23)" "$(seqs <"$T/c2.out")" \
    "$(seq_range 6 23)"
jqt "text_only: the same accumulated run" "$(final <"$T/c2.out")" \
    ".result.run_id == 2 and .result.text == \"$TEXT1\" and
     .result.seq == 33 and (.result.tool_calls | length) == 1"

# ---- runs.reply continues the run's seq ----------------------------------------
mock_clear
stream '{"id":2,"method":"runs.reply","params":{"run_id":1,"message":"Also as PDF"}}' >"$T/r1.out"
wire "runs.reply" POST /runs/1/reply "" \
    '{"message":"Also as PDF","stream":true}' idem
eq "runs.reply: the new turn's events, seq 34..67" "$(seqs <"$T/r1.out")" \
    "$(seq_range 34 67)"
eq "runs.reply: event types" "$(types <"$T/r1.out")" "$(plain_types 19)"
RESULT2=$(final <"$T/r1.out")
jqt "runs.reply: the turn's accumulated text, run 1" "$RESULT2" \
    '.result.run_id == 1 and .result.seq == 67 and
     .result.status == "completed" and .result.finished == true and
     (.result.text | startswith("Done — I worked through \"Also as PDF\""))'

# ---- tasks.run -------------------------------------------------------------------
TM=$(rpc teammates.create '{"name":"reporter"}' | jq .id)
TK=$(rpc tasks.create "{\"teammate_id\":$TM,\"instructions\":\"Monthly numbers\"}" | jq .id)
mock_clear
stream "{\"id\":3,\"method\":\"tasks.run\",\"params\":{\"task_id\":$TK,\"user_id\":null}}" >"$T/k1.out"
wire "tasks.run" POST "/tasks/$TK/runs" "" '{"stream":true}' idem
eq "tasks.run: events" "$(types <"$T/k1.out")" "$(plain_types 18)"
jqt "tasks.run: the task's run" "$(final <"$T/k1.out")" \
    '.result.run_id == 3 and .result.status == "completed" and
     (.result.text | startswith("Done — I worked through \"Monthly numbers\""))'

# ---- a finished run comes from the daemon's log ------------------------------------
mock_clear
stream '{"id":4,"method":"runs.stream","params":{"run_id":1}}' >"$T/s1.out"
eq "runs.stream (finished): no upstream request" "$(wire_list)" ""
eq "runs.stream (finished): both turns, seq 1..67" "$(seqs <"$T/s1.out")" \
    "$(seq_range 1 67)"
eq "runs.stream (finished): the events as first sent" \
    "$(events <"$T/s1.out" | head -n 33)" "$(events <"$T/c1.out")"
eq "runs.stream (finished): the last turn's result" "$(final <"$T/s1.out")" \
    "$RESULT2"
stream '{"id":5,"method":"runs.stream","params":{"run_id":1,"after_seq":60}}' >"$T/s2.out"
eq "runs.stream after_seq 60: seq 61..67" "$(seqs <"$T/s2.out")" \
    "$(seq_range 61 67)"
eq "runs.stream after_seq 60: those events exactly" \
    "$(events <"$T/s2.out")" "$(events <"$T/r1.out" | tail -n 7)"
stream '{"id":6,"method":"runs.stream","params":{"run_id":1,"after_seq":67}}' >"$T/s3.out"
eq "runs.stream after_seq at the end: only the result" \
    "$(cat "$T/s3.out")" "{\"id\":6,$(jq -c .result <<<"$RESULT2" |
        sed 's/^/"result":/')}"
stream '{"id":7,"method":"runs.stream","params":{"run_id":1,"text_only":true,"after_seq":40}}' >"$T/s4.out"
eq "runs.stream text_only after_seq 40: text deltas 41..57" \
    "$(seqs <"$T/s4.out")" "$(seq_range 41 57)"
eq "finished-run replays: still no upstream request" "$(wire_list)" ""

# ---- attaching to a run the daemon has not seen --------------------------------------
run=$(mock_post /runs/ '{"message":"Polled one","stream":false}' | jq .id)
mock_get "/runs/$run" >/dev/null
mock_get "/runs/$run" >/dev/null
mock_clear
out=$(stream "{\"id\":8,\"method\":\"runs.stream\",\"params\":{\"run_id\":$run}}")
eq "runs.stream (ended upstream): attach, 409, then the run" "$(wire_list)" \
    "GET /api/v2/runs/$run/stream,GET /api/v2/runs/$run"
jqt "runs.stream (ended upstream): the run's final state" "$out" \
    ".id == 8 and .result.run_id == $run and .result.status == \"completed\"
     and .result.finished == true and .result.seq == 0 and
     .result.run.id == $run and .result.run.status == \"completed\""
# A live run started elsewhere: one attach, which replays its turn.
curl -sN -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
    -d '{"message":"[approval] Elsewhere","stream":true}' "$MOCK_URL/runs/" \
    >"$T/elsewhere.sse" &
CURL_PID=$!
wait_for 10 grep -q awaiting_approval "$T/elsewhere.sse"
R=$(grep -m1 -o '"run_id":[0-9]*' "$T/elsewhere.sse" | cut -d: -f2)
mock_clear
sub_start x "{\"id\":\"x\",\"method\":\"runs.stream\",\"params\":{\"run_id\":$R}}"
wait_line x awaiting_approval
rpc runs.approve "{\"run_id\":$R,\"request_id\":\"req_${R}_1\",\"decision\":\"allow\"}" >/dev/null
sub_wait x
wait "$CURL_PID"
eq "runs.stream (live elsewhere): one attach" "$(wire_list)" \
    "GET /api/v2/runs/$R/stream,POST /api/v2/runs/$R/approve"
eq "runs.stream (live elsewhere): the turn from its first event, as sent" \
    "$(jq -c 'select(.event) | .event' "$T/x.out")" \
    "$(sed -n 's/^data: //p' "$T/elsewhere.sse" | grep -v '^\[DONE\]$')"
jqt "runs.stream (live elsewhere): the run" "$(final <"$T/x.out")" \
    ".result.run_id == $R and .result.status == \"completed\" and
     .result.finished == true and (.result.text | startswith(\"Done\"))"

out=$(stream '{"id":9,"method":"runs.stream","params":{"run_id":999}}')
jqt "runs.stream (unknown run): m8tes.not_found" "$out" \
    '.id == 9 and .error.code == "m8tes.not_found" and .error.status == 404'
out=$(stream '{"id":10,"method":"runs.stream","params":{"run_id":"abc"}}')
jqt "runs.stream (run_id not a number): invalid_params" "$out" \
    '.id == 10 and .error.code == "m8tesd.invalid_params"'

# ---- every terminal type ------------------------------------------------------------
for ty in sdk_error AGENT_RUNNER_DIED RUNNER_LIFECYCLE_ERROR \
    SANDBOX_BOOT_TIMEOUT SANDBOX_QUOTA_EXHAUSTED SANDBOX_UNAVAILABLE \
    SNAPSHOT_VERSION_MISMATCH; do
	stream "{\"id\":1,\"method\":\"runs.create\",\"params\":{\"message\":\"[fail:$ty] go\"}}" >"$T/f.out"
	eq "$ty: the failure frame ends the events" \
	    "$(types <"$T/f.out")" \
	    "metadata,reasoning-start,reasoning-delta,reasoning-end,$ty"
	jqt "$ty: failed, with \"$ty: detail\" in errors" "$(final <"$T/f.out")" \
	    ".result.status == \"failed\" and .result.has_errors == true and
	     .result.errors == [\"$ty: Mock failure: $ty\"] and
	     .result.finished == true and .result.text == \"\""
done
stream '{"id":1,"method":"runs.create","params":{"message":"[cancelled] go"}}' >"$T/f.out"
eq "cancelled: the frame ends the events" "$(types <"$T/f.out")" \
    "metadata,reasoning-start,reasoning-delta,reasoning-end,cancelled"
jqt "cancelled: terminal but not an error" "$(final <"$T/f.out")" \
    '.result.status == "cancelled" and .result.errors == [] and
     .result.has_errors == false and .result.finished == true'
stream '{"id":1,"method":"runs.create","params":{"message":"[error] go"}}' >"$T/f.out"
jqt "error frame: counted, the run goes on to done" "$(final <"$T/f.out")" \
    '.result.status == "completed" and .result.has_errors == true and
     .result.errors == ["Mock error: the gmail tool answered 500"] and
     .result.stop_reason == "end_turn" and (.result.text | length) > 0'
check "error frame: sent as an event" has f '"type":"error"'
stream '{"id":1,"method":"runs.create","params":{"message":"[fail:mcp_error] go"}}' >"$T/f.out"
jqt "mcp_error: not a failure; [DONE] ends the stream" "$(final <"$T/f.out")" \
    '.result.errors == [] and .result.has_errors == false and
     .result.finished == true and .result.status == "completed"'
eq "mcp_error: passed on, then done" "$(types <"$T/f.out" | cut -d, -f5-)" \
    "mcp_error,done"

# ---- one upstream transfer for many subscribers; late joiners, reconnects ----------
mock_clear
before=$(stats_of upstream_streams)
sub_start a '{"id":"a","method":"runs.create","params":{"message":"[approval] Send the recap"}}'
wait_line a awaiting_approval
R=$(run_of <"$T/a.out")
for n in b c d; do
	sub_start $n "{\"id\":\"$n\",\"method\":\"runs.stream\",\"params\":{\"run_id\":$R}}"
done
sub_start e "{\"id\":\"e\",\"method\":\"runs.stream\",\"params\":{\"run_id\":$R,\"after_seq\":2}}"
# f reads up to seq 3 and hangs up; f2 comes back after it.
sub_start f --stop-seq 3 "{\"id\":\"f\",\"method\":\"runs.stream\",\"params\":{\"run_id\":$R}}"
sub_wait f
sub_start f2 "{\"id\":\"f2\",\"method\":\"runs.stream\",\"params\":{\"run_id\":$R,\"after_seq\":3}}"
for n in b c d e f2; do wait_line $n awaiting_approval; done
eq "HITL: events up to the gate" "$(types <"$T/a.out")" \
    "metadata,reasoning-start,reasoning-delta,reasoning-end,permission_request,awaiting_approval"
jqt "HITL: permission_request names the request" \
    "$(jq -c 'select(.event.type == "permission_request") | .event' "$T/a.out")" \
    ".request_id == \"req_${R}_1\" and .tool_name == \"gmail\" and
     .tool_input == {\"to\":\"ops@example.com\",\"subject\":\"Weekly recap\"}"
# Another client approves; every subscriber sees the run resume.
out=$(rpc runs.approve "{\"run_id\":$R,\"request_id\":\"req_${R}_1\",\"decision\":\"allow\"}")
jqt "runs.approve from another client" "$out" \
    '.status == "allowed" and .resumed == true'
for n in a b c d e f2; do
	sub_wait $n
	eq "subscriber $n: exits after its final line" "$?" 0
done
N=$(jq -r 'select(.event) | .seq' "$T/a.out" | tail -n 1)
eq "shared: one POST, the approval, nothing else upstream" "$(wire_list)" \
    "POST /api/v2/runs/,POST /api/v2/runs/$R/approve"
eq "shared: one upstream transfer (daemon.stats)" \
    "$(($(stats_of upstream_streams) - before))" 1
eq "shared: a got seq 1..$N" "$(seqs <"$T/a.out")" "$(seq_range 1 "$N")"
check "shared: permission_resolved reached a" has a \
    "\"type\":\"permission_resolved\",\"request_id\":\"req_${R}_1\",\"decision\":\"allowed\""
for n in b c d; do
	eq "shared: $n got the same events" "$(events <"$T/$n.out")" \
	    "$(events <"$T/a.out")"
	eq "shared: $n got the same result" "$(final <"$T/$n.out")" \
	    "$(final <"$T/a.out")"
done
eq "late joiner after_seq 2: exactly 3..$N" "$(events <"$T/e.out")" \
    "$(events <"$T/a.out" | tail -n +3)"
eq "hang-up at seq 3: f got 1..3" "$(events <"$T/f.out")" \
    "$(events <"$T/a.out" | head -n 3)"
eq "reconnect after_seq 3: exactly 4..$N" "$(events <"$T/f2.out")" \
    "$(events <"$T/a.out" | tail -n +4)"
eq "reconnect: the same result" "$(final <"$T/f2.out")" "$(final <"$T/a.out")"

# A subscription cancelled locally ends alone; the run goes on for others.
mock_clear
sub_start q '{"id":"q","method":"runs.create","params":{"message":"[question] Build the report"}}'
wait_line q awaiting_approval
R=$(run_of <"$T/q.out")
out=$(stream "{\"id\":\"w\",\"method\":\"runs.stream\",\"params\":{\"run_id\":$R}}" \
    '{"id":"x","method":"cancel","params":{"id":"w"}}' | tail -n 2 | sort)
eq "cancel: the watcher ends with m8tesd.cancelled, cancel answers" \
    "$(jq -c '{id, r: (.result // .error.code)}' <<<"$out" | paste -sd' ' -)" \
    '{"id":"w","r":"m8tesd.cancelled"} {"id":"x","r":{"cancelled":true}}'
jqt "HITL question: the request reaches the subscriber" \
    "$(jq -c 'select(.event.type == "permission_request") | .event' "$T/q.out")" \
    '.tool_name == "AskUserQuestion" and
     .tool_input.questions[0].question == "Which format should the report use?"'
out=$(rpc runs.answer "{\"run_id\":$R,\"answers\":{\"Which format should the report use?\":\"CSV\"}}")
jqt "runs.answer from another client" "$out" '.status == "ok" and .resumed == true'
sub_wait q
jqt "HITL question: the run resumed and finished" "$(final <"$T/q.out")" \
    '.result.status == "completed" and .result.finished == true and
     (.result.text | startswith("Done"))'
check "HITL question: permission_resolved (answered)" has q \
    '"type":"permission_resolved","request_id":"req_'"$R"'_1","decision":"answered"'
eq "HITL question: one transfer, the answer" "$(wire_list)" \
    "POST /api/v2/runs/,POST /api/v2/runs/$R/answer"

# ---- a long finished log is served whole, at the reader's pace -------------------------
stream '{"id":1,"method":"runs.create","params":{"message":"[long:6000] Long one"}}' >"$T/l.out"
L=$(final <"$T/l.out" | jq .result.seq)
R=$(run_of <"$T/l.out")
mock_clear
stream "{\"id\":2,\"method\":\"runs.stream\",\"params\":{\"run_id\":$R}}" >"$T/l2.out"
eq "long log ($L events): served whole from the log" "$(seqs <"$T/l2.out")" \
    "$(seq_range 1 "$L")" ||
    echo "  differs: $(seqs <"$T/l2.out" | tr , '\n' |
        diff - <(seq 1 "$L") | head -n 4 | paste -sd' ' -)," \
        "last line: $(tail -n 1 "$T/l2.out" | head -c 300)"
eq "long log: no upstream request" "$(wire_list)" ""

# ---- a subscriber that stops reading -------------------------------------------------
# flood NAME [STALL]: a run of 20,000 text deltas with subscribers a and b
# (and s, which sends its request and then reads nothing until $T/go
# exists); sets R, N (its events) and GROWTH (daemon RSS growth, MiB).
flood() {
	rm -f "$T/go"
	sub_start a '{"id":"a","method":"runs.create","params":{"message":"[approval][long:20000] Flood"}}'
	wait_line a awaiting_approval
	R=$(run_of <"$T/a.out")
	sub_start b "{\"id\":\"b\",\"method\":\"runs.stream\",\"params\":{\"run_id\":$R}}"
	[ -n "${1:-}" ] && sub_start s --hold "$T/go" \
	    "{\"id\":\"s\",\"method\":\"runs.stream\",\"params\":{\"run_id\":$R}}"
	wait_line b awaiting_approval
	sleep 0.2
	local rss0
	rss0=$(rss_kb "$DAEMON_PID")
	rpc runs.approve "{\"run_id\":$R,\"request_id\":\"req_${R}_1\",\"decision\":\"allow\"}" >/dev/null
	sub_wait a
	sub_wait b
	GROWTH=$((($(rss_kb "$DAEMON_PID") - rss0) / 1024))
	N=$(final <"$T/a.out" | jq .result.seq)
}
# The same flood without a stalled reader first: what memory it takes
# (the log, and under ASan the allocator's quarantine).
flood
G0=$GROWTH
mock_clear
lagged0=$(stats_of lagged)
flood stall
eq "stalled reader: the others got all $N events" \
    "$(seqs <"$T/a.out")" "$(seq_range 1 "$N")"
eq "stalled reader: b too, the same" "$(events <"$T/b.out")" "$(events <"$T/a.out")"
jqt "stalled reader: the run is complete" "$(final <"$T/b.out")" \
    '.result.status == "completed" and .result.finished == true'
check "stalled reader: daemon RSS grew ${GROWTH} MiB, as without it (${G0} MiB)" \
    test "$GROWTH" -le $((G0 + 4))
touch "$T/go"
sub_wait s
K=$(tail -n 1 "$T/s.out" | jq '.lagged.resume_after')
jqt "stalled reader: its final line is lagged with resume_after" \
    "$(tail -n 1 "$T/s.out")" \
    '.id == "s" and (.lagged.resume_after | type) == "number" and
     (keys | sort) == ["id","lagged"]'
check "stalled reader: held at a bounded queue ($K of $N events sent)" \
    test "$K" -gt 0 -a "$K" -lt $((N - 4096))
sbytes=$(wc -c <"$T/s.out")
check "stalled reader: it was sent $((sbytes / 1024)) KiB (< 1 MiB) of the stream" \
    test "$sbytes" -lt 1048576
eq "stalled reader: what it got is exactly 1..$K" "$(seqs <"$T/s.out")" \
    "$(seq_range 1 "$K")"
eq "stalled reader: counted as lagged" "$(($(stats_of lagged) - lagged0))" 1
stream "{\"id\":\"s2\",\"method\":\"runs.stream\",\"params\":{\"run_id\":$R,\"after_seq\":$K}}" >"$T/s2.out"
eq "stalled reader: resumes from the log with $((K + 1))..$N" \
    "$(events <"$T/s2.out")" "$(events <"$T/a.out" | tail -n +$((K + 1)))"
eq "stalled reader: the same result after resuming" "$(final <"$T/s2.out")" \
    "$(final <"$T/a.out")"
eq "stalled reader: one transfer, the approval" "$(wire_list)" \
    "POST /api/v2/runs/,POST /api/v2/runs/$R/approve"

check_daemon_end
finish
