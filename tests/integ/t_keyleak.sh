#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The API key never leaves the daemon but in the Authorization header to
# the upstream's own host: not in a reply, an error message, a log line
# (at debug level), the client's output, the daemon's environment, the
# cache or state.db (unless stored by a login), nor in a redirect to
# another port. Every error path is walked: invalid requests and params,
# upstream 4xx/5xx/429 with retries, timeouts, resets, an unreachable
# upstream, a key the upstream refuses (401), refused logins, admin and
# daemon methods. Each reply is checked as it comes; check_daemon_end
# checks the whole log and every reply again.

. "$(dirname "$0")/lib.sh"

BADENV=m8_refused_env_key_7777777777
BADLOGIN=m8_refused_login_key_8888888888
UNSENT=m8_unusable_login_key_9999999999
TEST_KEYS="$BADENV $BADLOGIN $UNSENT"

# no_key NAME TEXT: TEXT holds none of the keys.
no_key() {
	local k
	for k in "$KEY" $TEST_KEYS; do
		case $2 in
		*"$k"*)
			not_ok "$1: no key in it"
			printf '  %s\n' "$(printf '%s' "$2" | head -c 300)"
			return
			;;
		esac
	done
	ok "$1: no key in it"
}
# leak_call NAME METHOD [PARAMS]: call; the reply (in OUT) has no key.
leak_call() {
	local name=$1
	shift
	OUT=$(call "$@")
	no_key "$name" "$OUT"
}

start_mock
start_daemon --upstream-timeout 1 # and --log-level debug

# ---- the daemon's own methods ----------------------------------------------

for m in daemon.hello daemon.describe daemon.stats daemon.ping auth.status \
    cache.stats audit.list; do
	leak_call "$m" "$m"
	jqt "$m answers" "$OUT" '.result'
done
jqt "auth.status: a fingerprint only" "$(call auth.status)" \
    '.result | keys == ["fingerprint","key_set","source"]'
for args in "hello" "auth status" "describe runs.create" "cache stats" "audit"; do
	# shellcheck disable=SC2086
	out=$("$BIN/m8tes" --socket "$SOCK" $args 2>&1)
	printf '%s\n' "$out" >>"$T/replies.log"
	no_key "m8tes $args" "$out"
done

# ---- requests the daemon refuses -------------------------------------------

mock_clear
for line in '{"id":1,"method":' '[1]' '{"id":1,"method":"no.such"}' \
    '{"id":1,"method":"teammates.get"}' \
    '{"id":1,"method":"teammates.get","params":{"teammate_id":".."}}' \
    '{"id":1,"method":"teammates.list","params":{"limit":"x"}}' \
    '{"id":1,"method":"teammates.list","params":{"bogus":1}}' \
    '{"id":1,"method":"cancel","params":{"id":99}}'; do
	out=$(raw "$line")
	no_key "refused: $line" "$out"
	jqt "refused: $line: an error" "$out" '.error.code'
done
eq "nothing refused went upstream" "$(mock_requests | jq length)" 0

# ---- upstream errors, retries, timeouts, resets ----------------------------

