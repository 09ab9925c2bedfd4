# SPDX-License-Identifier: MIT
#
# Helpers for the webhook receiver tests (t_webhooks*.sh), on top of
# lib.sh: a configuration file, the receiver's port, signed deliveries
# (curl, or the mock's /__mock/deliver driver), local listeners on the
# control socket, and the end-of-test checks (clean SIGTERM exit, no
# sanitizer report in $T/daemon.log). Sourced after lib.sh; uses only its
# committed helpers (start_mock, start_daemon, check, jqt, ok, not_ok,
# finish, wait_for).

WH_CONF=$T/m8tesd.conf
WH_PORT=
WH_URL=
WH_LOGLINES=0

# weq NAME GOT WANT: passes when GOT is exactly WANT.
weq() {
	if [ "$2" = "$3" ]; then
		ok "$1"
	else
		not_ok "$1"
		echo "  got:  $(printf '%s' "$2" | head -c 600)"
		echo "  want: $(printf '%s' "$3" | head -c 600)"
	fi
}

# wh_config LINE...: writes the configuration file, one line each; the
# receiver always listens on a free port of 127.0.0.1.
wh_config() {
	{
		echo "webhook_listen = 127.0.0.1:0"
		printf '%s\n' "$@"
	} >"$WH_CONF"
}

# wh_start [ARGS...]: starts the daemon with the configuration file and
# sets WH_PORT/WH_URL from its log ("receiving webhooks on port N").
wh_start() {
	WH_LOGLINES=0
	[ -f "$T/daemon.log" ] && WH_LOGLINES=$(wc -l <"$T/daemon.log")
	start_daemon --config "$WH_CONF" "$@"
	WH_PORT=$(tail -n +"$((WH_LOGLINES + 1))" "$T/daemon.log" |
	    sed -n 's/.*receiving webhooks on port \([0-9]*\).*/\1/p' | tail -n 1)
	if [ -z "$WH_PORT" ]; then
		echo "the daemon does not receive webhooks"
		tail -n 20 "$T/daemon.log"
		exit 1
	fi
	WH_URL=http://127.0.0.1:$WH_PORT/
}

# wh_kill9: kill -9 the daemon (a crash), and wait for it.
wh_kill9() {
	kill -9 "$DAEMON_PID" 2>/dev/null
	wait "$DAEMON_PID" 2>/dev/null
	DAEMON_PID=
}

# wh_stop: SIGTERM, and wait; the exit status goes to WH_RC.
wh_stop() {
	kill "$DAEMON_PID" 2>/dev/null
	wait "$DAEMON_PID" 2>/dev/null
	WH_RC=$?
	DAEMON_PID=
}

# wh_sign SECRET ID TS BODY: prints "v1=<hex>" (openssl, else the mock).
wh_sign() {
	local hex
	if command -v openssl >/dev/null; then
		hex=$(printf '%s' "$2.$3.$4" |
		    openssl dgst -sha256 -hmac "$1" -hex | sed 's/.*= *//')
		echo "v1=$hex"
	else
		curl -s -X POST "$MOCK/__mock/deliver" -d "$(jq -cn \
		    --arg s "$1" --arg i "$2" --arg t "$3" --arg b "$4" \
		    '{secret:$s, webhook_id:$i, timestamp:($t|tonumber),
		      body:$b, dry_run:true}')" | jq -r .signature
	fi
}

# wh_post ID TS SIG BODY [CURL_ARGS...]: POSTs one delivery to the
# receiver (empty ID/TS/SIG: header left out); prints "STATUS BODY".
wh_post() {
	local id=$1 ts=$2 sig=$3 body=$4 h=()
	shift 4
	[ -n "$id" ] && h+=(-H "Webhook-Id: $id")
	[ -n "$ts" ] && h+=(-H "Webhook-Timestamp: $ts")
	[ -n "$sig" ] && h+=(-H "Webhook-Signature: $sig")
	curl -s -m 10 -o "$T/post.body" -w '%{http_code}' \
	    -H 'Content-Type: application/json' ${h[@]+"${h[@]}"} \
	    --data-binary "$body" "$@" "$WH_URL" >"$T/post.code"
	echo "$(cat "$T/post.code") $(cat "$T/post.body" 2>/dev/null)"
}

