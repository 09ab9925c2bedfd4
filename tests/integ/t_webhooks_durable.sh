#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Durability of the webhook inbox (ANCHORS rows 31, 35): a repeated
# Webhook-Id is answered 2xx with duplicate:true and delivered once; while
# another process holds state.db's write lock, deliveries get 503 and are
# stored when sent again; a kill -9 in the middle of a burst from
# concurrent senders loses no delivery that was answered 2xx, stores none
# twice, and a durable consumer resumes after its last acknowledged seq.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_webhooks.sh"

S=whsec_durable_secret_000000001
BODY='{"event":"run.completed","run_id":7}'
start_mock
wh_config "webhook_secret = $S"
wh_start

# ---- duplicates -------------------------------------------------------------
live=$T/live.out
wh_listen "$live" '{}' 60
lpid=$WH_LPID
sleep 0.3
r1=$(wh_send "$S" msg_dup_1 "$BODY")
r2=$(wh_send "$S" msg_dup_1 "$BODY")
r3=$(wh_send "$S" msg_dup_1 '{"event":"run.failed","run_id":8}')
weq "first delivery: 200" "${r1%% *}" 200
weq "repeated Webhook-Id: 200" "${r2%% *}" 200
weq "repeated Webhook-Id, other body and timestamp: 200" "${r3%% *}" 200
jqt "first: duplicate false" "${r1#* }" '.duplicate == false'
jqt "repeat: duplicate true, same seq" "${r2#* }" \
    ".duplicate == true and .seq == $(printf '%s' "${r1#* }" | jq .seq)"
jqt "repeat with another body: duplicate true" "${r3#* }" '.duplicate == true'
out=$(wh_deliver "{\"secret\":\"$S\",\"webhook_id\":\"msg_dup_2\",\"count\":5}")
weq "mock driver, same id 5 times: 5 x 200" "$(wh_status "$out")" \
    "200 200 200 200 200"
sleep 0.5
kill "$lpid" 2>/dev/null
wait "$lpid" 2>/dev/null
weq "live listener got msg_dup_1 once" \
    "$(grep -c '"webhook_id":"msg_dup_1"' "$live")" 1
weq "live listener got msg_dup_2 once" \
    "$(grep -c '"webhook_id":"msg_dup_2"' "$live")" 1
evs=$(wh_events '{"after_seq":0}' 2)
weq "inbox holds msg_dup_1 once" \
    "$(printf '%s\n' "$evs" | jq -r .webhook_id | grep -c '^msg_dup_1$')" 1
jqt "the first body is the one kept" \
    "$(printf '%s\n' "$evs" | jq -c 'select(.webhook_id == "msg_dup_1")')" \
    '.event == "run.completed" and .run_id == 7'

# ---- state.db locked by another process ----------------------------------------
if command -v python3 >/dev/null 2>&1; then
	# A lock held for a moment (0.3 s) is waited out: the delivery is
	# stored.
	lock_db 0.3
	r=$(wh_send "$S" msg_brief_lock "$BODY")
	wait "$LOCKER"
	weq "state.db locked for 0.3 s: the delivery waits and is stored (200)" \
	    "${r%% *}" 200

	# Held longer than the writer waits (1 s), nothing can be committed:
	# every sender waiting gets 503 (never a 2xx for what is not stored),
	# and once the lock goes the same deliveries are stored as new ones.
	lock_db 20
	r=$(wh_send "$S" msg_locked_1 "$BODY")
	weq "state.db locked: 503" "${r%% *}" 503
	jqt "state.db locked: says it was not stored" "${r#* }" \
	    '.error == "could not store the delivery"'
	out=$(wh_deliver "{\"secret\":\"$S\",\"count\":3,\"distinct\":true}")
	weq "state.db locked, 3 more deliveries: 3 x 503" \
	    "$(wh_status "$out")" "503 503 503"
	# Senders that give up (a reset) while their deliveries wait for
	# the writer: the requests are dropped once, when the writer is done.
	ts=$(date +%s)
	python3 - "$WH_PORT" "$ts" "$BODY" \
	    "$(wh_sign "$S" msg_gone_1 "$ts" "$BODY")" \
	    "$(wh_sign "$S" msg_gone_2 "$ts" "$BODY")" <<'EOF'
import socket, struct, sys, time
port, ts, body = int(sys.argv[1]), sys.argv[2], sys.argv[3].encode()
socks = []
for i, sig in enumerate(sys.argv[4:], 1):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nWebhook-Id: msg_gone_%d\r\n"
              b"Webhook-Timestamp: %s\r\nWebhook-Signature: %s\r\n"
              b"Content-Length: %d\r\n\r\n" % (i, ts.encode(), sig.encode(),
                                              len(body)) + body)
    socks.append(s)
time.sleep(0.02)
for s in socks:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
EOF
	wait_for 5 grep -q 'msg_gone_2: connection closed before its answer' \
	    "$T/daemon.log"
	check "a sender gone while its delivery waits: the request is orphaned" \
	    grep -q 'msg_gone_1: connection closed before its answer' \
	    "$T/daemon.log"
	touch "$T/unlock"
	wait "$LOCKER"
	check "the daemon lives on after the orphans came back" \
	    kill -0 "$DAEMON_PID"
	r=$(wh_send "$S" msg_locked_1 "$BODY")
	weq "lock gone: the refused delivery is stored (200)" "${r%% *}" 200
	jqt "lock gone: as a new delivery, not a duplicate" "${r#* }" \
	    '.duplicate == false'
	check "the refusals are logged" \
	    grep -q 'webhook msg_locked_1 not stored' "$T/daemon.log"
