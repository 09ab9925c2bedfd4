# SPDX-License-Identifier: MIT
#
# Helpers for the streaming tests (t_streams*.sh), on top of lib.sh: a
# small subscriber client that sends request lines on one connection and
# writes every reply line to a file as it arrives (so a test can wait for
# an event), stops at a given seq, or holds off reading to play a stalled
# reader; checks on the event lines it saved; and a runner that puts a
# command on a terminal of its own and answers its prompts (ptyrun).

cat >"$T/sub.py" <<'EOF'
import json, os, socket, sys, time

# sub.py SOCK OUT [--stop-seq K] [--hold FILE] [--timeout S] LINE...
# Sends the LINEs, then writes each reply line to OUT until every request
# with an id has its final line (result, error or lagged). --stop-seq K
# closes the connection right after the line with seq K; --hold FILE does
# not read a byte until FILE exists. Exit 0, or 2 on timeout.
args = sys.argv[1:]
path, out = args[0], args[1]
args = args[2:]
stop = hold = None
timeout = 30.0
while args and args[0].startswith("--"):
    opt, val = args[0], args[1]
    args = args[2:]
    if opt == "--stop-seq":
        stop = int(val)
    elif opt == "--hold":
        hold = val
    elif opt == "--timeout":
        timeout = float(val)
ids = set()
for line in args:
    req = json.loads(line)
    if "id" in req:
        ids.add(json.dumps(req["id"]))
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(path)
s.sendall("".join(l + "\n" for l in args).encode())
end = time.time() + timeout
if hold is not None:
    while not os.path.exists(hold):
        if time.time() > end:
            sys.exit(2)
        time.sleep(0.02)
f = open(out, "w")
buf = b""
s.settimeout(0.5)
while ids:
    if time.time() > end:
        sys.exit(2)
    try:
        data = s.recv(65536)
    except socket.timeout:
        continue
    if not data:
        break
    buf += data
    while b"\n" in buf:
        line, buf = buf.split(b"\n", 1)
        f.write(line.decode() + "\n")
        if b'"event":' in line and stop is None:
            continue
        msg = json.loads(line)
        if stop is not None and msg.get("seq") == stop:
            f.flush()
            sys.exit(0)
        if "event" not in msg:
            ids.discard(json.dumps(msg.get("id")))
    f.flush()
f.close()
sys.exit(0 if not ids else 1)
EOF

declare -A SUB_PID

# sub_start NAME [--stop-seq K|--hold FILE|--timeout S]... LINE...: starts a
# subscriber in the background; its reply lines go to $T/NAME.out.
sub_start() {
	local name=$1
	shift
	: >"$T/$name.out"
	python3 "$T/sub.py" "$SOCK" "$T/$name.out" "$@" &
	SUB_PID[$name]=$!
}

# sub_wait NAME: waits for the subscriber to end; its exit status.
sub_wait() {
	wait "${SUB_PID[$1]}"
}

# stream LINE...: one connection in the foreground; prints every reply line.
stream() {
	python3 "$T/sub.py" "$SOCK" "$T/stream.tmp" "$@"
	cat "$T/stream.tmp"
}

# has NAME PATTERN: the subscriber's output has a line matching PATTERN.
has() { grep -q -- "$2" "$T/$1.out"; }

# wait_line NAME PATTERN: waits up to 20 s for such a line.
wait_line() { wait_for 20 has "$1" "$2"; }

# seqs: the seq of every event line on stdin, comma-separated.
seqs() { jq -r 'select(.event) | .seq' | paste -sd, -; }

# seq_range A B: "A,A+1,...,B" (empty when B < A).
seq_range() { [ "$2" -ge "$1" ] && seq -s, "$1" "$2"; }

# types: the event types on stdin, comma-separated.
types() { jq -r 'select(.event) | .event.type' | paste -sd, -; }

# events: the event lines on stdin as "seq event" pairs without the id, so
# two subscribers' streams compare equal.
events() { jq -c 'select(.event) | [.seq, .event]'; }

# final: the last line on stdin without its id.
final() { tail -n 1 | jq -c 'del(.id)'; }

# run_of: the run id of the first metadata event on stdin.
run_of() {
	jq -r 'select(.event.type == "metadata") | .event.payload.run_id' |
	    head -n 1
}

# stats_of KEY: a daemon.stats counter of the streams section.
stats_of() { daemon_stats | jq -r ".streams.$1"; }

# wire_list: the recorded upstream requests since the last mock_clear, as
# "METHOD PATH" lines joined by commas.
wire_list() {
	mock_requests | jq -r '[.[] | "\(.method) \(.path)"] | join(",")'
}

# rss_kb PID: resident set size in KiB.
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

cat >"$T/ptyrun.py" <<'EOF2'
import os, pty, select, sys, time

# ptyrun.py OUT [--expect TEXT | --send TEXT]... -- CMD...
# Runs CMD on a new terminal; waits for each TEXT to --expect in its output
# before the next --send (C escapes allowed, e.g. "y\n", "\x04"); saves
# the whole output to OUT; exits with CMD's status.
args = sys.argv[1:]
out = args.pop(0)
steps = []
while args and args[0] != "--":
    kind, val = args[0], args[1]
    args = args[2:]
    if kind == "--send":
        val = val.encode().decode("unicode_escape")
    steps.append((kind, val.encode()))
args.pop(0)
pid, fd = pty.fork()
if pid == 0:
    os.execvp(args[0], args)
buf = b""
end = time.time() + 30

def more(wait):
    global buf
    r, _, _ = select.select([fd], [], [], wait)
    if not r:
        return True
    try:
        data = os.read(fd, 65536)
    except OSError:
        return False
    buf += data
    return len(data) > 0

pos = 0
for kind, val in steps:
    if kind == "--send":
        os.write(fd, val)
        continue
    while buf.find(val, pos) < 0 and time.time() < end and more(0.2):
        pass
    if buf.find(val, pos) >= 0:
        pos = buf.find(val, pos) + len(val)
while time.time() < end and more(0.5):
    pass
_, st = os.waitpid(pid, 0)
open(out, "wb").write(buf)
sys.exit(os.waitstatus_to_exitcode(st))
EOF2

# on_pty OUT [--expect TEXT|--send TEXT]... -- CMD...: CMD on a terminal.
on_pty() { python3 "$T/ptyrun.py" "$@"; }

# crlf FILE: the terminal's output with its CRs removed.
crlf() { tr -d '\r' <"$1"; }
