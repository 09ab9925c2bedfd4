#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The API key: `m8tes auth login` (from stdin, and from a terminal without
# echo) hands a key to the daemon, which validates it upstream (GET
# /settings/ with the new key), stores it 0600 in the state directory and
# switches to it at once: the Authorization header at the mock changes,
# connections and a live stream opened before stay up. A wrong key (401),
# an unreachable upstream or a malformed key is refused and the old key
# kept. `m8tes auth status` shows only the fingerprint (the first 12 hex
# digits of SHA-256 of the key); `m8tes auth logout` forgets it. Across
# restarts: --api-key-file, then $CREDENTIALS_DIRECTORY/m8tes-api-key, then
# the stored login, then $M8TES_API_KEY.

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_peers.sh"

OLD=m8_old_revoked_key_0000000000
BAD=m8_wrong_key_1111111111
FILEKEY=m8_file_key_2222222222
CREDKEY=m8_credential_key_3333333333
TEST_KEYS="$OLD $BAD $FILEKEY $CREDKEY"
fp() { printf %s "$1" | sha256sum | cut -c1-12; }
status_is() { # status_is SOURCE KEY: the exact auth.status result
	printf '{"id":1,"result":{"key_set":true,"fingerprint":"%s","source":"%s"}}' \
	    "$(fp "$2")" "$1"
}
# login KEY: `m8tes auth login` with KEY on its standard input; the
# output (and error output) in $T/login.out, the exit status in LOGIN_RC.
login() {
	printf '%s\n' "$1" | "$BIN/m8tes" --socket "$SOCK" --json auth login \
	    >"$T/login.out" 2>&1
	LOGIN_RC=$?
	cat "$T/login.out" >>"$T/replies.log"
}
auth_header() { last_request | jq -r .headers.authorization; }

start_mock
DAEMON_KEY=$OLD start_daemon
PID0=$DAEMON_PID

# ---- a revoked key, replaced at run time ----------------------------------

eq "status: the key from the environment" "$(call auth.status)" \
    "$(status_is env "$OLD")"
mock_clear
jqt "the old key is refused upstream" "$(call teammates.list)" \
    '.error.code == "m8tes.authentication_error" and .error.status == 401'
eq "... and was the one sent" "$(auth_header)" "Bearer $OLD"

conn_open keep self
conn_send keep '{"id":1,"method":"daemon.ping"}'
check "a connection opened before the login" conn_wait keep '.id == 1'

mock_clear
login "$KEY"
eq "m8tes auth login exits 0" "$LOGIN_RC" 0
jeq "it prints the new fingerprint" "$(cat "$T/login.out")" \
    "{\"fingerprint\":\"$(fp "$KEY")\",\"stored\":true}"
wire "the key is validated upstream with itself" GET /settings/ "" ""
eq "status: the login" "$(call auth.status)" "$(status_is login "$KEY")"

mock_clear
conn_send keep '{"id":2,"method":"teammates.list"}'
check "the connection opened before the login now gets answers" \
    conn_wait keep '.id == 2 and .result.data'
eq "... sent with the new key" "$(auth_header)" "Bearer $KEY"
check "... on the same connection" conn_alive keep
eq "no restart: the same daemon process" "$DAEMON_PID" "$PID0"
check "the daemon is alive" daemon_alive
jqt "hello shows the new fingerprint" "$(call daemon.hello)" \
    ".result.key_fingerprint == \"$(fp "$KEY")\""

eq "state directory 0700" "$(stat -c %a "$T/state")" 700
for f in "$T"/state/state.db*; do
	eq "$(basename "$f") is 0600" "$(stat -c %a "$f")" 600
