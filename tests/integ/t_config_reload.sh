#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The configuration file (--config): every command-line option of m8tesd
# has a key there, and a daemon started with nothing but --config uses
# each one (socket, base_url, api_key_file, state_dir, cache_dir,
# webhook_listen, log_level, upstream_timeout, poll_interval,
# retry_backoff, max_retry_after); the command line wins over the file.
# Unknown keys and bad values stop m8tesd at start with FILE:LINE and the
# reason. Reloads (daemon.reload and SIGHUP): a bad file is reported and
# the running configuration kept; a good one is applied at once, or
# reported as needing a restart; connections, a held connection's calls
# and a live stream go on through all of them.

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_peers.sh"

ENVKEY=m8_env_key_loses_to_the_file_4444444444
SECRET=whsec_config_reload_test_secret
TEST_KEYS="$ENVKEY $SECRET"
CONF=$T/m8tesd.conf
printf '%s\n' "$KEY" >"$T/key"
chmod 600 "$T/key"
start_mock

# ---- every command-line option is a key of the file -----------------------

# Options that are no settings: --config names the file, --foreground is
# accepted and does nothing (m8tesd never forks), --help and --version.
opts=$("$BIN/m8tesd" --help | grep -oE '^ +--[a-z-]+' | tr -d ' ' |
    grep -vxE -- '--(config|foreground|help|version)')
check "m8tesd --help lists its options" [ "$(printf '%s\n' "$opts" | wc -l)" -ge 11 ]
for o in $opts; do
	k=$(printf '%s' "${o#--}" | tr - _)
	printf '%s =\n' "$k" >"$T/one.conf"
	eq "option $o is the key $k" \
	    "$("$BIN/m8tesd" --config "$T/one.conf" 2>&1)" \
	    "m8tesd: $T/one.conf:1: $k needs a value"
done

# ---- a daemon configured by the file alone ---------------------------------

cat >"$CONF" <<EOF
# Every option of the command line, set here.
socket = $SOCK
base_url = $MOCK_URL
api_key_file = $T/key
state_dir = $T/state
cache_dir = $T/cache
webhook_listen = 127.0.0.1:0
log_level = debug
upstream_timeout = 1
poll_interval = 0.05
retry_backoff = 0.8
max_retry_after = 0
webhook_secret = $SECRET
EOF
cp "$CONF" "$T/first.conf"
M8TES_API_KEY=$ENVKEY "$BIN/m8tesd" --config "$CONF" >>"$T/daemon.log" 2>&1 &
DAEMON_PID=$!
up() { [ "$(call daemon.ping)" = '{"id":1,"result":{"pong":true}}' ]; }
wait_for 10 up || { echo "daemon did not start"; cat "$T/daemon.log"; exit 1; }
ok "socket: the daemon listens where the file says"

mock_clear
call teammates.list >/dev/null
wire "base_url and api_key_file (over \$M8TES_API_KEY)" GET /agents/ "" ""
jqt "auth.status: the key file" "$(call auth.status)" '.result.source == "file"'
check "state_dir: state.db is there" test -f "$T/state/state.db"
jqt "cache_dir: the cache is open" "$(call cache.stats)" \
    '.result.available == true and .result.entries >= 1'
check "cache_dir: in the configured directory" \
    sh -c "[ -n \"\$(ls -A '$T/cache')\" ]"

