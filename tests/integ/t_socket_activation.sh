#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Socket activation without PID 1: systemd-socket-activate creates the
# control socket, waits for the first connection and starts m8tesd with
# the socket as fd 3 (LISTEN_FDS=1, LISTEN_FDNAMES=control), as
# m8tesd.socket does under systemd. The daemon must serve on that socket
# (ping, hello, an upstream call through the real client, several
# connections) and must not bind a socket of its own.

. "$(dirname "$0")/lib.sh"

if ! command -v systemd-socket-activate >/dev/null 2>&1; then
	echo "SKIP: systemd-socket-activate is not installed (Debian package systemd)"
	finish
	exit
fi

start_mock
rm -f "$SOCK"
# The activator passes no environment but LISTEN_*: name what m8tesd needs.
systemd-socket-activate -l "$SOCK" --fdname=control \
    -E M8TES_API_KEY="$KEY" \
    "$BIN/m8tesd" --base-url "$MOCK_URL" --socket "$T/own.sock" \
    --state-dir "$T/state" --cache-dir "$T/cache" --retry-backoff 0.05 \
    --log-level debug >>"$T/daemon.log" 2>&1 &
DAEMON_PID=$!
wait_for 10 test -S "$SOCK" || { echo "activator did not listen"; cat "$T/daemon.log"; exit 1; }

# The first connection starts the daemon; the call waits for it.
out=$(rpc daemon.ping)
jqt "daemon.ping through the inherited socket" "$out" '.pong == true'

out=$(rpc daemon.hello)
jqt "daemon.hello: protocol and daemon" "$out" \
    '.protocol == 1 and .daemon == "m8tesd" and (.version | type == "string")'
jqt "daemon.hello: the peer is us" "$out" \
    ".peer.uid == $(id -u) and .peer.gid == $(id -g) and (.peer.pid > 0)"

out=$(raw '{"id":"a","method":"daemon.ping"}' '{"id":"b","method":"daemon.hello"}')
jqt "two calls on one raw connection" "$(printf '%s\n' "$out" | jq -cs .)" \
    'length == 2 and (map(.id) | sort) == ["a", "b"]'

out=$(rpc teammates.list)
jqt "an upstream call: the key reached the daemon" "$out" \
    '.data | type == "array"'

for i in 1 2 3 4 5; do
	rpc daemon.ping >/dev/null || break
done
check "five more connections" [ "$i" = 5 ]

check "the daemon bound no socket of its own" test ! -e "$T/own.sock"
check "the daemon is the activated process" \
    grep -q "Execing $BIN/m8tesd" "$T/daemon.log"

kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID"
rc=$?
DAEMON_PID=
check "SIGTERM: clean exit" [ "$rc" -eq 0 ]

finish
