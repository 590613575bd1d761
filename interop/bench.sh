#!/usr/bin/env bash
# go-libp2p baseline for issue 3's side-by-side benchmarks (see README.md):
# the go peer dials a go listener, and the C listener when it exists, and
# runs bench-throughput, bench-rtt and bench-connect. Prints
#   bench <dialer>-<listener> <metric> <value> <unit> [key=value]...
# Sizes: BENCH_BYTES (1 GiB), BENCH_RTT_COUNT (10000), BENCH_CONNECT_COUNT (200).
set -uo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
out="$root/build/interop"
mkdir -p "$out"
export GOFLAGS=-mod=readonly
(cd interop/go/peer && go build -trimpath -o "$out/go-peer" .) || { echo "bench.sh: go build failed"; exit 1; }

listeners=("go|$out/go-peer listen")
c_listen="${P2PRAFT_LISTEN_CMD:-}"
if [ -z "$c_listen" ] && [ -x build/p2praft ] && build/p2praft --help 2>/dev/null | grep -qE '^ +host '; then
    c_listen="$root/build/p2praft host --listen /ip4/127.0.0.1/tcp/0"
fi
[ -n "$c_listen" ] && [ "$c_listen" != none ] && listeners+=("c|$c_listen")

status=0
for l in "${listeners[@]}"; do
    IFS='|' read -r lname lcmd <<<"$l"
    log="$out/bench-listen-$lname"
    bash -c "exec $lcmd" >"$log.out" 2>"$log.err" &
    lpid=$!
    ma=""
    deadline=$((SECONDS + 60))
    while [ $SECONDS -lt $deadline ] && kill -0 "$lpid" 2>/dev/null; do
        ma="$(grep -m1 -E '^/ip4/127\.0\.0\.1/tcp/[0-9]+/p2p/[1-9A-HJ-NP-Za-km-z]+$' "$log.out" || true)"
        [ -n "$ma" ] && break
        sleep 0.05
    done
    if [ -z "$ma" ]; then
        echo "bench.sh: listener $lname printed no multiaddr: $(cat "$log.err")"
        kill -9 "$lpid" 2>/dev/null; wait "$lpid" 2>/dev/null
        status=1
        continue
    fi
    for args in "bench-throughput --bytes ${BENCH_BYTES:-1073741824}" \
                "bench-rtt --count ${BENCH_RTT_COUNT:-10000}" \
                "bench-connect --count ${BENCH_CONNECT_COUNT:-200}"; do
        # shellcheck disable=SC2086
        if ! timeout 300 "$out/go-peer" $args "$ma" >"$out/bench.tmp" 2>"$out/bench.err"; then
            echo "bench.sh: go-$lname $args failed: $(cat "$out/bench.err")"
            status=1
        fi
        sed -n "s/^bench /bench go-$lname /p" "$out/bench.tmp"
    done
    kill -TERM "$lpid" 2>/dev/null
    wait "$lpid" 2>/dev/null
done
exit $status
