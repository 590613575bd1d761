#!/usr/bin/env bash
# Interop matrix between real libp2p implementations (see interop/README.md).
#
# Builds the js-libp2p peer (npm ci from package-lock.json) and the go-libp2p
# peer (go build, -mod=readonly against go.sum), then runs every dialer
# against every listener of another implementation through all checks
# (connect, ping, identify with expected agent and protocols, echo 1 MiB and
# 64 MiB with sha256, 50 concurrent echo streams) and checks that each
# listener exits 0 on SIGTERM.
#
# The C host joins when it exists:
#   listener: P2PRAFT_LISTEN_CMD (default: "build/p2praft host --listen
#             /ip4/127.0.0.1/tcp/0", used when build/p2praft lists a `host`
#             command); set P2PRAFT_LISTEN_CMD=none to leave it out.
#   dialer:   P2PRAFT_DIAL_CMD (default: "build/p2praft interop dial" when
#             build/p2praft lists an `interop` command; "none" leaves it out):
#             run as `$P2PRAFT_DIAL_CMD MA [--expect-agent P]
#             [--expect-protocol P]...`, same output contract as `peer dial`.
# Finally runs interop/go/snapshot/run.sh when that file exists, and the
# all-Go go-libp2p-raft cluster test (interop/go/raftnode/cluster-test.sh)
# on both raftnode builds (hashicorp/raft 1.6.1 with raft-boltdb and
# in-memory stores, 1.7.x in memory) when they are built (make go-raftnode),
# the mixed Go/C clusters (mixed-test.sh with build/interop/c-raftnode,
# mixed-kv-test.sh with the p2praft CLI node).
# Prints "interop: N passed, M failed" and exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
out="$root/build/interop"
mkdir -p "$out"
export GOFLAGS=-mod=readonly
# An older go (Debian's) fetches the toolchain go.mod names from the Go module proxy.
export GOTOOLCHAIN="${GOTOOLCHAIN:-auto}"

passed=0
failed=0
fail() { echo "FAIL $*"; failed=$((failed + 1)); }

# ---- build -----------------------------------------------------------------
t0=$(date +%s)
if ! (cd interop/js && npm ci --no-audit --no-fund --loglevel=error >"$out/npm-ci.log" 2>&1); then
    cat "$out/npm-ci.log"; echo "interop: npm ci failed"; exit 1
fi
t1=$(date +%s)
if ! (cd interop/go/peer && go build -trimpath -o "$out/go-peer" . 2>&1); then
    echo "interop: go build failed"; exit 1
fi
t2=$(date +%s)
echo "interop: js peer installed in $((t1 - t0)) s ($(node --version)), go peer built in $((t2 - t1)) s ($(go version | awk '{print $3}'))"

# ---- peers -----------------------------------------------------------------
# name|listen command|dial command|expected agent prefix
peers=(
    "js|node $root/interop/js/peer.mjs listen|node $root/interop/js/peer.mjs dial|js-libp2p/"
    "go|$out/go-peer listen|$out/go-peer dial|go-libp2p/"
    "go-tls-first||$out/go-peer dial --default-security|"
)
c_listen="${P2PRAFT_LISTEN_CMD:-}"
if [ -z "$c_listen" ] && [ -x build/p2praft ] && build/p2praft --help 2>/dev/null | grep -qE '^ +host '; then
    c_listen="$root/build/p2praft host --listen /ip4/127.0.0.1/tcp/0"
fi
[ "$c_listen" = none ] && c_listen=""
c_dial="${P2PRAFT_DIAL_CMD:-}"
if [ -z "$c_dial" ] && [ -x build/p2praft ] && build/p2praft --help 2>/dev/null | grep -qE '^ +interop '; then
    c_dial="$root/build/p2praft interop dial"
fi
[ "$c_dial" = none ] && c_dial=""
if [ -n "$c_listen" ] || [ -n "$c_dial" ]; then
    peers+=("c|$c_listen|$c_dial|p2praft/")
    echo "interop: C host: listen='${c_listen:-none}' dial='${c_dial:-none}'"
else
    echo "interop: no C host yet (build/p2praft lists no host/interop command; P2PRAFT_LISTEN_CMD/P2PRAFT_DIAL_CMD unset)"
fi
impl() { echo "${1%%-*}"; } # go-tls-first -> go

# Starts a listener; sets lpid and lma (the first /ip4/127.0.0.1 multiaddr).
start_listener() {
    local name="$1" cmd="$2" log="$out/listen-$1"
    lma=""
    bash -c "exec $cmd" >"$log.out" 2>"$log.err" &
    lpid=$!
    local deadline=$((SECONDS + 60))
    while [ $SECONDS -lt $deadline ] && kill -0 "$lpid" 2>/dev/null; do
        lma="$(grep -m1 -E '^/ip4/127\.0\.0\.1/tcp/[0-9]+/p2p/[1-9A-HJ-NP-Za-km-z]+$' "$log.out" || true)"
        [ -n "$lma" ] && return 0
        sleep 0.05
    done
    fail "listen-$name no /ip4/127.0.0.1/.../p2p/<id> line within 60 s: $(cat "$log.out" "$log.err")"
    kill -9 "$lpid" 2>/dev/null
    wait "$lpid" 2>/dev/null
    return 1
}

