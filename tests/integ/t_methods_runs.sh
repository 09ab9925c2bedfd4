#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# runs.*: create (stream:false and the default stream:true), get, list,
# cancel, permissions, approve, answer, list_files, download_file (bytes
# compared with the mock's, fetched directly), poll, create_and_wait and
# reply_and_wait — the reply and the exact wire requests. Waits run on the
# daemon's timers: another client's daemon.ping is answered at once while
# a wait is in progress.
. "$(dirname "$0")/lib.sh"

UUID4='^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'

# idem_of REQUEST_JSON: its Idempotency-Key header.
idem_of() { printf '%s' "$1" | jq -r '.headers["idempotency-key"] // ""'; }

# lt NAME A B: passes when integer A < B.
lt() {
	if [ "$2" != fail ] && [ "$2" -lt "$3" ]; then ok "$1 ($2 < $3)"; else not_ok "$1 ($2, want < $3)"; fi
}

start_mock
start_daemon
mock_config '{"run_steps":2}'

# ---- create, stream:false ---------------------------------------------------
rpc_ok "runs.create" runs.create '{"message":"Weekly recap","stream":false,
    "user_id":"u1","teammate_id":null,"memory":false,
    "metadata":{"job":"j1"},"email_inbox":true,"text_only":true}'
wire "runs.create" POST /runs/ "" '{"message":"Weekly recap","stream":false,
    "user_id":"u1","memory":false,"metadata":{"job":"j1"},"email_inbox":true}' idem
check "runs.create: Idempotency-Key is a fresh UUIDv4" \
    grep -Eq "$UUID4" <<<"$(idem_of "$WIRE")"
key1=$(idem_of "$WIRE")
jqt "runs.create: reply is the running run" "$OUT" \
    '.id == 1 and .status == "running" and .user_id == "u1" and
     .metadata == {"job":"j1"} and
     (.email_address | test("^run-1-[0-9a-f]+@notifications\\.m8tes\\.ai$"))'

rpc_ok "runs.create (minimal)" runs.create '{"message":"Hi","stream":false}'
wire "runs.create (minimal)" POST /runs/ "" '{"message":"Hi","stream":false}' idem
jqt "runs.create (minimal): reply" "$OUT" \
    '.id == 2 and .status == "running" and .user_id == null'
check "runs.create: a different key per call" \
    test "$(idem_of "$WIRE")" != "$key1"

# Without "stream" the call streams, and "stream":true is on the wire.
mock_clear
out=$(raw "$(req_line runs.create '{"message":"Streamed one"}' 5)")
wire "runs.create (default stream)" POST /runs/ "" \
    '{"message":"Streamed one","stream":true}' idem
jqt "runs.create (default stream): events, then one final line" \
    "$(printf '%s\n' "$out" | jq -sc .)" \
    'length >= 2 and (.[:-1] | all(.id == 5 and has("seq") and has("event")))
     and (.[-1] | .id == 5 and (has("result") or has("error")))'

# ---- get / list -------------------------------------------------------------
rpc_ok "runs.get" runs.get '{"run_id":1,"user_id":"u1"}'
wire "runs.get" GET /runs/1 "user_id=u1" ""
jqt "runs.get: reply" "$OUT" '.id == 1 and .status == "running" and
    .user_id == "u1" and (has("email_address") | not)'

rpc_ok "runs.list" runs.list '{"user_id":"u1","status":"running","limit":5}'
wire "runs.list" GET /runs/ "user_id=u1&status=running&limit=5" ""
jqt "runs.list: page of the u1 run" "$OUT" \
    '([.data[].id] == [1]) and .has_more == false and
     .next_starting_after == null'

rpc_ok "runs.list (teammate_id, task_id)" runs.list \
    '{"teammate_id":7,"task_id":"8"}'
wire "runs.list (teammate_id, task_id)" GET /runs/ "teammate_id=7&task_id=8" ""
jqt "runs.list (teammate_id, task_id): empty page" "$OUT" \
    '.data == [] and .has_more == false and .next_starting_after == null'

# ---- cancel -----------------------------------------------------------------
rpc_ok "runs.cancel" runs.cancel '{"run_id":1,"user_id":"u1"}'
wire "runs.cancel" POST /runs/1/cancel "user_id=u1" ""
jqt "runs.cancel: reply" "$OUT" '.id == 1 and .status == "cancelled"'

# ---- permissions / approve --------------------------------------------------
rpc runs.create '{"message":"[approval] Send the recap","stream":false}' \
    >/dev/null # run 4
mock_get /runs/4 >/dev/null
st=$(mock_get /runs/4 | jq -r .status)
eq "set-up: run 4 awaits approval" "$st" awaiting_approval

rpc_ok "runs.permissions" runs.permissions '{"run_id":4}'
wire "runs.permissions" GET /runs/4/permissions "" ""
jqt "runs.permissions: the pending tool use" "$OUT" \
    'length == 1 and .[0].request_id == "req_4_1" and
     .[0].tool_name == "gmail" and .[0].status == "pending"'

