#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The webhook receiver's front door (upstream-api.md §9.2, ANCHORS rows
# 29-33): body limit (413), method (405), malformed or missing headers
# (400), bad signatures and timestamps (401), the 300 s tolerance and
# tolerance 0, slowloris, several secrets at once, secrets captured from
# webhooks.create / webhooks.update rotate_secret, reload and signals.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_webhooks.sh"

S1=whsec_first_secret_00000000001
S2=whsec_second_secret_0000000002
BODY='{"event":"run.completed","run_id":42}'
start_mock

# ---- limits, methods, headers, signatures --------------------------------
wh_config "webhook_secret = $S1" "webhook_secret = $S2" \
    "webhook_max_body = 4K"
wh_start

r=$(wh_send "$S1" msg_valid_1 "$BODY")
weq "valid delivery: 200" "${r%% *}" 200
jqt "valid delivery: received, seq, not a duplicate" "${r#* }" \
    '.received == true and (.seq | type == "number") and .duplicate == false'
r=$(wh_send "$S2" msg_valid_2 "$BODY")
weq "second configured secret verifies too" "${r%% *}" 200
r=$(wh_send whsec_unknown_secret_00000001 msg_unknown "$BODY")
weq "a secret not configured: 401" "${r%% *}" 401
for s in "$S1" "$S2"; do
	out=$(wh_deliver "{\"secret\":\"$s\",\"count\":3,\"distinct\":true}")
	weq "mock driver, valid, secret ${s:6:6}: 3 x 200" "$(wh_status "$out")" \
	    "200 200 200"
done

# Body limit (4 KiB here): Content-Length over it, chunked over it, and
# exactly at it.
big=$(printf '{"event":"run.completed","pad":"%05000d"}' 0)
r=$(wh_send "$S1" msg_big_1 "$big")
weq "body over webhook_max_body (Content-Length): 413" "${r%% *}" 413
ts=$(date +%s)
r=$(wh_post msg_big_2 "$ts" "$(wh_sign "$S1" msg_big_2 "$ts" "$big")" "$big" \
    -H 'Transfer-Encoding: chunked')
weq "body over webhook_max_body (chunked, no length): 413" "${r%% *}" 413
pad=$((4096 - 34))
exact=$(printf '{"event":"run.completed","pad":"%0*d"}' "$pad" 0)
weq "test body is exactly 4096 bytes" "${#exact}" 4096
r=$(wh_send "$S1" msg_exact "$exact")
weq "body of exactly webhook_max_body: 200" "${r%% *}" 200

# Methods.
code=$(curl -s -o /dev/null -w '%{http_code}' -m 5 "$WH_URL")
weq "GET: 405" "$code" 405
allow=$(curl -s -D - -o /dev/null -m 5 "$WH_URL" | tr -d '\r' |
    sed -n 's/^[Aa]llow: *//p')
weq "405 names Allow: POST" "$allow" POST
code=$(curl -s -o /dev/null -w '%{http_code}' -m 5 -X PUT -d x "$WH_URL")
weq "PUT: 405" "$code" 405

# Missing and malformed headers: 400.
for m in missing_id missing_ts missing_sig bad_ts multi_sig; do
	out=$(wh_deliver "{\"secret\":\"$S1\",\"mode\":\"$m\"}")
	weq "mode $m: 400" "$(wh_status "$out")" 400
done
ts=$(date +%s)
r=$(wh_post msg_mal_1 "$ts" "v1=nothex" "$BODY")
weq "signature not hex: 400" "${r%% *}" 400
good=$(wh_sign "$S1" msg_mal_2 "$ts" "$BODY")
r=$(wh_post msg_mal_2 "$ts" "sha256=${good#v1=}" "$BODY")
weq "signature without v1=: 400" "${r%% *}" 400
r=$(wh_post msg_mal_3 "$ts" "$(echo "$good" | tr a-f A-F | sed 's/^V1/v1/')" "$BODY")
weq "signature in upper-case hex: rejected" \
    "$([ "${r%% *}" = 400 ] || [ "${r%% *}" = 401 ] && echo rejected || echo "${r%% *}")" \
    rejected
r=$(wh_post msg_mal_4 "$ts" " $good" "$BODY")
weq "signature with a leading blank: rejected (no trimming)" \
    "$([ "${r%% *}" = 400 ] || [ "${r%% *}" = 401 ] && echo rejected || echo "${r%% *}")" \
    rejected
long=$(printf 'msg_%0300d' 0)
r=$(wh_send "$S1" "$long" "$BODY")
weq "Webhook-Id over 256 bytes: 400" "${r%% *}" 400

# Bad signatures and timestamps: 401.
for m in tampered wrong_secret stale future; do
	out=$(wh_deliver "{\"secret\":\"$S1\",\"mode\":\"$m\"}")
	weq "mode $m: 401" "$(wh_status "$out")" 401
