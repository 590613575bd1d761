#!/usr/bin/env bash
# Install what p2praft needs to build and test on Debian 12 (bookworm).
#
# Idempotent: run it as often as you like. It needs root, or sudo.
# It enables bookworm-backports beside the machine's existing Debian apt
# source (reusing that source's URIs and keyring, so no mirror is named
# here), installs libraft-dev 0.22.x from backports, and the other
# packages from the main suite: libuv1-dev and libssl-dev for the library;
# libjansson-dev and libmicrohttpd-dev for the CLI (JSON output, the
# metrics endpoint); libmsgpack-dev (msgpack-c, which only the unit tests
# link, as an independent decoder of our msgpack output) and valgrind for
# the tests; systemd for `systemd-analyze verify` of the shipped unit file
# (test_ops.c skips that check without it); xxd, which
# interop/go/snapshot/run.sh dumps differing snapshots with; strace for the
# host bench's system calls per round trip (bench/host).
#
# Usage: scripts/install-deps.sh [--fuzz] [--go] [--faults] [--node]
#   --fuzz    also install clang (libFuzzer), for `make fuzz`
#   --go      install Go from bookworm-backports when no `go` is on PATH; the
#             tests' go-libp2p peer then fetches the Go toolchain its go.mod
#             names through the Go module proxy (GOTOOLCHAIN=auto)
#   --faults  what `make faults` needs: iproute2 (ip netns, veth links),
#             util-linux and mount (flock, mountpoint, tmpfs), and Go (--go)
#             for its porcupine checker
#   --node    check for what `make interop` runs js-libp2p with: Node.js 20
#             or later and npm on PATH. Debian 12 ships Node.js 18 only, so
#             this installs nothing: it fails, saying so, without them.
set -euo pipefail

want_fuzz=0
want_go=0
want_faults=0
want_node=0
for a in "$@"; do
    case "$a" in
        --fuzz) want_fuzz=1 ;;
        --go) want_go=1 ;;
        --faults) want_faults=1; want_go=1 ;;
        --node) want_node=1 ;;
        *) echo "install-deps: unknown argument: $a" >&2; exit 2 ;;
    esac
done

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install-deps: run as root, or install sudo" >&2
        exit 1
    fi
fi

if [ ! -r /etc/debian_version ]; then
    echo "install-deps: this script supports Debian 12 only" >&2
    exit 1
fi

BP_FILE=/etc/apt/sources.list.d/p2praft-backports.sources

# Find the URIs and keyring of the main Debian archive source, in either
# deb822 (.sources) or one-line (.list) format.
find_debian_source() {
    local f uri key
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        [ "$f" = "$BP_FILE" ] && continue
        # First stanza whose Suites include "bookworm" (not -security).
        uri=$(awk 'BEGIN{RS=""} /Suites:[^\n]*bookworm( |$|\n|-updates)/ && !/bookworm-security/ {
                 if (match($0, /URIs:[^\n]*/)) { print substr($0, RSTART+6, RLENGTH-6); exit } }' "$f")
        key=$(awk 'BEGIN{RS=""} /Suites:[^\n]*bookworm( |$|\n|-updates)/ && !/bookworm-security/ {
                 if (match($0, /Signed-By:[^\n]*/)) { print substr($0, RSTART+11, RLENGTH-11); exit } }' "$f")
        if [ -n "$uri" ]; then
            echo "$uri|$key"
            return 0
        fi
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -r "$f" ] || continue
        uri=$(awk '$1=="deb" && $0 ~ / bookworm / { for (i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' "$f" | head -n1)
        if [ -n "$uri" ]; then
            echo "$uri|"
            return 0
        fi
    done
    return 1
}

enable_backports() {
    if grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null; then
        return 0
    fi
    local src uri key
    if ! src=$(find_debian_source); then
        echo "install-deps: no Debian bookworm apt source found to extend" >&2
        exit 1
    fi
    uri=${src%%|*}
    key=${src#*|}
    [ -n "$key" ] || key=/usr/share/keyrings/debian-archive-keyring.gpg
    echo "install-deps: enabling bookworm-backports from $uri"
    $SUDO tee "$BP_FILE" >/dev/null <<EOT
Types: deb
URIs: $uri
Suites: bookworm-backports
Components: main
Signed-By: $key
EOT
    NEED_UPDATE=1
}

have_pkg() {
    dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | grep -q "install ok installed"
}

raft_ok() {
    local v
    v=$(pkg-config --modversion raft 2>/dev/null || true)
    case "$v" in
        0.2[2-9]*|0.[3-9]*|[1-9]*) return 0 ;;
    esac
    return 1
}

NEED_UPDATE=0
enable_backports

# The library, the CLI (jansson: --json; libmicrohttpd: --metrics-listen),
# then what only the tests use.
PKGS="build-essential pkg-config libuv1-dev libssl-dev"
PKGS="$PKGS libjansson-dev libmicrohttpd-dev"
PKGS="$PKGS libmsgpack-dev valgrind"
PKGS="$PKGS systemd" # test_ops.c: systemd-analyze verify p2praft.service
PKGS="$PKGS xxd" # interop/go/snapshot/run.sh: dumps snapshots that differ
PKGS="$PKGS strace" # bench/host/run.sh: syscalls_rtt (strace -f -c)
if [ "$want_fuzz" -eq 1 ]; then
    PKGS="$PKGS clang libclang-rt-14-dev"
fi
if [ "$want_faults" -eq 1 ]; then
    PKGS="$PKGS iproute2 util-linux mount"
fi
missing=""
for p in $PKGS; do
    have_pkg "$p" || missing="$missing $p"
done

need_go=0
if [ "$want_go" -eq 1 ] && ! command -v go >/dev/null 2>&1; then
    need_go=1
fi
if [ -n "$missing" ] || ! raft_ok || [ "$NEED_UPDATE" -eq 1 ] || [ "$need_go" -eq 1 ]; then
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -q
fi
if [ -n "$missing" ]; then
    echo "install-deps: installing$missing"
    # shellcheck disable=SC2086
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
fi
if [ "$need_go" -eq 1 ]; then
    echo "install-deps: installing golang-go from bookworm-backports"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        -t bookworm-backports golang-go ca-certificates
fi
if ! raft_ok; then
    echo "install-deps: installing libraft-dev from bookworm-backports"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        -t bookworm-backports libraft-dev
fi
if [ "$want_node" -eq 1 ]; then
    node_major=$(node --version 2>/dev/null | sed -n 's/^v\([0-9]*\)\..*/\1/p')
    if [ -z "$node_major" ] || [ "$node_major" -lt 20 ] || ! command -v npm >/dev/null 2>&1; then
        echo "install-deps: make interop needs Node.js >= 20 and npm on PATH" \
             "(found: node ${node_major:-none}, npm $(command -v npm || echo none));" \
             "Debian 12's nodejs is 18, so install them from elsewhere" >&2
        exit 1
    fi
fi
if ! raft_ok; then
    echo "install-deps: libraft 0.22.x is still missing (pkg-config raft: $(pkg-config --modversion raft 2>&1))" >&2
    exit 1
fi
echo "install-deps: ok (libuv $(pkg-config --modversion libuv), libcrypto $(pkg-config --modversion libcrypto)," \
     "raft $(pkg-config --modversion raft); for the CLI: jansson $(pkg-config --modversion jansson), libmicrohttpd $(pkg-config --modversion libmicrohttpd);" \
     "for the tests: msgpack $(pkg-config --modversion msgpack))"
