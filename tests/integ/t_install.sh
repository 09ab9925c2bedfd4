#!/bin/bash
# SPDX-License-Identifier: MIT
#
# `cmake --install` of the build that made $BIN: exactly the binaries
# (sbin/m8tesd, bin/m8tes), the system and user units, the sysusers.d and
# tmpfiles.d snippets, the example configuration and the three manual
# pages, in the usual places below the prefix, with the usual modes, each
# file identical to its source; the same below DESTDIR. The installed
# daemon runs with the installed example configuration, and the installed
# client talks to it; the manual pages render without a warning.

. "$(dirname "$0")/lib.sh"

SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(dirname "$BIN")
if [ ! -f "$BUILD/cmake_install.cmake" ]; then
	echo "SKIP: $BUILD is not a CMake build directory"
	finish
	exit 0
fi

WANT="644 lib/systemd/system/m8tesd.service
644 lib/systemd/system/m8tesd.socket
644 lib/systemd/user/m8tesd.service
644 lib/systemd/user/m8tesd.socket
644 lib/sysusers.d/m8tesd.conf
644 lib/tmpfiles.d/m8tesd.conf
644 share/doc/m8tesd/m8tesd.conf.example
644 share/man/man1/m8tes.1
644 share/man/man5/m8tesd.conf.5
644 share/man/man8/m8tesd.8
755 bin/m8tes
755 sbin/m8tesd"

# listing DIR: "MODE PATH" of every file and link below DIR, sorted.
listing() {
	(cd "$1" && find . \( -type f -o -type l \) -printf '%m %P\n' | LC_ALL=C sort)
}

out=$(umask 022 && cmake --install "$BUILD" --prefix "$T/inst" 2>&1)
eq "cmake --install --prefix exits 0" "$?" 0
eq "installed: exactly these files, with these modes" \
    "$(listing "$T/inst")" "$(printf '%s\n' "$WANT" | LC_ALL=C sort)"

# same INSTALLED SOURCE: the installed file is the source file.
same() { check "$1 is $2" cmp -s "$T/inst/$1" "$SRC/$2"; }
same lib/systemd/system/m8tesd.service systemd/m8tesd.service
same lib/systemd/system/m8tesd.socket systemd/m8tesd.socket
same lib/systemd/user/m8tesd.service systemd/user/m8tesd.service
same lib/systemd/user/m8tesd.socket systemd/user/m8tesd.socket
same lib/sysusers.d/m8tesd.conf systemd/m8tesd.sysusers
same lib/tmpfiles.d/m8tesd.conf systemd/m8tesd.tmpfiles
same share/doc/m8tesd/m8tesd.conf.example systemd/m8tesd.conf.example
same share/man/man1/m8tes.1 man/m8tes.1
same share/man/man5/m8tesd.conf.5 man/m8tesd.conf.5
same share/man/man8/m8tesd.8 man/m8tesd.8
same sbin/m8tesd "$(realpath --relative-to="$SRC" "$BIN/m8tesd")"
same bin/m8tes "$(realpath --relative-to="$SRC" "$BIN/m8tes")"

for u in system/m8tesd.service user/m8tesd.service; do
	check "$u starts m8tesd by name (found in either sbin)" \
	    grep -qE '^ExecStart=m8tesd( |$)' "$T/inst/lib/systemd/$u"
done

if command -v man >/dev/null 2>&1 && command -v groff >/dev/null 2>&1; then
	for p in man1/m8tes.1 man5/m8tesd.conf.5 man8/m8tesd.8; do
		w=$(MANWIDTH=80 man --warnings -l "$T/inst/share/man/$p" 2>&1 >/dev/null)
		eq "man $p renders without a warning" "$w" ""
	done
else
	echo "SKIP: man or groff is missing (manual page rendering)"
fi

out=$(umask 022 && DESTDIR=$T/dest cmake --install "$BUILD" --prefix /usr 2>&1)
eq "DESTDIR=... cmake --install --prefix /usr exits 0" "$?" 0
eq "DESTDIR: the same files below DESTDIR/usr" "$(listing "$T/dest")" \
    "$(printf '%s\n' "$WANT" | sed 's# # usr/#' | LC_ALL=C sort)"

# The installed programs work together.
eq "installed m8tesd --version" "$("$T/inst/sbin/m8tesd" --version)" \
    "$("$BIN/m8tesd" --version)"
start_mock
M8TES_API_KEY=$KEY "$T/inst/sbin/m8tesd" \
    --config "$T/inst/share/doc/m8tesd/m8tesd.conf.example" \
    --socket "$SOCK" --base-url "$MOCK_URL" --state-dir "$T/state" \
    --cache-dir "$T/cache" >>"$T/daemon.log" 2>&1 &
DAEMON_PID=$!
up() { [ "$(call daemon.ping)" = '{"id":1,"result":{"pong":true}}' ]; }
check "the installed m8tesd starts with the example configuration" wait_for 10 up
out=$("$T/inst/bin/m8tes" --socket "$SOCK" --json teammates list)
echo "$out" >>"$T/replies.log"
eq "the installed m8tes lists teammates through it" "$out" \
    '{"data":[],"has_more":false,"next_starting_after":null}'

check_daemon_end
finish