done
now=$(date +%s)
r=$(wh_send "$S1" msg_age_250 "$BODY" $((now - 250)))
weq "timestamp 250 s old (inside the 300 s default): 200" "${r%% *}" 200
r=$(wh_send "$S1" msg_age_330 "$BODY" $((now - 330)))
weq "timestamp 330 s old: 401" "${r%% *}" 401
r=$(wh_send "$S1" msg_age_m330 "$BODY" $((now + 330)))
weq "timestamp 330 s ahead: 401" "${r%% *}" 401

# Raw bodies: an empty one (the §9.2 vector's shape) and a non-JSON one are
# stored and delivered byte for byte.
r=$(wh_send "$S1" msg_empty "")
weq "empty signed body: 200" "${r%% *}" 200
eseq=$(printf '%s' "${r#* }" | jq -r .seq)
text='not json: "ü" \ tab	end'
r=$(wh_send "$S1" msg_text "$text")
weq "non-JSON signed body: 200" "${r%% *}" 200
evs=$(wh_events "{\"after_seq\":$((eseq - 1))}" 2)
jqt "empty body delivered locally (payload null)" \
    "$(printf '%s\n' "$evs" | head -n 1)" \
    '.webhook_id == "msg_empty" and .payload == null'
weq "non-JSON body delivered as received" \
    "$(printf '%s\n' "$evs" | jq -r 'select(.webhook_id == "msg_text") | .body')" \
    "$text"

# The headers kept with each delivery (a JSON object in state.db): plain
# ASCII copied in, anything else escaped.
qid='msg_"quoted"\back'
r=$(wh_send "$S1" "$qid" '{"event":"run.completed"}')
weq "Webhook-Id with quotes and a backslash: 200" "${r%% *}" 200
hdrs() {
	sqlite3 "$T/state/state.db" \
	    "SELECT headers FROM inbox WHERE seq = $(printf '%s' "$1" | jq .seq)"
}
jqt "headers kept: plain ones as sent" \
    "$(hdrs "$(wh_send "$S1" msg_plain '{}' | cut -d' ' -f2-)")" \
    '(keys == ["content-type", "webhook-id", "webhook-timestamp"]) and
     .["webhook-id"] == "msg_plain" and .["content-type"] == "application/json"
     and (.["webhook-timestamp"] | test("^[0-9]+$"))'
h=$(hdrs "${r#* }")
weq "headers kept: an id that needs escaping comes back whole" \
    "$(printf '%s' "$h" | jq -r '.["webhook-id"]')" "$qid"
jqt "headers kept: escaped, with the other fields" "$h" \
    '.["content-type"] == "application/json" and
     (.["webhook-timestamp"] | test("^[0-9]+$"))'