rpc_ok "runs.approve" runs.approve \
    '{"run_id":4,"request_id":"req_4_1","decision":"allow","reason":"fine"}'
wire "runs.approve" POST /runs/4/approve "" \
    '{"request_id":"req_4_1","decision":"allow","remember":false,"reason":"fine"}'
jqt "runs.approve: reply" "$OUT" '.request_id == "req_4_1" and
    .status == "allowed" and .resumed == true and .remembered == false'

# ---- answer -----------------------------------------------------------------
rpc runs.create '{"message":"[question] Build the report","stream":false}' \
    >/dev/null # run 5
mock_get /runs/5 >/dev/null
mock_get /runs/5 >/dev/null
rpc_ok "runs.answer" runs.answer \
    '{"run_id":5,"answers":{"Which format should the report use?":"CSV"}}'
wire "runs.answer" POST /runs/5/answer "" \
    '{"answers":{"Which format should the report use?":"CSV"}}'
jeq "runs.answer: reply" "$OUT" '{"status":"ok","resumed":true}'

# ---- files ------------------------------------------------------------------
rpc runs.create '{"message":"Numbers please","stream":false}' >/dev/null # 6
mock_get /runs/6 >/dev/null
st=$(mock_get /runs/6 | jq -r .status)
eq "set-up: run 6 completed" "$st" completed
curl -s -o "$T/report.direct" -H "Authorization: Bearer $KEY" \
    "$MOCK_URL/runs/6/files/report.csv/download"
curl -s -o "$T/chart.direct" -H "Authorization: Bearer $KEY" \
    "$MOCK_URL/runs/6/files/chart.png/download"
csv_size=$(stat -c %s "$T/report.direct")

rpc_ok "runs.list_files" runs.list_files '{"run_id":6}'
wire "runs.list_files" GET /runs/6/files "" ""
jeq "runs.list_files: reply" "$OUT" \
    "[{\"name\":\"report.csv\",\"size\":$csv_size},{\"name\":\"chart.png\",\"size\":2048}]"

for f in chart.png:image/png report.csv:text/csv; do
	name=${f%%:*} ctype=${f#*:} direct=$T/${f%%.*}.direct
	rpc_ok "runs.download_file $name" runs.download_file \
	    "{\"run_id\":6,\"filename\":\"$name\"}"
	wire "runs.download_file $name" GET "/runs/6/files/$name/download" "" ""
	printf '%s' "$OUT" | jq -r .data_base64 | base64 -d >"$T/got.bin"
	check "runs.download_file $name: decoded bytes equal the mock's" \
	    cmp -s "$T/got.bin" "$direct"
	jeq "runs.download_file $name: filename, size, type, sha256" \
	    "$(printf '%s' "$OUT" | jq -c '{filename, size, content_type, sha256}')" \
	    "$(jq -cn --arg f "$name" --argjson s "$(stat -c %s "$direct")" \
	        --arg c "$ctype" --arg h "$(sha256sum "$direct" | cut -d' ' -f1)" \
	        '{filename: $f, size: $s, content_type: $c, sha256: $h}')"
done
check "set-up: the PNG is binary, 2048 bytes" \
    test "$(stat -c %s "$T/chart.direct")" -eq 2048

# ---- poll: waits on timers, the daemon keeps answering ------------------------
mock_config '{"run_steps":3}'
rpc runs.create '{"message":"Slow one","stream":false}' >/dev/null # run 7
mock_clear
t0=$(now_ms)
rpc runs.poll '{"run_id":7,"interval":1,"timeout":30}' >"$T/poll.out" \
    2>&1 &
poll_pid=$!
sleep 0.4
lt "daemon.ping during runs.poll (1st interval) in ms" "$(ping_ms)" 200
sleep 0.9
lt "daemon.ping during runs.poll (2nd interval) in ms" "$(ping_ms)" 200
wait "$poll_pid"
eq "runs.poll: m8tes exits 0" "$?" 0
took=$(($(now_ms) - t0))
jqt "runs.poll: reply is the completed run" "$(cat "$T/poll.out")" \
    '.id == 7 and .status == "completed" and (.output | startswith("Done"))'
reqs=$(mock_requests)
eq "runs.poll: three GET /api/v2/runs/7, no query, no body, no key" \
    "$(printf '%s' "$reqs" | jq -c '[.[] | [.method, .path, .query, .body,
        (.headers | has("idempotency-key"))]] | unique')" \
    '[["GET","/api/v2/runs/7","","",false]]'