# upstream_error NAME FAULT_JSON CODE [METHOD PARAMS]: with the fault
# armed (none when ""), the call (teammates.list bypassing the cache by
# default) fails with CODE and its reply has no key.
upstream_error() {
	local name=$1 fault=$2 code=$3
	shift 3
	[ $# -gt 0 ] || set -- teammates.list '{"cache":"bypass"}'
	mock_faults_clear
	[ -z "$fault" ] || mock_fault "$fault"
	leak_call "$name" "$@"
	jqt "$name: $code" "$OUT" ".error.code == \"$code\""
}
upstream_error "upstream 401" \
    '{"method":"GET","path":"/api/v2/agents/","status":401,"times":0}' \
    m8tes.authentication_error
upstream_error "upstream 403" \
    '{"method":"GET","path":"/api/v2/agents/","status":403,"times":0}' \
    m8tes.permission_denied
upstream_error "upstream 500, retried" \
    '{"method":"GET","path":"/api/v2/agents/","status":500,"times":0}' \
    m8tes.api_error
upstream_error "upstream 429" \
    '{"method":"GET","path":"/api/v2/agents/","status":429,"retry_after":"0.01","times":0}' \
    m8tes.rate_limited
upstream_error "upstream HTML error page" \
    '{"method":"GET","path":"/api/v2/agents/","status":502,"envelope":"html","times":0}' \
    m8tes.api_error
upstream_error "upstream garbage body" \
    '{"method":"GET","path":"/api/v2/agents/","status":200,"body":"not json","times":0}' \
    m8tesd.bad_upstream_reply
upstream_error "upstream connection reset" \
    '{"method":"GET","path":"/api/v2/agents/","reset":true,"times":0}' \
    m8tesd.upstream_unreachable
upstream_error "upstream cut after the headers" \
    '{"method":"POST","path":"/api/v2/agents/","reset":"headers","times":0}' \
    m8tesd.upstream_unreachable teammates.create '{"name":"cut"}'
upstream_error "upstream silent past the timeout" \
    '{"method":"GET","path":"/api/v2/agents/","delay_ms":3000,"times":0}' \
    m8tesd.upstream_timeout
upstream_error "upstream 404" "" \
    m8tes.not_found teammates.delete '{"teammate_id":424242}'
mock_faults_clear
check "the retries were logged at debug level" \
    grep -q 'debug: upstream GET: attempt 1 failed' "$T/daemon.log"

# A stream, its error frame and a cancelled call.
leak_call "a streamed run with an error frame" runs.create '{"message":"[error] hello"}'
jqt "... finished" "$OUT" '.result.finished == true'
out=$(raw "$(req_line runs.create '{"message":"[slow:200] long"}' 1)" \
    '{"id":2,"method":"cancel","params":{"id":1}}')
no_key "a cancelled stream" "$out"

# Through the real client, with its error output.
out=$(rpc teammates.get '{"teammate_id":424242}' 2>&1)
no_key "m8tes: a not-found error" "$out"
mock_fault '{"method":"GET","path":"/api/v2/agents/","status":401,"times":0}'
out=$(rpc teammates.list '{"cache":"bypass"}' 2>&1)
no_key "m8tes: an authentication error" "$out"
mock_faults_clear

# ---- a redirect to another port does not carry the key ---------------------

"$BIN/m8tes-mockd" --listen 127.0.0.1:0 --api-key m8_other_mock_key \
    --port-file "$T/mock2.port" >"$T/mock2.log" 2>&1 &
MOCK2_PID=$!
wait_for 10 test -s "$T/mock2.port"
MOCK2=http://127.0.0.1:$(cat "$T/mock2.port")
mock_fault "{\"method\":\"GET\",\"path\":\"/api/v2/agents/\",\"status\":307,
    \"headers\":{\"Location\":\"$MOCK2/api/v2/agents/\"},\"times\":1}"
leak_call "redirected to another port" teammates.list '{"cache":"bypass"}'
reqs=$(curl -s "$MOCK2/__mock/requests")
eq "the other port got the request" "$(printf '%s' "$reqs" | jq length)" 1
eq "... without the key" \
    "$(printf '%s' "$reqs" | jq -r '.[0].headers.authorization // "none"')" none
kill "$MOCK2_PID"
wait "$MOCK2_PID" 2>/dev/null
mock_faults_clear

# ---- refused logins ----------------------------------------------------------

leak_call "auth.login, a key the upstream refuses" auth.login \
    "{\"api_key\":\"$BADLOGIN\"}"
jqt "... refused" "$OUT" '.error.code == "m8tes.authentication_error"'
mock_clear
leak_call "auth.login, a key with a control character" auth.login \
    "{\"api_key\":\"$UNSENT\\u0001\"}"
jqt "... refused" "$OUT" '.error.code == "m8tesd.invalid_params"'
eq "... before it was sent anywhere" "$(mock_requests | jq length)" 0
leak_call "auth.login, a key with blanks" auth.login \
    "{\"api_key\":\"$UNSENT and more\"}"
jqt "... refused" "$OUT" '.error.code == "m8tesd.invalid_params"'
leak_call "auth.login, a key too long" auth.login \
    "{\"api_key\":\"$UNSENT$(printf '%05000d' 0)\"}"
jqt "... refused" "$OUT" '.error.code == "m8tesd.invalid_params"'
mock_fault '{"path":"/api/v2/settings/","reset":true,"times":0}'
leak_call "auth.login, upstream unreachable" auth.login "{\"api_key\":\"$BADLOGIN\"}"
jqt "... refused" "$OUT" '.error.code == "m8tesd.upstream_unreachable"'
mock_faults_clear
out=$(printf '%s\n' "$BADLOGIN" | "$BIN/m8tes" --socket "$SOCK" auth login 2>&1)
printf '%s\n' "$out" >>"$T/replies.log"
no_key "m8tes auth login, refused" "$out"
eq "the key in use is still the first" "$(call auth.status | jq -r .result.fingerprint)" \
    "$(printf %s "$KEY" | sha256sum | cut -c1-12)"

# ---- where else the key could linger ---------------------------------------

check "not in the daemon's environment (/proc/PID/environ)" \
    sh -c "! tr '\\0' '\\n' </proc/$DAEMON_PID/environ | grep -qF -- '$KEY'"
check "M8TES_API_KEY's value is wiped in its environment" \
    sh -c "! tr '\\0' '\\n' </proc/$DAEMON_PID/environ | grep -q '^M8TES_API_KEY=.'"
check "not on its command line" \
    sh -c "! tr '\\0' '\\n' </proc/$DAEMON_PID/cmdline | grep -qF -- '$KEY'"
check "not in the cache directory" sh -c "! grep -rqF -- '$KEY' '$T/cache'"
check "not in state.db (no login stored it)" \
    sh -c "! cat '$T'/state/state.db* | grep -qaF -- '$KEY'"
check "no refused login key in state.db" \
    sh -c "! cat '$T'/state/state.db* | grep -qaF -- '$BADLOGIN'"
check_daemon_end

# ---- a daemon whose own key is refused upstream ----------------------------

DAEMON_KEY=$BADENV start_daemon
mock_clear
leak_call "the daemon's key refused (401)" teammates.list
jqt "... an authentication error" "$OUT" '.error.code == "m8tes.authentication_error"'
eq "... after sending that key" "$(last_request | jq -r .headers.authorization)" \
    "Bearer $BADENV"
leak_call "hello with a refused key" daemon.hello
leak_call "auth.status with a refused key" auth.status
out=$(rpc teammates.list 2>&1)
no_key "m8tes with a refused key" "$out"
check_daemon_end

# ---- an upstream that is not there -----------------------------------------

port=$(cat "$T/mock.port")
kill "$MOCK_PID"
wait "$MOCK_PID" 2>/dev/null
MOCK_PID=
start_daemon --base-url "http://127.0.0.1:$port/api/v2"
leak_call "upstream down" teammates.list
jqt "... unreachable" "$OUT" '.error.code == "m8tesd.upstream_unreachable"'
leak_call "upstream down, a stream" runs.create '{"message":"hello"}'
jqt "... unreachable" "$OUT" '.error.code == "m8tesd.upstream_unreachable"'
leak_call "upstream down, a login" auth.login "{\"api_key\":\"$BADLOGIN\"}"
jqt "... unreachable" "$OUT" '.error.code == "m8tesd.upstream_unreachable"'
check_daemon_end
finish