# wh_send SECRET ID BODY [TS [CURL_ARGS...]]: a correctly signed delivery
# (TS empty or left out: now); prints "STATUS BODY".
wh_send() {
	local secret=$1 id=$2 body=$3 ts=${4:-}
	shift 3
	[ $# -gt 0 ] && shift
	[ -n "$ts" ] || ts=$(date +%s)
	wh_post "$id" "$ts" "$(wh_sign "$secret" "$id" "$ts" "$body")" "$body" "$@"
}

# wh_deliver JSON: the mock's delivery driver aimed at the receiver;
# prints its answer ({"statuses":[...], ...}).
wh_deliver() {
	curl -s -m 120 -X POST "$MOCK/__mock/deliver" \
	    -d "$(jq -cn --argjson p "$1" --arg u "$WH_URL" '{url:$u} + $p')"
}

# wh_status JSON: the statuses of a wh_deliver, space-separated.
wh_status() { printf '%s' "$1" | jq -r '.statuses | map(tostring) | join(" ")'; }

# wh_listen FILE PARAMS [SECS]: a webhooks.listen call in the background,
# its reply lines appended to FILE; the connection stays open SECS
# (default 60) after the request. Sets WH_LPID (socat's pid).
wh_listen() {
	local line
	line=$(jq -cn --argjson p "$2" '{id:1, method:"webhooks.listen", params:$p}')
	socat -t "${3:-60}" - UNIX-CONNECT:"$SOCK" <<<"$line" >>"$1" 2>/dev/null &
	WH_LPID=$!
}

# wh_count FILE: event lines in a listener's output.
wh_count() { grep -c '"event":{' "$1" 2>/dev/null || true; }

# wh_events PARAMS [WANT [SECS]]: the events a fresh webhooks.listen gets,
# one JSON event object a line, once WANT of them arrived or after SECS
# (default 3) without reaching it.
wh_events() {
	local f pid n=0
	f=$(mktemp "$T/ev.XXXXXX")
	wh_listen "$f" "$1" 60
	pid=$WH_LPID
	if [ -n "${2:-}" ]; then
		wait_for "${3:-3}" sh -c "[ \$(grep -c '\"event\":{' '$f') -ge $2 ]"
		sleep 0.2 # anything beyond WANT shows up too
	else
		sleep "${3:-1}"
	fi
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	jq -c 'select(.event) | .event' "$f" 2>/dev/null
	rm -f "$f"
}

# wh_call METHOD [PARAMS]: one call on the socket; prints the reply line.
wh_call() {
	local line p=${2:-}
	[ -n "$p" ] || p='{}'
	line=$(jq -cn --arg m "$1" --argjson p "$p" '{id:1, method:$m, params:$p}')
	printf '%s\n' "$line" | socat -t 10 - UNIX-CONNECT:"$SOCK" 2>/dev/null | tail -n 1
}

# wh_log_clean: no sanitizer report in the daemon log.
wh_log_clean() {
	! grep -qE 'runtime error|AddressSanitizer|LeakSanitizer' \
	    "$T/daemon.log" 2>/dev/null
}

# wh_check_log: fails the test on a sanitizer report in the daemon log.
wh_check_log() {
	if wh_log_clean; then
		ok "no sanitizer report in the daemon log"
	else
		not_ok "no sanitizer report in the daemon log"
		grep -m 10 -E -A 14 'runtime error|AddressSanitizer|LeakSanitizer' \
		    "$T/daemon.log" | head -n 80
	fi
}

# wh_finish: the daemon still runs, stops on SIGTERM with status 0 and
# left no sanitizer report; then lib.sh's finish.
wh_finish() {
	if [ -n "$DAEMON_PID" ]; then
		check "daemon still alive at the end" kill -0 "$DAEMON_PID"
		wh_stop
		weq "daemon exits 0 on SIGTERM" "$WH_RC" 0
	fi
	wh_check_log
	finish
}

# wh_consumer NAME LOG [PARAMS]: a durable consumer in the background: it
# calls webhooks.listen {consumer: NAME} (+ PARAMS) and acknowledges each
# event on the same connection as soon as it has it. LOG gets "ev SEQ ID"
# per event, "ack SEQ" per confirmed ack and "err LINE" per other reply.
# Ends when the connection does, or with wh_consumer_stop. Sets WH_CPID.
wh_consumer() {
	local name=$1 log=$2 params=${3:-}
	local fin=$T/consumer.$name.in fout=$T/consumer.$name.out req
	[ -n "$params" ] || params='{}'
	req=$(jq -cn --arg c "$name" --argjson p "$params" \
	    '{id:1, method:"webhooks.listen", params:({consumer:$c} + $p)}')
	rm -f "$fin" "$fout" "$T/consumer.$name.pid"
	mkfifo "$fin" "$fout"
	(
		exec 3<>"$fin"
		printf '%s\n' "$req" >&3
		socat -t 1 - UNIX-CONNECT:"$SOCK" <&3 >"$fout" 2>/dev/null &
		echo $! >"$T/consumer.$name.pid"
		while IFS= read -r line; do
			if [[ $line =~ ^\{\"id\":1,\"seq\":([0-9]+),\"event\" ]]; then
				s=${BASH_REMATCH[1]}
				[[ $line =~ \"webhook_id\":\"([^\"]*)\" ]]
				echo "ev $s ${BASH_REMATCH[1]}" >>"$log"
				printf '{"id":"a%s","method":"webhooks.ack","params":{"consumer":"%s","seq":%s}}\n' \
				    "$s" "$name" "$s" >&3
			elif [[ $line =~ \"acked\":([0-9]+) ]]; then
				echo "ack ${BASH_REMATCH[1]}" >>"$log"
			else
				echo "err $line" >>"$log"
			fi
		done <"$fout"
		exec 3>&-
	) &
	WH_CPID=$!
	WH_CNAME=$name
}

# wh_consumer_stop: closes the consumer's connection and waits for it.
wh_consumer_stop() {
	kill "$(cat "$T/consumer.$WH_CNAME.pid" 2>/dev/null)" 2>/dev/null
	wait "$WH_CPID" 2>/dev/null
}

# wh_lines LOG KIND: the second field of LOG's lines of that kind.
wh_lines() { awk -v k="$2" '$1 == k { print $2 }' "$1" 2>/dev/null; }

# lock_db SECS: another process takes state.db's write lock, creates
# $T/locked once it has it, and lets go after SECS or once $T/unlock
# exists; in the background, its pid in LOCKER.
lock_db() {
	rm -f "$T/locked" "$T/unlock"
	python3 - "$T/state/state.db" "$T/locked" "$T/unlock" "$1" <<'EOF' &
import os, sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
open(sys.argv[2], "w").close()
end = time.monotonic() + float(sys.argv[4])
while time.monotonic() < end and not os.path.exists(sys.argv[3]):
    time.sleep(0.02)
db.execute("COMMIT")
EOF
	LOCKER=$!
	wait_for 10 test -e "$T/locked"
}