port=$(sed -n 's/.*receiving webhooks on port \([0-9]*\).*/\1/p' "$T/daemon.log" | head -n 1)
check "webhook_listen: a port was bound" [ -n "$port" ]
out=$(curl -s -m 30 -X POST "$MOCK/__mock/deliver" -d "$(jq -cn \
    --arg u "http://127.0.0.1:${port:-1}/" --arg s "$SECRET" '{url:$u, secret:$s}')")
jqt "webhook_listen and webhook_secret: a signed delivery is accepted" \
    "$out" '.statuses[0] >= 200 and .statuses[0] < 300'

call teammates.delete '{"teammate_id":424242}' >/dev/null
check "log_level = debug: upstream failures are logged at debug" \
    grep -q 'm8tesd debug: teammates.delete: m8tes.not_found (404)' "$T/daemon.log"

# A GET that outlasts the timeout is given up and retried: two requests
# (with the default 300 s, one slow answer).
mock_fault '{"method":"GET","path":"/api/v2/agents/","delay_ms":2500,"times":1}'
mock_clear
jqt "upstream_timeout = 1: a GET answered after 2.5 s ..." \
    "$(call teammates.list '{"cache":"bypass"}')" '.result.data'
eq "... was given up after 1 s and sent again" "$(mock_requests | jq length)" 2
mock_faults_clear

mock_config '{"run_steps":3}'
run=$(mock_post /runs/ '{"message":"poll me","stream":false}' | jq .id)
mock_clear
jqt "poll_interval = 0.05: a 3-step run is polled to its end within 1.5 s" \
    "$(call runs.poll "{\"run_id\":$run,\"timeout\":1.5}")" \
    '.result.status == "completed"'
eq "... in 3 GETs" "$(mock_requests | jq '[.[] | select(.method == "GET")] | length')" 3
mock_config '{"run_steps":2}'

mock_fault '{"method":"GET","path":"/api/v2/agents/","status":503,"times":1}'
mock_clear
jqt "retry_backoff: a 503 is retried" \
    "$(call teammates.list '{"cache":"bypass"}')" '.result.data'
gap=$(mock_requests | jq '.[1].time_ms - .[0].time_ms')
check "retry_backoff = 0.8: the retry waited at least 0.8 s (${gap} ms)" \
    [ "${gap:-0}" -ge 800 ]
mock_fault '{"method":"GET","path":"/api/v2/agents/","status":429,"retry_after":"1","times":1}'
mock_clear
jqt "max_retry_after = 0: a 429 with Retry-After: 1 is not waited for" \
    "$(call teammates.list '{"cache":"bypass"}')" \
    '.error.code == "m8tes.rate_limited" and .error.retry_after == 1'
eq "... one request, no retry" "$(mock_requests | jq length)" 1
mock_faults_clear

# ---- mistakes stop m8tesd at start -----------------------------------------

# bad_start NAME LINES MESSAGE: a file with a good socket line, then
# LINES, stops m8tesd with exit status 2 and "m8tesd: FILE:N: MESSAGE"
# (N: the last line), before it binds the socket.
bad_start() {
	local out rc n
	printf 'socket = %s\n%s\n' "$T/bad.sock" "$2" >"$T/bad.conf"
	n=$(wc -l <"$T/bad.conf")
	out=$("$BIN/m8tesd" --config "$T/bad.conf" 2>&1)
	rc=$?
	eq "start, $1: exit status 2" "$rc" 2
	eq "start, $1: the message" "$out" "m8tesd: $T/bad.conf:$n: $3"
	check "start, $1: no socket" [ ! -e "$T/bad.sock" ]
}
bad_start "unknown key" "sokcet = /tmp/x" \
    'unknown key "sokcet" (did you mean "socket"?)'
bad_start "bad seconds" "upstream_timeout = fast" \
    'bad value "fast" for upstream_timeout: want seconds from 1 to 86400'
bad_start "out of range" "poll_interval = 0" \
    'bad value "0" for poll_interval: want seconds from 0.01 to 3600'
bad_start "bad level" "log_level = loud" \
    'bad value "loud" for log_level: want error, warn, info or debug'
bad_start "bad URL" "base_url = ftp://example" \
    'bad value "ftp://example" for base_url: want an http:// or https:// URL'
bad_start "unknown key in a section" "$(printf '[peer x]\nmatch_uid = 5\nalow = runs.*')" \
    'unknown key "alow" in [peer x] (did you mean "allow"?)'
bad_start "a glob that matches no method" "$(printf '[peer x]\nmatch_uid = 5\ndeny = user.*')" \
    'pattern "user.*" in deny matches no method'
bad_start "a section key outside its section" "tenant = acme" \
    'key "tenant" is only valid in a [peer NAME] section'
out=$("$BIN/m8tesd" --config "$T/no-such.conf" 2>&1)
eq "start, a --config that does not exist: exit status 2" "$?" 2
eq "start, a --config that does not exist: the message" "$out" \
    "m8tesd: cannot open $T/no-such.conf: No such file or directory"
printf 'webhook_secret = "whsec_\001_secret_in_error"\n' >"$T/bad.conf"
out=$("$BIN/m8tesd" --config "$T/bad.conf" 2>&1)
eq "start, a bad webhook_secret: the message does not repeat it" "$out" \
    "m8tesd: $T/bad.conf:1: bad value for webhook_secret: want at most 512 printable bytes"
out=$("$BIN/m8tesd" --config "$CONF" --upstream-timeout fast 2>&1)
eq "start, a bad value on the command line" "$out" \
    'm8tesd: --upstream-timeout: bad value "fast" for upstream-timeout: want seconds from 1 to 86400'

# The command line wins over the file.
printf 'socket = %s\nlog_level = debug\n' "$T/file.sock" >"$T/cli.conf"
"$BIN/m8tesd" --config "$T/cli.conf" --socket "$T/cli.sock" --base-url "$MOCK_URL" \
    --state-dir "$T/cli-state" --cache-dir "$T/cli-cache" >"$T/cli.log" 2>&1 &
cli_pid=$!
cli_up() { echo '{"method":"daemon.ping"}' | socat -t 2 - UNIX-CONNECT:"$T/cli.sock" | grep -q pong; }
check "the command line wins: --socket over the file's socket" wait_for 10 cli_up
check "... the file's socket is not bound" [ ! -e "$T/file.sock" ]
kill "$cli_pid"
wait "$cli_pid"
eq "... that daemon exits 0" "$?" 0
check "... cleanly" sh -c "! grep -qE 'runtime error|Sanitizer' '$T/cli.log'"

# ---- reloads: bad files keep the running configuration ---------------------

# A connection held open through every reload, and a live stream.
conn_open held self
conn_send held "$(req_line daemon.ping '' 1)"
check "held connection: first call" conn_wait held '.id == 1'
conn_open stream self
conn_send stream "$(req_line runs.create '{"message":"[slow:120] [long:30] through reloads"}' 1)"
check "a stream is under way" conn_wait stream '.seq == 2'

# The reloaded files differ from the first by a [peer] section that denies
# teammates.delete to root, observable at once.
DENY=$(printf '[peer root]\nmatch_uid = 0\ndeny = teammates.delete\n')
cp "$T/first.conf" "$CONF"
printf 'sokcet = /tmp/x\n%s\n' "$DENY" >>"$CONF"
bad_line=$(grep -n '^sokcet' "$CONF" | cut -d: -f1)
jeq "daemon.reload, unknown key: refused with FILE:LINE" "$(call daemon.reload)" \
    "{\"id\":1,\"error\":{\"code\":\"m8tesd.invalid_params\",\"message\":\"$CONF:$bad_line: unknown key \\\"sokcet\\\" (did you mean \\\"socket\\\"?)\",\"retryable\":false}}"
check "... logged" grep -q "reload failed, keeping the running configuration: $CONF:$bad_line: unknown key \"sokcet\"" "$T/daemon.log"
mock_clear
jqt "... and the old configuration still runs (no deny)" \
    "$(call teammates.delete '{"teammate_id":424242}')" '.error.code == "m8tes.not_found"'

cp "$T/first.conf" "$CONF"
printf 'upstream_timeout = fast\n%s\n' "$DENY" >>"$CONF"
sed -i '/^upstream_timeout = 1$/d' "$CONF"
bad_line=$(grep -n '^upstream_timeout' "$CONF" | cut -d: -f1)
nfail=$(grep -c 'reload failed' "$T/daemon.log")
kill -HUP "$DAEMON_PID"
hup_failed() { [ "$(grep -c 'reload failed' "$T/daemon.log")" -gt "$nfail" ]; }
check "SIGHUP, bad value: the reload fails" wait_for 10 hup_failed
eq "... logged with FILE:LINE and the reason" \
    "$(grep -o 'reload failed.*' "$T/daemon.log" | tail -n 1)" \
    "reload failed, keeping the running configuration: $CONF:$bad_line: bad value \"fast\" for upstream_timeout: want seconds from 1 to 86400"
jqt "... and the old configuration still runs (no deny)" \
    "$(call teammates.delete '{"teammate_id":424242}')" '.error.code == "m8tes.not_found"'
check "the daemon is alive after bad reloads" daemon_alive

# ---- good reloads ----------------------------------------------------------

cp "$T/first.conf" "$CONF"
printf '%s\n' "$DENY" >>"$CONF"
nok=$(grep -c 'configuration reloaded' "$T/daemon.log")
kill -HUP "$DAEMON_PID"
hup_ok() { [ "$(grep -c 'configuration reloaded' "$T/daemon.log")" -gt "$nok" ]; }
check "SIGHUP, good file: reloaded" wait_for 10 hup_ok
mock_clear
jeq "... the new [peer] section applies at once" \
    "$(call teammates.delete '{"teammate_id":424242}')" \
    '{"id":1,"error":{"code":"m8tesd.forbidden","message":"teammates.delete is denied by [peer root]","retryable":false}}'
eq "... nothing sent upstream" "$(mock_requests | jq length)" 0

# Values the upstream client uses take effect at once too.
sed -e 's/^upstream_timeout = 1$/upstream_timeout = 30/' \
    -e 's/^retry_backoff = 0.8$/retry_backoff = 0.05/' \
    -e 's/^max_retry_after = 0$/max_retry_after = 5/' "$T/first.conf" >"$CONF"
printf '%s\n' "$DENY" >>"$CONF"
jeq "daemon.reload, new upstream values" "$(call daemon.reload)" \
    '{"id":1,"result":{"reloaded":true}}'
mock_fault '{"method":"GET","path":"/api/v2/agents/","delay_ms":1500,"times":1}'
mock_clear
jqt "upstream_timeout = 30 now: a GET answered after 1.5 s ..." \
    "$(call teammates.list '{"cache":"bypass"}')" '.result.data'
eq "... is waited for" "$(mock_requests | jq length)" 1
mock_fault '{"method":"GET","path":"/api/v2/agents/","status":429,"retry_after":"0.2","times":1}'
mock_clear
jqt "max_retry_after = 5 now: a 429 with Retry-After: 0.2 is retried" \
    "$(call teammates.list '{"cache":"bypass"}')" '.result.data'
eq "... two requests" "$(mock_requests | jq length)" 2
mock_faults_clear

# Changes that need a restart are said to.
sed -e "s#^socket = .*#socket = $T/elsewhere.sock#" \
    -e "s#^api_key_file = .*#api_key_file = $T/other-key#" "$CONF" >"$CONF.new"
mv "$CONF.new" "$CONF"
sed -i '1i max_connections = 100\naudit_retention_days = 7' "$CONF"
jeq "daemon.reload, socket and more changed: reloaded, with a note" \
    "$(call daemon.reload)" \
    '{"id":1,"result":{"reloaded":true,"note":"some changes need a restart"}}'
for k in socket api_key_file max_connections audit_retention_days; do
	check "... the log names $k" grep -q \
	    "reload: $k changed; it takes effect at the next start" "$T/daemon.log"
done
check "... the running socket still answers" up
check "... no new socket" [ ! -e "$T/elsewhere.sock" ]

# ---- nothing was dropped ---------------------------------------------------

conn_send held "$(req_line daemon.ping '' 2)"
check "held connection: a call after the reloads" conn_wait held '.id == 2'
check "the stream ends" wait_for 30 conn_has stream '.result'
jqt "... completed, every event once, in order" \
    "$(jq -cs . "$T/conn.stream.out")" \
    '(.[-1].result | .finished == true and .status == "completed") and
     ([.[] | select(.seq) | .seq] as $s | $s == [range(1; ($s | length) + 1)])'
check "... its connection is still up" conn_alive stream
check "the held connection is still up" conn_alive held
conn_close held
conn_close stream
jqt "no connection was dropped" "$(daemon_stats)" '.connections.dropped == 0'

check_daemon_end
finish