stop_listener() {
    local name="$1"
    kill -TERM "$lpid" 2>/dev/null
    local deadline=$((SECONDS + 20))
    while [ $SECONDS -lt $deadline ] && kill -0 "$lpid" 2>/dev/null; do sleep 0.05; done
    if kill -0 "$lpid" 2>/dev/null; then
        kill -9 "$lpid" 2>/dev/null
        wait "$lpid" 2>/dev/null
        fail "listen-$name did not exit within 20 s of SIGTERM"
        return
    fi
    wait "$lpid"
    local rc=$?
    if [ $rc -eq 0 ]; then
        echo "ok listen-$name exit 0 on SIGTERM"
        passed=$((passed + 1))
    else
        fail "listen-$name exited $rc on SIGTERM: $(tail -5 "$out/listen-$name.err")"
    fi
}

# Runs one dialer's checks; counts its ok/FAIL lines.
run_dialer() {
    local cmd="$1" ma="$2" agent="$3" log="$4"
    local args=(--expect-protocol /ipfs/ping/1.0.0 --expect-protocol /ipfs/id/1.0.0
                --expect-protocol /p2praft/test/echo/1.0.0)
    [ -n "$agent" ] && args+=(--expect-agent "$agent")
    timeout 300 bash -c "exec $cmd \"\$@\"" dialer "$ma" "${args[@]}" >"$log" 2>"$log.err"
    local rc=$?
    cat "$log"
    local ok nfail
    ok=$(grep -c '^ok ' "$log")
    nfail=$(grep -c '^FAIL ' "$log")
    passed=$((passed + ok))
    failed=$((failed + nfail))
    if [ $rc -ne 0 ] && [ "$nfail" -eq 0 ]; then
        fail "dialer exited $rc without a FAIL line: $(tail -5 "$log.err")"
    elif [ $rc -eq 0 ] && [ "$nfail" -ne 0 ]; then
        fail "dialer exited 0 despite FAIL lines"
    elif [ $rc -eq 0 ] && [ "$ok" -lt 6 ]; then
        fail "dialer exited 0 but printed only $ok ok lines"
    fi
}

for lp in "${peers[@]}"; do
    IFS='|' read -r lname lcmd _ lagent <<<"$lp"
    [ -n "$lcmd" ] || continue
    dialers=()
    for dp in "${peers[@]}"; do
        IFS='|' read -r dname _ dcmd _ <<<"$dp"
        [ -n "$dcmd" ] || continue
        [ "$(impl "$dname")" = "$(impl "$lname")" ] && continue
        dialers+=("$dname|$dcmd")
    done
    [ ${#dialers[@]} -gt 0 ] || continue
    start_listener "$lname" "$lcmd" || continue
    for d in "${dialers[@]}"; do
        IFS='|' read -r dname dcmd <<<"$d"
        echo
        echo "== $dname dials $lname ($lma)"
        run_dialer "$dcmd" "$lma" "$lagent" "$out/$dname-dials-$lname.log"
    done
    stop_listener "$lname"
done

if [ -f interop/go/snapshot/run.sh ]; then
    echo
    echo "== interop/go/snapshot/run.sh"
    if bash interop/go/snapshot/run.sh; then
        echo "ok snapshot"
        passed=$((passed + 1))
    else
        fail "snapshot interop/go/snapshot/run.sh"
    fi
fi

for spec in "go-raftnode bolt" "go-raftnode mem" "go-raftnode-17 mem"; do
    set -- $spec
    [ -x "$out/$1" ] || continue
    echo
    echo "== interop/go/raftnode/cluster-test.sh $out/$1 $2"
    if bash interop/go/raftnode/cluster-test.sh "$out/$1" "$2"; then
        echo "ok raftnode-cluster $1 $2"
        passed=$((passed + 1))
    else
        fail "raftnode-cluster $1 $2"
    fi
done

# Mixed clusters: go-libp2p-raft nodes and p2praft nodes on the hashicorp
# wire (issue 10), on both raftnode builds (1.7.x also with pre-vote on).
for spec in "go-raftnode" "go-raftnode-17" "go-raftnode-17 prevote"; do
    set -- $spec
    [ -x "$out/$1" ] && [ -x build/interop/c-raftnode ] || continue
    echo
    echo "== interop/go/raftnode/mixed-test.sh $out/$1 build/interop/c-raftnode ${2:-}"
    if bash interop/go/raftnode/mixed-test.sh "$out/$1" build/interop/c-raftnode ${2:-}; then
        echo "ok raftnode-mixed $spec"
        passed=$((passed + 1))
    else
        fail "raftnode-mixed $spec"
    fi
done

# Membership through the real CLI node: `p2praft node --wire hashicorp` and
# Go nodes running its key-value store (raftnode -mode kv), peers add/rm of a
# Go node, Go AddVoter/RemoveServer of a p2praft node (mixed-kv-test.sh); the
# C nodes in memory on 1.6.1, on disk on 1.7.3.
if [ -x "$out/go-raftnode" ] && [ -x build/p2praft ]; then
    echo
    echo "== go test -run KV interop/go/raftnode (the kv mode against kv.c's bytes and rules)"
    if (cd interop/go/raftnode && go test -run KV .); then
        echo "ok raftnode-kv-unit"
        passed=$((passed + 1))
    else
        fail "raftnode-kv-unit go test -run KV"
    fi
fi
for spec in "go-raftnode mem" "go-raftnode-17 disk"; do
    set -- $spec
    [ -x "$out/$1" ] && [ -x build/p2praft ] || continue
    echo
    echo "== interop/go/raftnode/mixed-kv-test.sh $out/$1 build/p2praft $2"
    if bash interop/go/raftnode/mixed-kv-test.sh "$out/$1" build/p2praft "$2"; then
        echo "ok raftnode-mixed-kv $spec"
        passed=$((passed + 1))
    else
        fail "raftnode-mixed-kv $spec"
    fi
done

echo
echo "interop: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