done
if command -v python3 >/dev/null 2>&1; then
	stored=$(python3 -c 'import sqlite3, sys
db = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
print(db.execute("SELECT key FROM api_key").fetchone()[0])' "$T/state/state.db")
	check "the key is stored in state.db" [ "$stored" = "$KEY" ]
fi

# ---- refused keys: the old one stays --------------------------------------

# A live stream keeps going through refused logins.
conn_send keep "$(req_line runs.create '{"message":"[slow:100] [long:12] hello"}' 3)"
check "a stream is under way" conn_wait keep '.id == 3 and .seq == 2'

mock_clear
login "$BAD"
eq "a wrong key: m8tes exits 4" "$LOGIN_RC" 4
eq "... with the upstream's reason" "$(cat "$T/login.out")" \
    "m8tes: Invalid API key. (m8tes.authentication_error, status 401)"
eq "... after asking upstream with that key" \
    "$(mock_requests | jq -c '[.[] | [.method, .path, .headers.authorization]]')" \
    "[[\"GET\",\"/api/v2/settings/\",\"Bearer $BAD\"]]"
eq "the old key is kept" "$(call auth.status)" "$(status_is login "$KEY")"
mock_clear
jqt "and used" "$(call teammates.list '{"cache":"bypass"}')" '.result.data'
eq "... on the wire" "$(auth_header)" "Bearer $KEY"

mock_fault '{"path":"/api/v2/settings/","reset":true,"times":0}'
mock_clear
login "$FILEKEY"
eq "upstream unreachable: m8tes exits 69" "$LOGIN_RC" 69
check "... saying so" grep -q 'm8tesd.upstream_unreachable' "$T/login.out"
jqt "... after the usual 3 attempts with the new key" "$(mock_requests)" \
    "length == 3 and all(.[]; .headers.authorization == \"Bearer $FILEKEY\")"
mock_faults_clear
eq "the old key is kept" "$(call auth.status)" "$(status_is login "$KEY")"

mock_clear
login "m8 with blanks"
eq "a key with blanks: m8tes exits 2" "$LOGIN_RC" 2
eq "... refused by the daemon" "$(cat "$T/login.out")" \
    'm8tes: "api_key" must be 1 to 4096 printable characters without blanks (m8tesd.invalid_params)'
login ""
eq "no key at all: m8tes exits 2" "$LOGIN_RC" 2
eq "... saying so" "$(cat "$T/login.out")" "m8tes: no key given"
jeq "a key of the wrong type" "$(call auth.login '{"api_key":42}')" \
    '{"id":1,"error":{"code":"m8tesd.invalid_params","message":"parameter \"api_key\" must be a string","retryable":false}}'
eq "nothing was sent upstream for them" "$(mock_requests | jq length)" 0
eq "the old key is kept" "$(call auth.status)" "$(status_is login "$KEY")"

check "the stream ends" wait_for 20 conn_has keep '.id == 3 and .result'
stream=$(jq -cs '[.[] | select(.id == 3)]' "$T/conn.keep.out")
jqt "... completed, every event once, in order" "$stream" \
    '(.[-1].result | .finished == true and .status == "completed") and
     ([.[] | select(.seq) | .seq] as $s | $s == [range(1; ($s | length) + 1)])'
check "the connection is still up" conn_alive keep
conn_close keep

# ---- restarts: what is stored, and what wins ------------------------------

stop_daemon
DAEMON_KEY='' start_daemon
eq "restart without a key: the stored login" "$(call auth.status)" \
    "$(status_is login "$KEY")"
mock_clear
call teammates.list '{"cache":"bypass"}' >/dev/null
eq "... is used" "$(auth_header)" "Bearer $KEY"

stop_daemon
DAEMON_KEY=$OLD start_daemon
eq "restart with \$M8TES_API_KEY: the stored login wins" \
    "$(call auth.status)" "$(status_is login "$KEY")"

stop_daemon
mkdir -p "$T/creds"
printf '%s\n' "$CREDKEY" >"$T/creds/m8tes-api-key"
CREDENTIALS_DIRECTORY=$T/creds DAEMON_KEY=$OLD start_daemon
eq "a systemd credential wins over the stored login" "$(call auth.status)" \
    "$(status_is credentials "$CREDKEY")"
mock_clear
call teammates.list '{"cache":"bypass"}' >/dev/null
eq "... and is used" "$(auth_header)" "Bearer $CREDKEY"

stop_daemon
install -m 0600 /dev/null "$T/keyfile"
printf '%s\n' "$FILEKEY" >"$T/keyfile"
CREDENTIALS_DIRECTORY=$T/creds DAEMON_KEY=$OLD start_daemon \
    --api-key-file "$T/keyfile"
eq "--api-key-file wins over everything" "$(call auth.status)" \
    "$(status_is file "$FILEKEY")"
mock_clear
call teammates.list '{"cache":"bypass"}' >/dev/null
eq "... and is used" "$(auth_header)" "Bearer $FILEKEY"
stop_daemon

# ---- logout ---------------------------------------------------------------

DAEMON_KEY='' start_daemon
out=$("$BIN/m8tes" --socket "$SOCK" --json auth logout)
eq "m8tes auth logout" "$out" '{"logged_out":true}'
echo "$out" >>"$T/replies.log"
eq "status: no key" "$(call auth.status)" \
    '{"id":1,"result":{"key_set":false,"fingerprint":null,"source":"none"}}'
jqt "hello: no fingerprint" "$(call daemon.hello)" '.result.key_fingerprint == null'
mock_clear
jeq "calls fail without a key" "$(call teammates.list)" \
    '{"id":1,"error":{"code":"m8tesd.no_api_key","message":"the daemon has no API key (see m8tes auth login)","retryable":false}}'
eq "... before anything is sent" "$(mock_requests | jq length)" 0
stop_daemon
DAEMON_KEY='' start_daemon
eq "after a restart the stored key is still gone" "$(call auth.status)" \
    '{"id":1,"result":{"key_set":false,"fingerprint":null,"source":"none"}}'

# ---- from a terminal: no echo ---------------------------------------------

if command -v python3 >/dev/null 2>&1; then
	mock_clear
	out=$(python3 - "$BIN/m8tes" "$SOCK" "$KEY" <<'EOF'
import json, os, pty, select, sys, termios, time

m8tes, sock, key = sys.argv[1:4]

def run(args, answer=None):
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(m8tes, [m8tes, "--socket", sock] + args)
    out, echo_off, end = b"", None, time.time() + 20
    while time.time() < end:
        if answer is not None and out.endswith(b"API key: "):
            # The prompt comes first, then echo goes off: wait for it.
            off_by = time.time() + 10
            while (termios.tcgetattr(fd)[3] & termios.ECHO and
                   time.time() < off_by):
                time.sleep(0.02)
            echo_off = not termios.tcgetattr(fd)[3] & termios.ECHO
            os.write(fd, answer.encode() + b"\n")
            answer = None
        r, _, _ = select.select([fd], [], [], 0.5)
        if not r:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    _, st = os.waitpid(pid, 0)
    return out.decode(errors="replace"), os.waitstatus_to_exitcode(st), echo_off

login, rc, echo_off = run(["auth", "login"], key)
status, src, _ = run(["auth", "status"])
print(json.dumps({"login": login, "rc": rc, "echo_off": echo_off,
                  "status": status, "status_rc": src}))
EOF
)
	printf '%s\n' "$out" >>"$T/replies.log"
	jqt "terminal: m8tes auth login prompts, reads without echo, exits 0" \
	    "$out" '.rc == 0 and .echo_off == true and (.login | startswith("API key: "))'
	jqt "terminal: the key is not echoed; the fingerprint is printed" "$out" \
	    "(.login | contains(\"$KEY\") | not) and
	     (.login | contains(\"logged in; key fingerprint $(fp "$KEY")\"))"
	wire "terminal login validated upstream" GET /settings/ "" ""
	jqt "terminal: m8tes auth status shows the source and fingerprint only" \
	    "$out" ".status_rc == 0 and (.status | gsub(\"\\r\"; \"\")) ==
	        \"source:      login\\nfingerprint: $(fp "$KEY")\\n\""
else
	echo "SKIP: python3 is missing (terminal login)"
fi

check_daemon_end
finish
