# SPDX-License-Identifier: MIT
#
# Helpers for tests that talk to m8tesd as other local users: create the
# users and groups, and run clients under their uid and primary gid with
# no supplementary groups (setpriv), so the daemon's SO_PEERCRED sees
# exactly that identity. Source after lib.sh. The users are created once
# and left in place (later runs reuse them).
#
# A PEER is a user name, "UID:GID" for an identity with no name, or
# "self" for the test's own identity (no setpriv: works without root).

# need_root: skips the whole script (passing) unless it runs as root.
need_root() {
	if [ "$(id -u)" != 0 ]; then
		echo "SKIP: needs root (to create test users and run clients as them)"
		finish
		exit 0
	fi
	for tool in useradd groupadd setpriv; do
		command -v "$tool" >/dev/null 2>&1 && continue
		echo "SKIP: $tool is missing"
		finish
		exit 0
	done
}

# retry COMMAND...: runs COMMAND up to 20 times while it fails (useradd
# and groupadd fail while another process holds /etc/passwd's lock).
retry() {
	local _
	for _ in $(seq 20); do
		"$@" 2>/dev/null && return 0
		sleep 0.1
	done
	"$@"
}

# ensure_group NAME: the group exists.
ensure_group() {
	getent group "$1" >/dev/null && return 0
	retry groupadd "$1" || getent group "$1" >/dev/null
}

# ensure_user NAME [GROUP]: the user exists, GROUP its primary group (when
# given; else a group of its own name). No home directory, no login shell.
ensure_user() {
	local name=$1 group=${2:-}
	if ! getent passwd "$name" >/dev/null; then
		if [ -n "$group" ]; then
			ensure_group "$group"
			retry useradd -M -N -g "$group" -s /usr/sbin/nologin "$name" ||
			    getent passwd "$name" >/dev/null || return 1
		else
			retry useradd -M -U -s /usr/sbin/nologin "$name" ||
			    getent passwd "$name" >/dev/null || return 1
		fi
	fi
	if [ -n "$group" ] && [ "$(id -gn "$name")" != "$group" ]; then
		retry usermod -g "$group" "$name"
	fi
}

# peer_uid PEER, peer_gid PEER: the uid and primary gid of a peer.
peer_uid() {
	case $1 in self) id -u ;; *:*) echo "${1%%:*}" ;; *) id -u "$1" ;; esac
}
peer_gid() {
	case $1 in self) id -g ;; *:*) echo "${1##*:}" ;; *) id -g "$1" ;; esac
}

# as PEER COMMAND...: runs COMMAND as PEER (its uid and primary gid, no
# supplementary groups, environment kept).
as() {
	local p=$1
	shift
	if [ "$p" = self ]; then
		"$@"
		return
	fi
	setpriv --reuid="$(peer_uid "$p")" --regid="$(peer_gid "$p")" \
	    --clear-groups -- "$@"
}

# as_raw PEER LINE...: raw as PEER, on one connection; every reply line is
# printed and appended to $T/replies.log.
as_raw() {
	local p=$1
	shift
	printf '%s\n' "$@" | as "$p" socat -t "${RAW_WAIT:-10}" - \
	    UNIX-CONNECT:"$SOCK" | tee -a "$T/replies.log"
}

# as_refused PEER: connects as PEER, sends nothing and prints what the
# daemon says before it closes (at most 5 s of silence).
as_refused() {
	as "$1" socat -T 5 -u UNIX-CONNECT:"$SOCK" - | tee -a "$T/replies.log"
}

# as_call PEER METHOD [PARAMS_JSON [ID]]: call as PEER; the final line.
as_call() {
	local p=$1 line
	shift
	line=$(req_line "$@") || { echo '{"error":"bad test params"}'; return 0; }
	as_raw "$p" "$line" | tail -n 1
}

# as_m8tes PEER ARGS...: the m8tes client as PEER on $SOCK (--json); its
# output and error output are also appended to $T/replies.log. The exit
# status is the client's.
as_m8tes() {
	local p=$1
	shift
	logged as "$p" "$BIN/m8tes" --socket "$SOCK" --json "$@"
}

# Connections held open: conn_open NAME PEER starts socat as PEER on $SOCK
# with its input from a FIFO the test holds open (CONN_FD[NAME]) and its
# output in $T/conn.NAME.out. conn_send NAME LINE writes a request;
# conn_wait NAME FILTER waits (10 s at most) until a reply line satisfies
# the jq filter; conn_close NAME ends it and waits for socat.
declare -A CONN_FD CONN_PID
conn_open() {
	local name=$1 p=$2 fd
	rm -f "$T/conn.$name.in" "$T/conn.$name.out"
	mkfifo "$T/conn.$name.in"
	: >"$T/conn.$name.out"
	chmod 644 "$T/conn.$name.out"
	# The other connections' FIFOs are closed in the child: a copy of
	# their write ends would keep them from ever seeing the end.
	(
		for fd in "${CONN_FD[@]}"; do exec {fd}>&-; done
		as "$p" socat -t 1 - UNIX-CONNECT:"$SOCK"
	) <"$T/conn.$name.in" >>"$T/conn.$name.out" 2>&1 &
	CONN_PID[$name]=$!
	exec {fd}>"$T/conn.$name.in"
	CONN_FD[$name]=$fd
}
conn_send() { printf '%s\n' "$2" >&"${CONN_FD[$1]}"; }
conn_lines() { cat "$T/conn.$1.out"; }
conn_has() { jq -e "select($2)" "$T/conn.$1.out" 2>/dev/null | grep -q .; }
conn_wait() { wait_for 10 conn_has "$1" "$2"; }
conn_close() {
	local fd=${CONN_FD[$1]}
	exec {fd}>&-
	wait "${CONN_PID[$1]}" 2>/dev/null
	cat "$T/conn.$1.out" >>"$T/replies.log"
	unset "CONN_FD[$1]" "CONN_PID[$1]"
}
# conn_alive NAME: its socat still runs (the daemon has not closed it).
conn_alive() { kill -0 "${CONN_PID[$1]}" 2>/dev/null; }
