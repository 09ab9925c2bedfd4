#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Streaming runs against a faulty upstream: every wire shape the SDK's
# parser accepts (split frames, CRLF and CR, keep-alive comments,
# multi-line data, extra fields, invalid and unknown frames, Claude-native
# frames, `done` JSON and/or `[DONE]` or neither) gives the same events and
# result; a
# connection dropped mid-stream is re-attached with GET /runs/{id}/stream
# and its replay skipped, so subscribers see no duplicate and no gap (also
# in a reply's turn, and for a late joiner); a 409 on re-attach fetches the
# run's final state; a stream stalled past the read timeout is handled the
# same way; an Idempotent-Replay JSON answer to a streaming create joins
# the stream the daemon follows, attaches to a live run, or returns a
# finished one; HTTP errors before the stream are call errors.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_streams.sh"

start_mock
start_daemon

# norm: a result line with the run's own ids blanked, to compare runs.
norm() {
	jq -c 'del(.id) | .result.run_id = 0 | .result.tool_calls[]?.id = "x"
	    | del(.result.run)'
}
# create ID MESSAGE: a streaming runs.create; its lines go to $T/ID.out.
create() {
	mock_clear
	stream "{\"id\":\"$1\",\"method\":\"runs.create\",\"params\":{\"message\":\"$2\"}}" \
	    >"$T/$1.out"
}
# ev_norm: event lines as "seq event" with the run's ids blanked.
ev_norm() {
	jq -c 'select(.event) | [.seq, (.event | if .payload.run_id then
	    .payload.run_id = 0 else . end | if .toolCallId then
	    .toolCallId = "x" else . end)]'
}

create plain "Weekly recap"
PLAIN_TYPES=$(types <"$T/plain.out")
PLAIN_RESULT=$(final <"$T/plain.out" | norm)
jqt "reference run: 33 events, completed" "$(final <"$T/plain.out")" \
    '.result.seq == 33 and .result.status == "completed"'

# ---- wire shapes ---------------------------------------------------------------
for m in split crlf cr keepalive multiline fields doneonly invalid; do
	create "$m" "[$m] Weekly recap"
	eq "[$m]: one upstream request" "$(wire_list)" "POST /api/v2/runs/"
	eq "[$m]: the same events" "$(ev_norm <"$T/$m.out")" \
	    "$(ev_norm <"$T/plain.out")"
	eq "[$m]: the same result" "$(final <"$T/$m.out" | norm)" "$PLAIN_RESULT"
done
create bracketonly "[bracketonly] Weekly recap"
eq "[bracketonly]: the same events, [DONE] as a bare done" \
    "$(ev_norm <"$T/bracketonly.out")" \
    "$(ev_norm <"$T/plain.out" | sed '$d'; echo '[33,{"type":"done"}]')"
eq "[bracketonly]: the same result (stop reason from run_metrics)" \
    "$(final <"$T/bracketonly.out" | norm)" "$PLAIN_RESULT"
create unknown "[unknown] Weekly recap"
eq "[unknown]: init dropped, unknown types passed on" \
    "$(types <"$T/unknown.out")" \
    "$(sed 's/^metadata,/metadata,x-mock-unknown,RUNNER_DIAG,/' <<<"$PLAIN_TYPES")"
jqt "[unknown]: passed as sent" \
    "$(sed -n 2,3p "$T/unknown.out" | jq -sc '[.[].event]')" \
    '. == [{"type":"x-mock-unknown","note":"an event type no client knows"},
           {"type":"RUNNER_DIAG","message":"warm"}]'
eq "[unknown]: the same result" \
    "$(final <"$T/unknown.out" | norm | jq -c '.result.seq = 33')" "$PLAIN_RESULT"

# Claude-native frames come out in the AI-SDK vocabulary, with "native".
create native "[native] Weekly recap"
eq "[native]: one upstream request" "$(wire_list)" "POST /api/v2/runs/"
eq "[native]: translated types (content_block_stop passes)" \
    "$(types <"$T/native.out")" \
    "$(sed 's/text-end,/content_block_stop,/; s/tool-call-end,/content_block_stop,/' <<<"$PLAIN_TYPES")"
eq "[native]: a text start and delta, translated" \
    "$(sed -n 5,6p "$T/native.out" | jq -c .event | paste -sd' ' -)" \
    '{"type":"text-start","content_block":{"type":"text"},"id":"txt_1","native":"content_block_start"} {"type":"text-delta","id":"txt_1","delta":"Done ","native":"content_block_delta"}'