# Slowloris: one header byte a second. Each request must be in within the
# timeout (10 s) of the connection opening, however steadily it trickles:
# the connection is cut then (EOF, no answer), and a normal delivery in the
# meantime is answered at once. The bounds are generous: the cut comes
# from a timer at 10 s, not from the sender stopping (it would need 78 s).
slow_req="POST / HTTP/1.1"$'\r\n'"Host: 127.0.0.1"$'\r\n'"Webhook-Id: slowloris-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"$'\r\n'
exec 7<>"/dev/tcp/127.0.0.1/$WH_PORT"
slow_t0=$(date +%s%3N)
(
	for ((i = 0; i < ${#slow_req}; i++)); do
		printf '%s' "${slow_req:i:1}" >&7 2>/dev/null || exit 0
		sleep 1
	done
) &
slow_pid=$!
sleep 3
t0=$(date +%s%3N)
r=$(wh_send "$S1" msg_during_slowloris "$BODY")
t1=$(date +%s%3N)
weq "delivery during slowloris: 200" "${r%% *}" 200
check "delivery during slowloris answered in < 3 s ($((t1 - t0)) ms)" \
    test $((t1 - t0)) -lt 3000
# EOF (or a reset) on the slow connection ends the read; give it 30 s.
slow_got=$(timeout 30 cat <&7 2>/dev/null | head -c 200)
slow_ms=$(($(date +%s%3N) - slow_t0))
kill "$slow_pid" 2>/dev/null
wait "$slow_pid" 2>/dev/null
exec 7>&-
weq "slowloris: cut off without an answer" "$slow_got" ""
check "slowloris (1 byte/s) cut off after 9-20 s (took $((slow_ms / 1000)) s)" \
    test "$slow_ms" -ge 9000 -a "$slow_ms" -lt 20000

# ---- reload: a removed secret stops verifying; SIGHUP keeps it running ----
wh_config "webhook_secret = $S1" "webhook_max_body = 4K"
rl=$(wh_call daemon.reload)
jqt "daemon.reload with the file changed: reloaded" "$rl" '.result.reloaded == true'
r=$(wh_send "$S1" msg_after_reload_1 "$BODY")
weq "after reload: the kept secret verifies" "${r%% *}" 200
r=$(wh_send "$S2" msg_after_reload_2 "$BODY")
weq "after reload: the removed secret no longer verifies (401)" "${r%% *}" 401
kill -HUP "$DAEMON_PID"
sleep 0.5
check "SIGHUP: the daemon is still running" kill -0 "$DAEMON_PID"
if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
	wait "$DAEMON_PID" 2>/dev/null
	echo "  (exit status $?)"
	DAEMON_PID=
	wh_start
fi
wh_stop
weq "SIGTERM: exit status 0 (clean stop)" "$WH_RC" 0

# ---- tolerance 0: any age, and the §9.2 test vector byte for byte --------
wh_config "webhook_secret = $S1" "webhook_secret = whsec_test_secret_123" \
    "webhook_tolerance = 0"
wh_start
out=$(wh_deliver "{\"secret\":\"$S1\",\"mode\":\"stale\"}")
weq "tolerance 0: an hour-old timestamp is accepted" "$(wh_status "$out")" 200
out=$(wh_deliver "{\"secret\":\"$S1\",\"mode\":\"future\"}")
weq "tolerance 0: an hour-ahead timestamp is accepted" "$(wh_status "$out")" 200
r=$(wh_post msg_abc 1700000000 \
    v1=b70279b624690a8169f069e5943e580b510e8ca616c0ce5fad0246fbc90322b6 \
    '{"event":"run.completed","run_id":42}')
weq "tolerance 0: the §9.2 vector (2023 timestamp) verifies" "${r%% *}" 200
out=$(wh_deliver "{\"secret\":\"$S1\",\"mode\":\"tampered\"}")
weq "tolerance 0: a tampered body is still 401" "$(wh_status "$out")" 401

# Deliveries that queue up behind a writer waiting on a lock, large ones
# (over 16 KiB, parsed by the writer) among them: each gets its 503 (a
# batch refused for a lock is not tried again delivery by delivery), and
# the same delivery is stored once the lock is gone.
if command -v python3 >/dev/null 2>&1; then
	big=$(printf '{"event":"run.completed","pad":"%s"}' \
	    "$(head -c 20000 /dev/zero | tr '\0' x)")
	lock_db 30
	wh_send "$S1" msg_first "$BODY" >"$T/first.out" &
	first=$!
	sleep 0.3 # the writer now waits on the lock with msg_first
	wh_send "$S1" msg_big_1 "$big" >"$T/big1.out" &
	b1=$!
	wh_send "$S1" msg_big_2 "$big" >"$T/big2.out" &
	b2=$!
	wait "$first" "$b1" "$b2"
	touch "$T/unlock"
	wait "$LOCKER"
	weq "state.db locked: a delivery and two large ones behind it, 503 each" \
	    "$(cut -d' ' -f1 "$T/first.out" "$T/big1.out" "$T/big2.out" | paste -sd' ')" \
	    "503 503 503"
	r=$(wh_send "$S1" msg_big_1 "$big")
	weq "lock gone: the large delivery is stored (200)" "${r%% *}" 200
fi
wh_stop

# ---- secret capture through the daemon -----------------------------------
wh_config # no secret at all
wh_start
r=$(wh_send whsec_not_yet_known_0000001 msg_cap_0 "$BODY")
weq "no secret configured: 401" "${r%% *}" 401
cr=$(wh_call webhooks.create '{"url":"https://example.com/h"}')
jqt "webhooks.create through the daemon" "$cr" \
    '.result.id != null and (.result.secret | type == "string")'
sec=$(printf '%s' "$cr" | jq -r '.result.secret // empty')
wid=$(printf '%s' "$cr" | jq -r '.result.id // empty')
check "the create answer has the full secret" \
    sh -c "[ \${#1} -ge 16 ] && ! printf %s \"\$1\" | grep -q '[*]'" _ "$sec"
r=$(wh_send "$sec" msg_cap_1 "$BODY")
weq "captured secret verifies with no configuration (200)" "${r%% *}" 200
check "capture is logged without the secret" \
    sh -c "grep -q 'stored the signing secret' '$T/daemon.log' && ! grep -qF -- '$sec' '$T/daemon.log'"
wh_kill9
wh_start
r=$(wh_send "$sec" msg_cap_2 "$BODY")
weq "captured secret survives a restart (state.db): 200" "${r%% *}" 200
ur=$(wh_call webhooks.update "{\"webhook_id\":$wid,\"rotate_secret\":true}")
sec2=$(printf '%s' "$ur" | jq -r '.result.secret // empty')
check "rotate_secret answers a new full secret" \
    sh -c "[ \${#1} -ge 16 ] && [ \"\$1\" != \"\$2\" ]" _ "$sec2" "$sec"
r=$(wh_send "$sec2" msg_cap_3 "$BODY")
weq "rotated secret verifies (200)" "${r%% *}" 200
r=$(wh_send "$sec" msg_cap_4 "$BODY")
echo "note: the pre-rotation secret now answers ${r%% *} (overlap by design)"
gr=$(wh_call webhooks.get "{\"webhook_id\":$wid}")
masked=$(printf '%s' "$gr" | jq -r '.result.secret // empty')
r=$(wh_send "$masked" msg_cap_5 "$BODY")
weq "the masked secret of webhooks.get is not captured (401)" "${r%% *}" 401

wh_finish
