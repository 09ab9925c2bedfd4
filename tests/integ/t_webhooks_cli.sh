#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The client's side of received webhooks: `m8tes webhooks listen` with
# --events/--exec/--forward-to/--consumer, `m8tes webhooks replay`; and
# the response cache: a received run.completed outdates the cached run.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_webhooks.sh"

S=whsec_cli_secret_0000000000001
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
# m8 ARGS...: the client on the test socket.
m8() { "$BIN/m8tes" --socket "$SOCK" "$@"; }
# cli_bg OUT ARGS...: the client in the background, stdout to OUT; CLI_PID.
cli_bg() {
	local out=$1
	shift
	"$BIN/m8tes" --socket "$SOCK" "$@" >"$out" 2>"$out.err" &
	CLI_PID=$!
}
cli_end() {
	kill "$CLI_PID" 2>/dev/null
	wait "$CLI_PID" 2>/dev/null
}

if [ ! -x "$BIN/m8tes" ] || ! m8 webhooks listen --help >/dev/null 2>&1; then
	echo "SKIP: no 'm8tes webhooks listen' in $BIN"
	not_ok "m8tes webhooks listen exists"
	wh_finish
	exit
fi

# ---- listen --events --exec -----------------------------------------------
exe=$T/exec.out
cli_bg "$T/cli1.out" webhooks listen --events run.completed \
    --exec "cat >> $exe; echo \" \$M8TES_EVENT \$M8TES_SEQ \$M8TES_RUN_ID \$M8TES_WEBHOOK_ID\" >> $exe"
sleep 0.5
send cli_1 '{"event":"run.completed","run_id":31}'
send cli_2 '{"event":"run.failed","run_id":32}'
send cli_3 '{"event":"run.completed","run_id":33}'
wait_for 5 sh -c "grep -q cli_3 '$exe'"
sleep 0.3
weq "listen --exec: each matching payload on stdin, with M8TES_* set" \
    "$(cat "$exe" 2>/dev/null)" \
    "{\"event\":\"run.completed\",\"run_id\":31} run.completed $SEQ_cli_1 31 cli_1
{\"event\":\"run.completed\",\"run_id\":33} run.completed $SEQ_cli_3 33 cli_3"
weq "listen (stdout not a terminal): one JSON line per matching event" \
    "$(jq -r '.webhook_id // .event.webhook_id // empty' "$T/cli1.out" 2>/dev/null | paste -sd' ' -)" \
    "cli_1 cli_3"

# ---- replay SEQ -------------------------------------------------------------
rawf=$T/raw.out
wh_listen "$rawf" '{}' 30
rpid=$WH_LPID
sleep 0.3
rout=$(m8 webhooks replay "$SEQ_cli_1" 2>&1)
weq "m8tes webhooks replay SEQ exits 0" "$?" 0
wait_for 3 sh -c "grep -q cli_1 '$rawf'"
kill "$rpid" 2>/dev/null
wait "$rpid" 2>/dev/null
jqt "replay SEQ: listeners get it marked replayed:true" \
    "$(jq -c 'select(.event) | .event' "$rawf" | head -n 1)" \
    ".seq == $SEQ_cli_1 and .webhook_id == \"cli_1\" and .replayed == true"
echo "note: replay printed: $(printf '%s' "$rout" | head -c 200)"
wait_for 3 sh -c "[ \$(grep -c '^{' '$exe') -ge 3 ]"
cli_end
weq "listen --exec sees the replay too" "$(grep -c '^{"event":"run.completed","run_id":31}' "$exe")" 2
rout=$(m8 webhooks replay --from "$SEQ_cli_1" --to "$SEQ_cli_3" --json 2>&1)
jqt "replay --from --to: 3 replayed" "$rout" '.replayed == 3'
rout=$(m8 webhooks replay --since 1h --json 2>&1)
jqt "replay --since 1h: 3 replayed" "$rout" '.replayed == 3'

# ---- listen --forward-to ----------------------------------------------------
mock_fault '{"method":"POST","path":"/fwd/hook","times":0,"status":200,"body":"{}"}'
mock_clear
cli_bg "$T/cli2.out" webhooks listen --events 'run.*' --forward-to "$MOCK/fwd/hook"
sleep 0.5
send cli_4 '{"event":"run.failed","run_id":34}'
send cli_5 '{"event":"balance.low"}'
wait_for 5 sh -c "curl -s '$MOCK/__mock/requests?path=/fwd/hook' | jq -e 'length > 0' >/dev/null"
sleep 0.3
cli_end
fwd=$(curl -s "$MOCK/__mock/requests?path=/fwd/hook")
weq "--forward-to: one POST (the matching event)" "$(printf '%s' "$fwd" | jq length)" 1
jqt "--forward-to: the payload as the body" "$(printf '%s' "$fwd" | jq -c '.[0]')" \
    '.method == "POST" and (.body | fromjson) == {"event":"run.failed","run_id":34}'

# ---- listen --consumer: resumes, and a failed --exec holds the cursor ---------
cf=$T/cons.out
cli_bg "$T/cli3.out" webhooks listen --consumer clic --exec "cat >> $cf; echo >> $cf"
sleep 0.5
send cli_6 '{"event":"run.completed","run_id":36}'
wait_for 5 sh -c "grep -q 36 '$cf'"
sleep 0.5
cli_end
send cli_7 '{"event":"run.completed","run_id":37}'
cli_bg "$T/cli4.out" webhooks listen --consumer clic --exec "cat >> $cf; echo >> $cf"
wait_for 5 sh -c "grep -q 37 '$cf'"
sleep 0.5
cli_end
weq "--consumer: resumes after what it handled (36 once, then 37)" \
    "$(jq -r .run_id "$cf" 2>/dev/null | paste -sd' ' -)" "36 37"
cli_bg "$T/cli5.out" webhooks listen --consumer clif --exec "exit 1"
sleep 0.5
send cli_8 '{"event":"run.completed","run_id":38}'
sleep 1
cli_end
ff=$T/fail.out
cli_bg "$T/cli6.out" webhooks listen --consumer clif --exec "cat >> $ff; echo >> $ff"
wait_for 5 sh -c "grep -q 38 '$ff'"
sleep 0.3
cli_end
weq "--consumer: after a failed --exec the next listen starts at it" \
    "$(jq -r .run_id "$ff" 2>/dev/null | paste -sd' ' -)" "38"

# ---- the cache: a received run.completed outdates the cached run -------------
run=$(mock_post /runs/ '{"message":"cache me","stream":false}' | jq -r .id)
gets() { curl -s "$MOCK/__mock/requests?path=/api/v2/runs/$run" | jq '[.[] | select(.method == "GET")] | length'; }
mock_clear
g1=$(wh_call runs.get "{\"run_id\":$run}")
g2=$(wh_call runs.get "{\"run_id\":$run}")
jqt "runs.get through the daemon" "$g1" ".result.id == $run"
if [ "$(gets)" != 1 ]; then
	echo "SKIP cache: runs.get is not cached (upstream GETs: $(gets)); the cache is not wired"
else
	ok "a second runs.get within the TTL is served from the cache"
	send cache_1 "{\"event\":\"run.completed\",\"run_id\":$run}"
	sleep 0.2
	g3=$(wh_call runs.get "{\"run_id\":$run}")
	weq "after a received run.completed for the run: runs.get goes upstream" "$(gets)" 2
	jqt "and answers the run" "$g3" ".result.id == $run"
fi

wh_finish