eq "runs.poll: number of GETs" "$(printf '%s' "$reqs" | jq length)" 3
gaps=$(printf '%s' "$reqs" | jq -c '[.[1:][].time_ms] as $b | [.[:-1][].time_ms] as $a |
    [range($b | length) | $b[.] - $a[.]] | map(. >= 900 and . < 1600)')
eq "runs.poll: polls 1 s apart" "$gaps" '[true,true]'
check "runs.poll: took about 2 s ($took ms)" test "$took" -ge 1900 -a "$took" -lt 4000

# A run that never ends: the wait runs out.
rpc runs.create '{"message":"[approval] Stuck","stream":false}' >/dev/null # 8
mock_get /runs/8 >/dev/null
mock_get /runs/8 >/dev/null
mock_get /runs/8 >/dev/null
out=$(call runs.poll '{"run_id":8,"interval":0.1,"timeout":0.5}')
jqt "runs.poll past its timeout: m8tesd.timeout" "$out" \
    '.error.code == "m8tesd.timeout" and .error.retryable == false'

# ---- create_and_wait ----------------------------------------------------------
mock_config '{"run_steps":2}'
mock_clear
rpc runs.create_and_wait '{"message":"Recap for u2","user_id":"u2",
    "metadata":{"a":1},"poll_interval":1,"poll_timeout":30}' \
    >"$T/caw.out" 2>&1 &
caw_pid=$!
sleep 0.5
lt "daemon.ping during runs.create_and_wait in ms" "$(ping_ms)" 200
wait "$caw_pid"
eq "runs.create_and_wait: m8tes exits 0" "$?" 0
OUT=$(cat "$T/caw.out")
jqt "runs.create_and_wait: reply is the completed run" "$OUT" \
    '.id == 9 and .status == "completed" and .user_id == "u2" and
     (.output | startswith("Done"))'
reqs=$(mock_requests)
eq "runs.create_and_wait: the POST then the GETs" \
    "$(printf '%s' "$reqs" | jq -c '[.[] | "\(.method) \(.path)?\(.query)"]')" \
    '["POST /api/v2/runs/?","GET /api/v2/runs/9?user_id=u2","GET /api/v2/runs/9?user_id=u2"]'
jeq "runs.create_and_wait: POST body (the SDK's four trues, stream false)" \
    "$(printf '%s' "$reqs" | jq -r '.[0].body')" \
    '{"message":"Recap for u2","user_id":"u2","metadata":{"a":1},
      "memory":true,"history":true,"task_setup_tools":true,"feedback":true,
      "stream":false}'
eq "runs.create_and_wait: Idempotency-Key on the POST only" \
    "$(printf '%s' "$reqs" | jq -c '[.[] | .headers | has("idempotency-key")]')" \
    '[true,false,false]'
caw_key=$(printf '%s' "$reqs" | jq -r '.[0].headers["idempotency-key"]')
check "runs.create_and_wait: key is a UUIDv4" grep -Eq "$UUID4" <<<"$caw_key"
eq "runs.create_and_wait: headers of every request" \
    "$(printf '%s' "$reqs" | jq -c '[.[] | .headers | [.authorization, .["content-type"]]] | unique')" \
    "[[\"Bearer $KEY\",\"application/json\"]]"

# ---- reply_and_wait: user_id is never sent with a reply, only the polls ------
mock_clear
rpc_ok "runs.reply_and_wait" runs.reply_and_wait '{"run_id":9,
    "message":"Also as PDF","user_id":"u2","poll_interval":0.2}'
jqt "runs.reply_and_wait: reply is the completed run" "$OUT" \
    '.id == 9 and .status == "completed" and .user_id == "u2"'
reqs=$(mock_requests)
eq "runs.reply_and_wait: the POST then the GETs" \
    "$(printf '%s' "$reqs" | jq -c '[.[] | "\(.method) \(.path)?\(.query)"]')" \
    '["POST /api/v2/runs/9/reply?","GET /api/v2/runs/9?user_id=u2","GET /api/v2/runs/9?user_id=u2"]'
jeq "runs.reply_and_wait: POST body" "$(printf '%s' "$reqs" | jq -r '.[0].body')" \
    '{"message":"Also as PDF","stream":false}'
eq "runs.reply_and_wait: Idempotency-Key on the POST only" \
    "$(printf '%s' "$reqs" | jq -c '[.[] | .headers | has("idempotency-key")]')" \
    '[true,false,false]'
rk=$(printf '%s' "$reqs" | jq -r '.[0].headers["idempotency-key"]')
check "runs.reply_and_wait: its own key" test -n "$rk" -a "$rk" != "$caw_key"

# A waited-for run that fails is its result, as in the SDK; with
# raise_on_error it is an error (PROTOCOL.md: m8tes.run_failed).
mock_clear
out=$(call runs.create_and_wait '{"message":"[fail] Doomed","poll_interval":0.1}')
jqt "runs.create_and_wait on a failing run: the failed run" "$out" \
    '.result.status == "failed" and .result.error_code == "sdk_error"'
out=$(call runs.create_and_wait \
    '{"message":"[fail] Doomed","poll_interval":0.1,"raise_on_error":true}')
jqt "runs.create_and_wait raise_on_error: m8tes.run_failed" "$out" \
    '.error.code == "m8tes.run_failed" and .error.retryable == false'

check_daemon_end
finish