R=$(run_of <"$T/native.out")
eq "[native]: the tool call, translated" \
    "$(sed -n '25,27p;29p' "$T/native.out" | jq -c .event | paste -sd' ' -)" \
    "{\"type\":\"tool-call-start\",\"id\":\"toolu_${R}_1\",\"name\":\"gmail\",\"toolCallId\":\"toolu_${R}_1\",\"toolName\":\"gmail\",\"native\":\"tool_use\"} {\"type\":\"tool-call-delta\",\"id\":\"toolu_${R}_1\",\"toolCallId\":\"toolu_${R}_1\",\"delta\":\"{\\\"to\\\":\\\"ops@example.com\\\",\",\"native\":\"content_block_delta\"} {\"type\":\"tool-call-delta\",\"id\":\"toolu_${R}_1\",\"toolCallId\":\"toolu_${R}_1\",\"delta\":\"\\\"subject\\\":\\\"Weekly recap\\\"}\",\"native\":\"content_block_delta\"} {\"type\":\"tool-result-end\",\"tool_use_id\":\"toolu_${R}_1\",\"toolCallId\":\"toolu_${R}_1\",\"result\":{\"status\":\"sent\",\"message_id\":\"msg_mock_1\"},\"native\":\"tool_result\"}"
eq "[native]: the same result" "$(final <"$T/native.out" | norm)" "$PLAIN_RESULT"

# No done at all: EOF inside a frame. The re-attach finds the run over.
create nodone "[nodone] Weekly recap"
R=$(run_of <"$T/nodone.out")
eq "[nodone]: re-attach, 409, then the run" "$(wire_list)" \
    "POST /api/v2/runs/,GET /api/v2/runs/$R/stream,GET /api/v2/runs/$R"
eq "[nodone]: every event but done" "$(ev_norm <"$T/nodone.out")" \
    "$(ev_norm <"$T/plain.out" | sed '$d')"
jqt "[nodone]: the fetched run completes the result" "$(final <"$T/nodone.out")" \
    ".result.run_id == $R and .result.status == \"completed\" and
     .result.finished == true and .result.seq == 32 and
     .result.run.id == $R and .result.run.status == \"completed\" and
     .result.text == $(final <"$T/plain.out" | jq .result.text)"

# ---- dropped mid-stream ------------------------------------------------------------
re0=$(stats_of reattaches)
mock_clear
sub_start d1 '{"id":"d1","method":"runs.create","params":{"message":"[drop:5][slow:20] Weekly recap"}}'
wait_line d1 '"seq":1,'
R=$(run_of <"$T/d1.out")
sub_start d2 "{\"id\":\"d2\",\"method\":\"runs.stream\",\"params\":{\"run_id\":$R}}"
sub_wait d1
sub_wait d2
eq "drop: re-attached once with GET /runs/$R/stream" "$(wire_list)" \
    "POST /api/v2/runs/,GET /api/v2/runs/$R/stream"
eq "drop: daemon.stats counts one re-attach" \
    "$(($(stats_of reattaches) - re0))" 1
eq "drop: no duplicate, no gap (1..33)" "$(seqs <"$T/d1.out")" \
    "$(seq_range 1 33)"
eq "drop: the same events as without the drop" "$(ev_norm <"$T/d1.out")" \
    "$(ev_norm <"$T/plain.out")"
eq "drop: the same result" "$(final <"$T/d1.out" | norm)" "$PLAIN_RESULT"
eq "drop: a joiner sees the same" "$(events <"$T/d2.out")" "$(events <"$T/d1.out")"

# The same in a reply's turn: only the turn is replayed, and skipped.
mock_clear
stream "{\"id\":\"r\",\"method\":\"runs.reply\",\"params\":{\"run_id\":$R,\"message\":\"[drop:3][slow:20] Weekly recap\"}}" >"$T/r.out"
eq "reply drop: re-attached" "$(wire_list)" \
    "POST /api/v2/runs/$R/reply,GET /api/v2/runs/$R/stream"
eq "reply drop: the turn's events 34..66, no duplicate, no gap" \
    "$(seqs <"$T/r.out")" "$(seq_range 34 66)"
eq "reply drop: the same events as a plain turn" \
    "$(ev_norm <"$T/r.out" | jq -c '.[0] -= 33')" "$(ev_norm <"$T/plain.out")"
jqt "reply drop: the turn's result" "$(final <"$T/r.out")" \
    ".result.run_id == $R and .result.seq == 66 and
     .result.status == \"completed\" and .result.finished == true and
     .result.text == $(final <"$T/plain.out" | jq .result.text)"