else
	echo "SKIP: python3 is missing (state.db lock checks)"
fi

# ---- kill -9 in the middle of a burst -----------------------------------------
SENDERS=8
PER=100
clog=$T/consumer1.log
: >"$clog"
wh_consumer dur "$clog"
sleep 0.3
for k in $(seq 1 "$SENDERS"); do
	curl -s -m 120 -X POST "$MOCK/__mock/deliver" -d "$(jq -cn \
	    --arg u "$WH_URL" --arg s "$S" --arg id "burst$k" --argjson n "$PER" \
	    '{url:$u, secret:$s, webhook_id:$id, count:$n, distinct:true,
	      timeout_ms:3000}')" >"$T/burst$k.json" &
	eval "bpid$k=$!"
done
# Kill once the consumer has seen 150 events (or after 2 s at most).
wait_for 2 sh -c "[ \$(grep -c '^ev ' '$clog') -ge 150 ]"
wh_kill9
for k in $(seq 1 "$SENDERS"); do
	eval "wait \$bpid$k"
done
wait "$WH_CPID" 2>/dev/null

# The ids that got a 2xx: burstK for the first, burstK_N after.
: >"$T/ok.ids"
: >"$T/all.status"
for k in $(seq 1 "$SENDERS"); do
	jq -r --arg p "burst$k" '.statuses | to_entries[] |
	    "\(.value) \(if .key == 0 then $p else "\($p)_\(.key)" end)"' \
	    "$T/burst$k.json" >>"$T/all.status"
done
awk '$1 >= 200 && $1 < 300 { print $2 }' "$T/all.status" | sort >"$T/ok.ids"
nok=$(wc -l <"$T/ok.ids")
nfail=$(awk '$1 == 0' "$T/all.status" | wc -l)
echo "burst: $nok answered 2xx, $nfail unanswered (daemon killed), of $((SENDERS * PER))"
check "the kill came in the middle of the burst" \
    test "$nok" -gt 0 -a "$nfail" -gt 0
weq "no answer other than 2xx or none (no 503 from the store)" \
    "$(awk '$1 != 0 && ($1 < 200 || $1 >= 300)' "$T/all.status" | wc -l)" 0
weq "consumer session 1: no error replies" "$(grep -c '^err ' "$clog")" 0

wh_start
dump=$(wh_events '{"after_seq":0}' "$((nok + 2))" 10)
printf '%s\n' "$dump" | jq -r .webhook_id | sort >"$T/stored.ids"
printf '%s\n' "$dump" | jq -r .seq >"$T/stored.seqs"
weq "every delivery answered 2xx is in the inbox after the restart" \
    "$(comm -23 "$T/ok.ids" "$T/stored.ids" | wc -l)" 0
weq "no webhook id stored twice" "$(uniq -d "$T/stored.ids" | wc -l)" 0
weq "no seq listed twice" "$(sort -n "$T/stored.seqs" | uniq -d | wc -l)" 0
last=$(sort -n "$T/stored.seqs" | tail -n 1)
echo "inbox: $(wc -l <"$T/stored.ids") stored, last seq $last"

# The durable consumer comes back: it resumes after its last confirmed ack.
confirmed=$(wh_lines "$clog" ack | sort -n | tail -n 1)
confirmed=${confirmed:-0}
first1=$(wh_lines "$clog" ev | sort -n | head -n 1)
clog2=$T/consumer2.log
: >"$clog2"
wh_consumer dur "$clog2"
wait_for 10 sh -c "grep -q '^ev $last ' '$clog2' || [ $confirmed -ge $last ]"
sleep 0.3
wh_consumer_stop
echo "consumer: session 1 had $(grep -c '^ev ' "$clog") events, last confirmed ack $confirmed; session 2 had $(grep -c '^ev ' "$clog2")"
weq "session 2 replays nothing at or before the confirmed ack" \
    "$(wh_lines "$clog2" ev | awk -v c="$confirmed" '$1 <= c' | wc -l)" 0
min2=$(wh_lines "$clog2" ev | sort -n | head -n 1)
max1=$(wh_lines "$clog" ev | sort -n | tail -n 1)
if [ "$confirmed" -lt "$last" ]; then
	# The daemon may have recorded an ack whose answer the kill lost.
	check "session 2 resumes after the last ack ($confirmed < $min2 <= $((max1 + 1)))" \
	    test "${min2:-0}" -gt "$confirmed" -a "${min2:-0}" -le "$((max1 + 1))"
fi
both=$(comm -12 <(wh_lines "$clog" ev | sort -u) <(wh_lines "$clog2" ev | sort -u) | wc -l)
echo "consumer: $both events seen in both sessions (received, ack not confirmed before the kill)"
weq "no event delivered twice within one session" \
    "$( (wh_lines "$clog" ev | sort | uniq -d; wh_lines "$clog2" ev | sort | uniq -d) | wc -l)" 0
weq "the consumer missed nothing stored after it started" \
    "$(comm -23 <(awk -v f="${first1:-1}" '$1 >= f' "$T/stored.seqs" | sort -u) \
        <( (wh_lines "$clog" ev; wh_lines "$clog2" ev) | sort -u) | wc -l)" 0
weq "consumer session 2: no error replies" "$(grep -c '^err ' "$clog2")" 0

# The restarted receiver takes the senders' retries as duplicates.
retry=$(head -n 1 "$T/ok.ids")
r=$(wh_send "$S" "$retry" "$BODY")
jqt "a retried delivery after the restart: 200 duplicate" "${r#* }" \
    '.duplicate == true'

wh_finish
