#!/usr/bin/env bash
# Host benchmarks for issue 3, p2praft side by side with go-libp2p (see
# README.md): for each pair <dialer>-<listener> runs bench-throughput,
# bench-rtt and bench-connect BENCH_REPS times (default 3) and prints medians
#   bench <dialer>-<listener> <metric> <value> <unit> median_of=N
# Pairs: go-go (the go-libp2p baseline, Noise + Yamux on both sides) and,
# when the C host exists, c-c, go-c and c-go, then the speedup of c-c over
# go-go per metric:
#   bench speedup <metric> <x> c-c=<value> go-go=<value> <unit>
# (throughput: c/go; latencies: go/c; above 1 means p2praft is faster).
# C side: P2PRAFT_LISTEN_CMD (as in run.sh) and P2PRAFT_BENCH_CMD, a prefix
# to which "bench-throughput MA --bytes N" etc. is appended (default
# "build/p2praft interop" when build/p2praft lists an `interop` command).
# Sizes: BENCH_BYTES (1 GiB), BENCH_RTT_COUNT (10000), BENCH_CONNECT_COUNT (200).
set -uo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
out="$root/build/interop"
mkdir -p "$out"
export GOFLAGS=-mod=readonly
# An older go (Debian's) fetches the toolchain go.mod names from the Go module proxy.
export GOTOOLCHAIN="${GOTOOLCHAIN:-auto}"
(cd interop/go/peer && go build -trimpath -o "$out/go-peer" .) || { echo "bench.sh: go build failed"; exit 1; }
reps="${BENCH_REPS:-3}"

lists_cmd() { [ -x build/p2praft ] && build/p2praft --help 2>/dev/null | grep -qE "^ +$1 "; }
c_listen="${P2PRAFT_LISTEN_CMD:-}"
[ -z "$c_listen" ] && lists_cmd host && c_listen="$root/build/p2praft host --listen /ip4/127.0.0.1/tcp/0"
[ "$c_listen" = none ] && c_listen=""
c_bench="${P2PRAFT_BENCH_CMD:-}"
[ -z "$c_bench" ] && lists_cmd interop && c_bench="$root/build/p2praft interop"
[ "$c_bench" = none ] && c_bench=""

declare -A listen_cmd=([go]="$out/go-peer listen")
declare -A bench_cmd=([go]="$out/go-peer")
[ -n "$c_listen" ] && listen_cmd[c]="$c_listen"
[ -n "$c_bench" ] && bench_cmd[c]="$c_bench"

medians="$out/bench-medians.txt"
: >"$medians"
status=0
for lname in go c; do
    [ -n "${listen_cmd[$lname]:-}" ] || continue
    log="$out/bench-listen-$lname"
    bash -c "exec ${listen_cmd[$lname]}" >"$log.out" 2>"$log.err" &
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
    for dname in go c; do
        [ -n "${bench_cmd[$dname]:-}" ] || continue
        pair="$dname-$lname"
        : >"$out/bench.all"
        for rep in $(seq 1 "$reps"); do
            for args in "bench-throughput $ma --bytes ${BENCH_BYTES:-1073741824}" \
                        "bench-rtt $ma --count ${BENCH_RTT_COUNT:-10000}" \
                        "bench-connect $ma --count ${BENCH_CONNECT_COUNT:-200}"; do
                if ! timeout 300 bash -c "exec ${bench_cmd[$dname]} $args" >"$out/bench.tmp" 2>"$out/bench.err"; then
                    echo "bench.sh: $pair ${args%% *} failed: $(tail -3 "$out/bench.err")"
                    status=1
                fi
                grep '^bench ' "$out/bench.tmp" >>"$out/bench.all"
            done
        done
        # Median of each metric over the repetitions.
        awk -v pair="$pair" '
        { if (!($2 in n)) { order[++k] = $2; unit[$2] = $4 }; v[$2, ++n[$2]] = $3 }
        END {
          for (i = 1; i <= k; i++) {
            m = order[i]; c = n[m]
            for (a = 1; a <= c; a++) s[a] = v[m, a]
            for (a = 1; a <= c; a++) for (b = a + 1; b <= c; b++) if (s[b] < s[a]) { t = s[a]; s[a] = s[b]; s[b] = t }
            med = (c % 2) ? s[(c + 1) / 2] : (s[c / 2] + s[c / 2 + 1]) / 2
            printf "bench %s %s %.4g %s median_of=%d\n", pair, m, med, unit[m], c
          }
        }' "$out/bench.all" | tee -a "$medians"
    done
    kill -TERM "$lpid" 2>/dev/null
    wait "$lpid" 2>/dev/null
done

awk '
$2 == "c-c" { c[$3] = $4; unit[$3] = $5 }
$2 == "go-go" { g[$3] = $4 }
END {
  for (m in c) {
    if (!(m in g) || c[m] == 0 || g[m] == 0) continue
    x = (m == "throughput") ? c[m] / g[m] : g[m] / c[m]
    printf "bench speedup %s %.2fx c-c=%s go-go=%s %s\n", m, x, c[m], g[m], unit[m]
  }
}' "$medians" | sort
exit $status