mock_clear
stream "{\"id\":\"w\",\"method\":\"runs.stream\",\"params\":{\"run_id\":$R}}" >"$T/w.out"
eq "reply drop: the log holds both turns once (1..66)" "$(seqs <"$T/w.out")" \
    "$(seq_range 1 66)"
eq "reply drop: served from the log" "$(wire_list)" ""

# Dropped, and the run ends before the re-attach: 409, then the run.
create gone "[drop:3] Weekly recap"
R=$(run_of <"$T/gone.out")
eq "drop, run over: attach 409, then GET the run" "$(wire_list)" \
    "POST /api/v2/runs/,GET /api/v2/runs/$R/stream,GET /api/v2/runs/$R"
eq "drop, run over: the events before the drop" "$(seqs <"$T/gone.out")" \
    "$(seq_range 1 3)"
jqt "drop, run over: the run's final state" "$(final <"$T/gone.out")" \
    ".result.run_id == $R and .result.status == \"completed\" and
     .result.finished == true and .result.seq == 3 and
     (.result.run.output | startswith(\"Done\"))"

# ---- Idempotent-Replay ---------------------------------------------------------------
# Live in this daemon: the second call joins the stream from the turn's start.
mock_clear
sub_start i1 '{"id":"i1","method":"runs.create","params":{"message":"[approval] Keyed","idempotency_key":"job-1"}}'
wait_line i1 awaiting_approval
R=$(run_of <"$T/i1.out")
sub_start i2 '{"id":"i2","method":"runs.create","params":{"message":"[approval] Keyed","idempotency_key":"job-1"}}'
wait_line i2 awaiting_approval
rpc runs.approve "{\"run_id\":$R,\"request_id\":\"req_${R}_1\",\"decision\":\"allow\"}" >/dev/null
sub_wait i1
sub_wait i2
eq "replay (live here): two keyed POSTs, no second transfer" \
    "$(mock_requests | jq -r '[.[] | "\(.method) \(.path) \(.headers["idempotency-key"] // "")"] | join(",")')" \
    "POST /api/v2/runs/ job-1,POST /api/v2/runs/ job-1,POST /api/v2/runs/$R/approve "
eq "replay (live here): the same events from seq 1" "$(events <"$T/i2.out")" \
    "$(events <"$T/i1.out")"
eq "replay (live here): the same result" "$(final <"$T/i2.out")" \
    "$(final <"$T/i1.out")"

# Finished in this daemon: the run's turn again, from the log.
mock_clear
stream '{"id":"i3","method":"runs.create","params":{"message":"[approval] Keyed","idempotency_key":"job-1"}}' >"$T/i3.out"
eq "replay (finished here): one POST, no attach" "$(wire_list)" \
    "POST /api/v2/runs/"
eq "replay (finished here): the turn's events" "$(events <"$T/i3.out")" \
    "$(events <"$T/i1.out")"
eq "replay (finished here): the result" "$(final <"$T/i3.out")" \
    "$(final <"$T/i1.out")"

# Live upstream only (started elsewhere): attach, which replays the turn.
curl -sN -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
    -H 'Idempotency-Key: job-2' -d '{"message":"[approval] Elsewhere","stream":true}' \
    "$MOCK_URL/runs/" >"$T/elsewhere.sse" &
CURL_PID=$!
wait_for 10 grep -q awaiting_approval "$T/elsewhere.sse"
R=$(grep -m1 -o '"run_id":[0-9]*' "$T/elsewhere.sse" | cut -d: -f2)
mock_clear
sub_start i4 '{"id":"i4","method":"runs.create","params":{"message":"[approval] Elsewhere","idempotency_key":"job-2"}}'
wait_line i4 awaiting_approval
rpc runs.approve "{\"run_id\":$R,\"request_id\":\"req_${R}_1\",\"decision\":\"allow\"}" >/dev/null
sub_wait i4
wait "$CURL_PID"
eq "replay (live upstream): the replay, then an attach" "$(wire_list)" \
    "POST /api/v2/runs/,GET /api/v2/runs/$R/stream,POST /api/v2/runs/$R/approve"
eq "replay (live upstream): the whole turn, as its first stream had it" \
    "$(jq -c 'select(.event) | .event' "$T/i4.out")" \
    "$(sed -n 's/^data: //p' "$T/elsewhere.sse" | grep -v '^\[DONE\]' |
        jq -c 'select(.type != "done") // .' | head -n "$(grep -c '"event"' "$T/i4.out")")"
jqt "replay (live upstream): completed" "$(final <"$T/i4.out")" \
    ".result.run_id == $R and .result.status == \"completed\" and
     .result.finished == true and (.result.text | startswith(\"Done\"))"

# Finished upstream, unknown here: the run is the answer.
curl -s -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
    -H 'Idempotency-Key: job-3' -d '{"message":"Polled","stream":false}' \
    "$MOCK_URL/runs/" >/dev/null
R=$(mock_get /runs/ | jq '.data[0].id')
mock_get "/runs/$R" >/dev/null
mock_get "/runs/$R" >/dev/null
mock_clear
out=$(stream '{"id":"i5","method":"runs.create","params":{"message":"Polled","idempotency_key":"job-3"}}')
eq "replay (finished upstream): one POST" "$(wire_list)" "POST /api/v2/runs/"
jqt "replay (finished upstream): the finished run, no events" "$out" \
    ".id == \"i5\" and .result.run_id == $R and .result.status == \"completed\"
     and .result.finished == true and .result.seq == 0 and
     .result.run.id == $R and (.result.run.output | startswith(\"Done\"))"

# ---- HTTP errors before the stream -------------------------------------------------
mock_clear
mock_fault '{"method":"POST","path":"/api/v2/runs/","status":402,"error_code":"RUN_LIMIT_REACHED","type":"billing_error","message":"Run limit reached"}'
out=$(stream '{"id":"e1","method":"runs.create","params":{"message":"Refused"}}')
jqt "402 before the stream: one error line, no events" "$out" \
    '.id == "e1" and .error.code == "m8tes.billing_error" and .error.status == 402'
eq "402 before the stream: not retried" "$(wire_list)" "POST /api/v2/runs/"
mock_faults_clear
mock_clear
mock_fault '{"method":"POST","path":"/api/v2/runs/","status":503}'
stream '{"id":"e2","method":"runs.create","params":{"message":"Weekly recap"}}' >"$T/e2.out"
eq "503 before the stream: retried with the same key" \
    "$(mock_requests | jq -r '(map(.headers["idempotency-key"]) | unique | length), length' | paste -sd' ' -)" \
    "1 2"
eq "503 before the stream: then streamed" "$(ev_norm <"$T/e2.out")" \
    "$(ev_norm <"$T/plain.out")"

check_daemon_end

# ---- a stalled stream, past the read timeout -----------------------------------------
start_daemon --upstream-timeout 1
re0=$(stats_of reattaches)
create stall "[stall:2500] Weekly recap"
R=$(run_of <"$T/stall.out")
check "stall: re-attached ($(wire_list))" \
    grep -Eq "^POST /api/v2/runs/(,GET /api/v2/runs/$R/stream)+\$" <<<"$(wire_list)"
check "stall: daemon.stats counts the re-attaches" \
    test "$(($(stats_of reattaches) - re0))" -ge 1
eq "stall: no duplicate, no gap" "$(seqs <"$T/stall.out")" "$(seq_range 1 33)"
eq "stall: the same events" "$(ev_norm <"$T/stall.out")" \
    "$(ev_norm <"$T/plain.out")"
eq "stall: the same result" "$(final <"$T/stall.out" | norm)" "$PLAIN_RESULT"

# Silent at a gate longer than the timeout: re-attached as often as it takes.
mock_clear
sub_start g '{"id":"g","method":"runs.create","params":{"message":"[approval] Gate"}}'
wait_line g awaiting_approval
R=$(run_of <"$T/g.out")
wait_for 20 sh -c "test \$(curl -s '$MOCK/__mock/requests' | jq '[.[] | select(.path == \"/api/v2/runs/$R/stream\")] | length') -ge 3"
rpc runs.approve "{\"run_id\":$R,\"request_id\":\"req_${R}_1\",\"decision\":\"allow\"}" >/dev/null
sub_wait g
N=$(final <"$T/g.out" | jq .result.seq)
check "gate: re-attached at least 3 times" test \
    "$(mock_requests | jq "[.[] | select(.path == \"/api/v2/runs/$R/stream\")] | length")" -ge 3
eq "gate: no duplicate, no gap (1..$N)" "$(seqs <"$T/g.out")" "$(seq_range 1 "$N")"
jqt "gate: completed" "$(final <"$T/g.out")" \
    '.result.status == "completed" and .result.finished == true and
     (.result.text | startswith("Done"))'

check_daemon_end
finish
