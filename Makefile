# Two commands on a fresh Debian 12 machine: `make run` and `make test`.
# CMake does the building; this file installs the Debian packages it needs,
# configures the build directory and runs things.

BUILD     ?= build
SANITIZE  ?= address,undefined
BUILDTYPE ?= Debug
CMAKEFLAGS ?=
JOBS      ?= $(shell nproc 2>/dev/null || echo 2)

DEBS = build-essential cmake pkg-config libmicrohttpd-dev \
       libcurl4-openssl-dev libcjson-dev libsodium-dev libsqlite3-dev \
       libsystemd-dev systemd curl socat jq openssl python3 sqlite3 \
       man-db groff-base
PCMODS = libmicrohttpd libcurl libcjson libsodium sqlite3 libsystemd
# Programs the tests run (python3: pseudo-terminals and many connections).
TOOLS = cmake socat jq curl openssl python3 sqlite3 man groff \
       systemd-analyze systemd-socket-activate

.PHONY: all deps build run test bench fuzz clean format

all: build

deps:
	@missing=; for t in $(TOOLS); do command -v $$t >/dev/null || missing=1; done; \
	if ! pkg-config --exists $(PCMODS) 2>/dev/null || [ -n "$$missing" ]; then \
		if [ "$$(id -u)" != 0 ]; then \
			echo "missing build dependencies; as root run: apt-get install $(DEBS)" >&2; \
			exit 1; \
		fi; \
		apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEBS); \
	fi

$(BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILDTYPE) \
	    -DM8TESD_SANITIZE=$(SANITIZE) $(CMAKEFLAGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

run: build
	@tests/run-demo.sh $(BUILD)/bin

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

bench: deps
	$(MAKE) BUILD=build-bench SANITIZE= BUILDTYPE=Release build
	tests/bench/run-all.sh build-bench/bin

clean:
	rm -rf $(BUILD) build-bench

format:
	clang-format -i daemon/*.[ch] proto/*.[ch] client/*.[ch] tests/*/*.[ch]
