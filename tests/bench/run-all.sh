#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Runs every benchmark (tests/bench/bench_*.sh) against the binaries in the
# given directory (an optimised build without sanitizers: `make bench`).
set -euo pipefail
bin=$(cd "${1:-build-bench/bin}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
for b in "$here"/bench_*.sh; do
	echo "== $(basename "$b" .sh)"
	BIN=$bin bash "$b"
done
