#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Local delivery of received webhooks (ANCHORS rows 34, 36, 37):
# webhooks.listen with event globs, run_id and after_seq; live events
# after the catch-up; a named durable consumer with webhooks.ack across a
# restart; webhooks.replay; and [hook NAME] sections of the configuration
# (exec with the payload on stdin, url POSTs, event filters, retries,
# max_concurrent, no repeat after a restart).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_webhooks.sh"

S=whsec_local_secret_00000000001
start_mock
wh_config "webhook_secret = $S"
wh_start

# send ID BODY: a signed delivery; sets SEQ_<ID> to its seq.
send() {
	local r
	r=$(wh_send "$S" "$1" "$2")
	[ "${r%% *}" = 200 ] || { not_ok "delivery $1: ${r%% *}"; return; }
	eval "SEQ_$1=$(printf '%s' "${r#* }" | jq .seq)"
}
# ids PARAMS WANT: the webhook ids a fresh webhooks.listen gets, in order,
# space-separated.
ids() { wh_events "$1" "$2" 2 | jq -r .webhook_id | paste -sd' ' -; }

# ---- filters and resume -----------------------------------------------------
send loc_1 '{"event":"run.completed","run_id":1}'
send loc_2 '{"event":"run.failed","run_id":2}'
send loc_3 '{"event":"balance.low","balance_cents":5}'
send loc_4 '{"type":"run.completed","data":{"run_id":2,"status":"completed"}}'

first=$(wh_events '{"after_seq":0}' 4 | head -n 1)
jqt "event shape" "$first" "
    .type == \"webhook\" and .seq == $SEQ_loc_1 and .webhook_id == \"loc_1\"
    and .event == \"run.completed\" and .run_id == 1 and .replayed == false
    and (.received_at | type == \"number\")
    and .payload == {\"event\":\"run.completed\",\"run_id\":1}"
weq "after_seq 0: all, in seq order" "$(ids '{"after_seq":0}' 4)" \
    "loc_1 loc_2 loc_3 loc_4"
weq "events [run.completed] (event or type field)" \
    "$(ids '{"after_seq":0,"events":["run.completed"]}' 2)" "loc_1 loc_4"
weq "events [run.*]" "$(ids '{"after_seq":0,"events":["run.*"]}' 3)" \
    "loc_1 loc_2 loc_4"
weq "events [balance.*, run.failed]" \
    "$(ids '{"after_seq":0,"events":["balance.*","run.failed"]}' 2)" \
    "loc_2 loc_3"
weq "run_id 2 (top level or data.run_id)" \
    "$(ids '{"after_seq":0,"run_id":2}' 2)" "loc_2 loc_4"
weq "events [run.completed] and run_id 2" \
    "$(ids '{"after_seq":0,"run_id":2,"events":["run.completed"]}' 1)" "loc_4"
weq "after_seq resumes after that seq" \
    "$(ids "{\"after_seq\":$SEQ_loc_2}" 2)" "loc_3 loc_4"

# Live: no after_seq means from now on; with after_seq, history then live.
livef=$T/live.out
wh_listen "$livef" '{"events":["run.failed"]}' 30
lpid=$WH_LPID
histf=$T/hist.out
wh_listen "$histf" "{\"after_seq\":$SEQ_loc_3}" 30
hpid=$WH_LPID
sleep 0.3
send loc_5 '{"event":"run.completed","run_id":5}'
send loc_6 '{"event":"run.failed","run_id":6}'
wait_for 3 sh -c "grep -q loc_6 '$livef' && grep -q loc_6 '$histf'"
kill "$lpid" "$hpid" 2>/dev/null
wait "$lpid" "$hpid" 2>/dev/null
weq "live listener: only new run.failed" \
    "$(jq -r 'select(.event) | .event.webhook_id' "$livef" | paste -sd' ' -)" "loc_6"
weq "after_seq listener: history then live" \
    "$(jq -r 'select(.event) | .event.webhook_id' "$histf" | paste -sd' ' -)" \
    "loc_4 loc_5 loc_6"
weq "event line seq matches the event's seq" \
    "$(jq -r 'select(.event) | select(.seq != .event.seq)' "$histf" | wc -l)" 0

# ---- a named durable consumer ---------------------------------------------
bf=$T/billing1.out
wh_listen "$bf" '{"consumer":"billing"}' 30
bpid=$WH_LPID
sleep 0.3
send bill_1 '{"event":"run.completed","run_id":11}'
send bill_2 '{"event":"run.completed","run_id":12}'
send bill_3 '{"event":"run.completed","run_id":13}'
wait_for 3 sh -c "grep -q bill_3 '$bf'"
kill "$bpid" 2>/dev/null
wait "$bpid" 2>/dev/null
weq "new consumer billing: what arrives from its start" \
    "$(jq -r 'select(.event) | .event.webhook_id' "$bf" | paste -sd' ' -)" \
    "bill_1 bill_2 bill_3"
a=$(wh_call webhooks.ack "{\"consumer\":\"billing\",\"seq\":$SEQ_bill_2}")
jqt "webhooks.ack" "$a" ".result.acked == $SEQ_bill_2"
a=$(wh_call webhooks.ack "{\"consumer\":\"billing\",\"seq\":$SEQ_bill_1}")
jqt "webhooks.ack backwards is answered" "$a" '.result != null'
a=$(wh_call webhooks.ack '{"seq":1}')
jqt "webhooks.ack without consumer: invalid_params" "$a" \
    '.error.code == "m8tesd.invalid_params"'
wh_kill9
wh_start
weq "after kill -9 and restart, billing resumes after its ack" \
    "$(ids '{"consumer":"billing"}' 1)" "bill_3"
bf2=$T/billing2.out
wh_listen "$bf2" '{"consumer":"billing"}' 30
bpid=$WH_LPID
sleep 0.3
send bill_4 '{"event":"run.completed","run_id":14}'
wait_for 3 sh -c "grep -q bill_4 '$bf2'"
kill "$bpid" 2>/dev/null
wait "$bpid" 2>/dev/null
weq "billing again: unacked, then live" \
    "$(jq -r 'select(.event) | .event.webhook_id' "$bf2" | paste -sd' ' -)" \
    "bill_3 bill_4"
a=$(wh_call webhooks.listen '{"consumer":""}')
jqt "empty consumer name: invalid_params" "$a" \
    '.error.code == "m8tesd.invalid_params"'

# ---- replay ---------------------------------------------------------------
rf=$T/replay.out
wh_listen "$rf" '{}' 30
rpid=$WH_LPID
rff=$T/replay_filtered.out
wh_listen "$rff" '{"events":["balance.*"]}' 30
rfpid=$WH_LPID
sleep 0.3
rr=$(wh_call webhooks.replay "{\"seq\":$SEQ_loc_1}")
jqt "webhooks.replay seq: 1 replayed" "$rr" '.result.replayed == 1'
rr=$(wh_call webhooks.replay "{\"from_seq\":$SEQ_loc_2,\"to_seq\":$SEQ_loc_4}")
jqt "webhooks.replay from_seq..to_seq: 3 replayed" "$rr" '.result.replayed == 3'
rr=$(wh_call webhooks.replay '{}')
jqt "webhooks.replay without a range: invalid_params" "$rr" \
    '.error.code == "m8tesd.invalid_params"'
wait_for 3 sh -c "grep -c replayed.:true '$rf' | grep -q 4"
kill "$rpid" "$rfpid" 2>/dev/null
wait "$rpid" "$rfpid" 2>/dev/null
jqt "replayed event: same seq, replayed:true, same payload" \
    "$(jq -c 'select(.event) | .event' "$rf" | head -n 1)" \
    ".seq == $SEQ_loc_1 and .webhook_id == \"loc_1\" and .replayed == true
     and .payload == {\"event\":\"run.completed\",\"run_id\":1}"
weq "listener got the 4 replays in order" \
    "$(jq -r 'select(.event) | .event.webhook_id' "$rf" | paste -sd' ' -)" \
    "loc_1 loc_2 loc_3 loc_4"
weq "a filtered listener gets only matching replays" \
    "$(jq -r 'select(.event) | .event.webhook_id' "$rff" | paste -sd' ' -)" \
    "loc_3"
rr=$(wh_call webhooks.replay "{\"since\":$(($(date +%s) - 3600))}")
jqt "webhooks.replay since an hour ago: everything stored (10)" "$rr" \
    '.result.replayed == 10'

wh_stop

# ---- [hook NAME] sections -------------------------------------------------
MOCKP=${MOCK#http://}
hookconf=(
    "webhook_secret = $S"
    ""
    "[hook file]"
    "events = run.completed"
    "exec = \"cat >> $T/hook_file.out; echo >> $T/hook_file.out\""
    ""
    "[hook envcheck]"
    "events = env.check"
    "exec = \"cat > $T/env.body; env | sort > $T/env.out\""
    ""
    "[hook post]"
    "events = run.failed"
    "url = http://$MOCKP/hook/post"
    ""
    "[hook flaky]"
    "events = balance.low"
    "retries = 5"
    "exec = \"n=\$(cat $T/flaky.n 2>/dev/null || echo 0); n=\$((n + 1)); echo \$n > $T/flaky.n; [ \$n -ge 3 ] || exit 1; cat > $T/flaky.out\""
    ""
    "[hook urlretry]"
    "events = retry.*"
    "retries = 3"
    "url = http://$MOCKP/hook/retry"
    ""
    "[hook serial]"
    "events = serial.*"
    "max_concurrent = 1"
    "exec = \"echo start \$(date +%s%N) >> $T/serial.log; sleep 0.4; echo end \$(date +%s%N) >> $T/serial.log\""
)
wh_config "${hookconf[@]}"
# Is [hook] understood yet? A daemon that refuses the file exits at once.
probe_out=$("$BIN/m8tesd" --config "$WH_CONF" --socket "$T/probe.sock" \
    --state-dir "$T/probe" --base-url http://127.0.0.1:9/api/v2 \
    --log-level warn 2>&1 & p=$!; sleep 1.5
    if kill -0 $p 2>/dev/null; then kill $p; wait $p; echo RUNNING; fi)
if ! printf '%s' "$probe_out" | grep -q RUNNING; then
	echo "SKIP [hook] sections: the daemon refuses the file: $(printf '%s' "$probe_out" | head -n 2)"
	not_ok "[hook NAME] sections are accepted"
	wh_check_log
	finish
	exit
fi
ok "[hook NAME] sections are accepted"

mock_fault '{"method":"POST","path":"/hook/post","times":0,"status":200,"body":"{}"}'
mock_fault '[{"method":"POST","path":"/hook/retry","times":2,"status":500,"body":"{}"},
    {"method":"POST","path":"/hook/retry","times":0,"status":204}]'
wh_start
mock_clear
send hk_before '{"event":"balance.critical"}'
send hk_1 '{"event":"run.completed","run_id":21}'
send hk_2 '{"event":"run.failed","run_id":22}'
send hk_env '{"event":"env.check","run_id":23}'
send hk_flaky '{"event":"balance.low","balance_cents":1}'
send hk_retry '{"event":"retry.me"}'
for n in 1 2 3; do send "hk_serial_$n" "{\"event\":\"serial.$n\"}"; done

wait_for 5 test -s "$T/hook_file.out"
weq "exec hook: the payload on stdin, byte for byte" \
    "$(cat "$T/hook_file.out" 2>/dev/null)" '{"event":"run.completed","run_id":21}'
wait_for 5 test -s "$T/env.out"
weq "exec hook: M8TES_* environment" \
    "$(grep '^M8TES_' "$T/env.out" | paste -sd' ' -)" \
    "M8TES_EVENT=env.check M8TES_RUN_ID=23 M8TES_SEQ=$SEQ_hk_env M8TES_WEBHOOK_ID=hk_env"
check "exec hook: no API key in its environment" \
    sh -c "! grep -q -e '$KEY' -e M8TES_API_KEY '$T/env.out'"
wait_for 5 sh -c "curl -s '$MOCK/__mock/requests?path=/hook/post' | jq -e 'length > 0' >/dev/null"
post=$(curl -s "$MOCK/__mock/requests?path=/hook/post")
weq "url hook: one POST" "$(printf '%s' "$post" | jq length)" 1
jqt "url hook: the payload as body, without the API key" \
    "$(printf '%s' "$post" | jq -c '.[0]')" \
    '.method == "POST" and (.body | fromjson) == {"event":"run.failed","run_id":22}
     and .headers.authorization == null'
wait_for 10 test -s "$T/flaky.out"
weq "exec hook failing twice: run 3 times" "$(cat "$T/flaky.n" 2>/dev/null)" 3
weq "exec hook failing twice: the third run got the payload" \
    "$(cat "$T/flaky.out" 2>/dev/null)" '{"event":"balance.low","balance_cents":1}'
wait_for 10 sh -c "[ \$(curl -s '$MOCK/__mock/requests?path=/hook/retry' | jq length) -ge 3 ]"
sleep 1.5
weq "url hook answered 500 twice: POSTed 3 times" \
    "$(curl -s "$MOCK/__mock/requests?path=/hook/retry" | jq length)" 3
wait_for 5 sh -c "[ \$(grep -c '^end' '$T/serial.log' 2>/dev/null) -ge 3 ]"
weq "max_concurrent 1: no two runs overlap" \
    "$(awk '$1 == "start" { if (open) bad++; open = 1 } $1 == "end" { open = 0 }
        END { print bad + 0 }' "$T/serial.log" 2>/dev/null)" 0
weq "max_concurrent 1: all 3 ran" "$(grep -c '^end' "$T/serial.log" 2>/dev/null)" 3
weq "a hook does not run for events outside its globs" \
    "$(grep -c . "$T/hook_file.out")" 1

# A restart runs nothing again; a new delivery runs once.
wh_stop
wh_start
sleep 1.5
weq "after a restart: no hook ran again" \
    "$(grep -c . "$T/hook_file.out") $(cat "$T/flaky.n") $(curl -s "$MOCK/__mock/requests?path=/hook/post" | jq length)" \
    "1 3 1"
send hk_3 '{"event":"run.completed","run_id":24}'
wait_for 5 sh -c "[ \$(grep -c . '$T/hook_file.out') -ge 2 ]"
sleep 0.3
weq "after a restart: a new delivery runs the hook once" \
    "$(grep -c . "$T/hook_file.out")" 2

wh_finish
