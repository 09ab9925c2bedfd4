#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The shipped systemd files: systemd-analyze verify on the system and user
# units, systemd-analyze security --offline=true on m8tesd.service (the
# exposure score must be 2.0 or less, and is printed), and the sysusers.d
# and tmpfiles.d snippets applied to a scratch root. Nothing is installed:
# verify checks that ExecStart= is executable, so it runs on copies whose
# ExecStart= names the binary just built; security reads the unit as
# shipped. Skips when systemd-analyze is missing (Debian package systemd).

. "$(dirname "$0")/lib.sh"

SRC=$(cd "$(dirname "$0")/../.." && pwd)
UNITS=$SRC/systemd
MAX_EXPOSURE=2.0

# quiet RC OUTPUT: a tool that exited 0 and printed nothing.
quiet() { [ "$1" -eq 0 ] && [ -z "$2" ]; }

if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "SKIP: systemd-analyze is not installed (Debian package systemd)"
	finish
	exit
fi
echo "# $(systemd-analyze --version | head -n 1)"

# Copies with ExecStart= pointing at the build.
mkdir -p "$T/system" "$T/user" "$T/xdg"
chmod 700 "$T/xdg"
for f in m8tesd.service m8tesd.socket; do
	sed "s#^ExecStart=m8tesd\\b#ExecStart=$BIN/m8tesd#" "$UNITS/$f" >"$T/system/$f"
	sed "s#^ExecStart=m8tesd\\b#ExecStart=$BIN/m8tesd#" "$UNITS/user/$f" >"$T/user/$f"
done
check "m8tesd is built" test -x "$BIN/m8tesd"
check "ExecStart= rewritten" grep -q "^ExecStart=$BIN/m8tesd " "$T/system/m8tesd.service"

# verify: exit status 0 and not a word of complaint.
out=$(systemd-analyze verify --man=no "$T/system/m8tesd.socket" \
    "$T/system/m8tesd.service" 2>&1)
rc=$?
check "verify system units" quiet "$rc" "$out"
[ -n "$out" ] && printf '  %s\n' "$out"
out=$(XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$T/xdg} systemd-analyze --user \
    verify --man=no "$T/user/m8tesd.socket" "$T/user/m8tesd.service" 2>&1)
rc=$?
check "verify user units" quiet "$rc" "$out"
[ -n "$out" ] && printf '  %s\n' "$out"

# security: the shipped unit, offline (no PID 1 needed; systemd >= 250).
if systemd-analyze security --help 2>&1 | grep -q -- '--offline'; then
	out=$(systemd-analyze security --offline=true "$UNITS/m8tesd.service" 2>&1)
	score=$(printf '%s\n' "$out" |
	    sed -n 's/.*Overall exposure level for m8tesd.service: \([0-9.]*\).*/\1/p')
	echo "# systemd-analyze security: exposure $score (at most $MAX_EXPOSURE)"
	printf '%s\n' "$out" | grep '✗' | sed 's/^/#   /'
	check "security: exposure score read" [ -n "$score" ]
	check "security: exposure <= $MAX_EXPOSURE" \
	    awk -v s="${score:-99}" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(s <= m) }'
	uscore=$(XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$T/xdg} systemd-analyze \
	    --user security --offline=true "$UNITS/user/m8tesd.service" 2>&1 |
	    sed -n 's/.*Overall exposure level for m8tesd.service: \([0-9.]*\).*/\1/p')
	echo "# user unit exposure (seccomp only, for information): $uscore"
else
	echo "SKIP: this systemd-analyze has no security --offline (needs systemd 250)"
fi

# The socket outlives the service: no RuntimeDirectory= to remove it, and
# the path is the one clients look for.
check "service has no RuntimeDirectory=" \
    bash -c "! grep -q '^RuntimeDirectory' '$UNITS/m8tesd.service'"
check "socket at /run/m8tes/m8tesd.sock, 0660, group m8tes" \
    bash -c "grep -qx 'ListenStream=/run/m8tes/m8tesd.sock' '$UNITS/m8tesd.socket' &&
	grep -qx 'SocketMode=0660' '$UNITS/m8tesd.socket' &&
	grep -qx 'SocketGroup=m8tes' '$UNITS/m8tesd.socket'"
check "user socket in \$XDG_RUNTIME_DIR/m8tes, 0600" \
    bash -c "grep -qx 'ListenStream=%t/m8tes/m8tesd.sock' '$UNITS/user/m8tesd.socket' &&
	grep -qx 'SocketMode=0600' '$UNITS/user/m8tesd.socket'"

# sysusers.d and tmpfiles.d on a scratch root.
if [ "$(id -u)" != 0 ]; then
	echo "SKIP: sysusers.d and tmpfiles.d checks need root (they chown)"
elif command -v systemd-sysusers >/dev/null && command -v systemd-tmpfiles >/dev/null; then
	mkdir -p "$T/root/etc"
	out=$(systemd-sysusers --root="$T/root" "$UNITS/m8tesd.sysusers" 2>&1)
	check "sysusers: creates user and group m8tes" \
	    bash -c "grep -q '^m8tes:' '$T/root/etc/passwd' && grep -q '^m8tes:' '$T/root/etc/group'"
	out=$(systemd-tmpfiles --root="$T/root" --create "$UNITS/m8tesd.tmpfiles" 2>&1)
	rc=$?
	check "tmpfiles: applies cleanly" quiet "$rc" "$out"
	[ -n "$out" ] && printf '  %s\n' "$out"
	check "tmpfiles: /run/m8tes 0755" [ "$(stat -c %a "$T/root/run/m8tes")" = 755 ]
	check "tmpfiles: /var/lib/m8tes 0700 m8tes" \
	    [ "$(stat -c %a "$T/root/var/lib/m8tes")" = 700 ]
	uid=$(awk -F: '$1 == "m8tes" { print $3 }' "$T/root/etc/passwd")
	check "tmpfiles: /var/lib/m8tes owned by m8tes" \
	    [ "$(stat -c %u "$T/root/var/lib/m8tes")" = "$uid" ]
else
	echo "SKIP: systemd-sysusers or systemd-tmpfiles is missing"
fi

finish
