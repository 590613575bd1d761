#!/usr/bin/env bash
# The seed baseline: go-libp2p-raft v0.5.0's Example_consensus workload
# (see main.go), built from the Go module proxy with the versions pinned in
# go.sum, run SEED_REPS times per mode; prints the median of each metric as
#   seed <mode> <metric> <value> <unit>
# then a human table. Modes (SEED_MODES):
#   mem         in-memory log/stable/snapshot stores, raft.DefaultConfig: the seed as shipped
#   bolt        raft-boltdb + file snapshots on disk (SEED_DIR, default the
#               system temp dir), raft.DefaultConfig
#   mem-tuned, bolt-tuned   the same with heartbeat/election timeouts of 100 ms
# The first mem repetition's example output must be exactly the seed
# example's lines ("Performed 200 updates..." .. "Raft3 final state: 1998").
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$root/build/bench-seed"
reps="${SEED_REPS:-5}"
modes="${SEED_MODES:-mem bolt mem-tuned bolt-tuned}"
mkdir -p "$out"

echo "seed: go-libp2p-raft $(awk '$1=="github.com/libp2p/go-libp2p-raft"{print $2}' "$here/go.mod")," \
     "go-libp2p $(awk '$1=="github.com/libp2p/go-libp2p"{print $2}' "$here/go.mod")," \
     "hashicorp/raft $(awk '$1=="github.com/hashicorp/raft"{print $2}' "$here/go.mod"), $(go version | awk '{print $3}')"
t0=$(date +%s)
(cd "$here" && GOFLAGS=-mod=readonly GOTOOLCHAIN="${GOTOOLCHAIN:-auto}" go build -trimpath -o "$out/seedbench" .)
echo "seed: built in $(( $(date +%s) - t0 )) s; $reps repetitions per mode"

expected='Performed 200 updates. Current state value: 398
Performed 400 updates. Current state value: 798
Performed 600 updates. Current state value: 1198
Performed 800 updates. Current state value: 1598
Performed 1000 updates. Current state value: 1998
Raft1 final state: 1998
Raft2 final state: 1998
Raft3 final state: 1998'

results="$out/results.txt"
: > "$results"
status=0
for mode in $modes; do
    store="${mode%-tuned}"
    timeouts=default
    [ "$store" != "$mode" ] && timeouts=tuned
    for rep in $(seq 1 "$reps"); do
        log="$out/$mode.$rep.log"
        if ! "$out/seedbench" -store "$store" -timeouts "$timeouts" ${SEED_DIR:+-dir "$SEED_DIR"} \
                >"$log" 2>"$log.err"; then
            echo "seed: $mode repetition $rep FAILED:"; cat "$log" "$log.err"
            status=1
            continue
        fi
        grep '^seed ' "$log" >> "$results"
        if [ "$mode" = mem ] && [ "$rep" = 1 ]; then
            if [ "$(grep -v '^seed ' "$log")" = "$expected" ]; then
                echo "seed: example output matches the seed's (Performed 200 updates ... Raft3 final state: 1998)"
            else
                echo "seed: example output DIFFERS from the seed's:"; grep -v '^seed ' "$log"
                status=1
            fi
        fi
    done
done

# Medians per (mode, metric), in first-seen order.
awk -v prefix=seed -f "$here/../lib/medians.awk" "$results" > "$out/medians.txt"
cat "$out/medians.txt"

echo
echo "seed medians of $reps runs (3 nodes in one process; go-libp2p defaults: TCP on 127.0.0.1, TLS, yamux)"
awk -v modes="$modes" '
BEGIN { nm = split(modes, M, " ") }
{ val[$2, $3] = $4; if (!($3 in seen)) { seen[$3] = 1; order[++k] = $3; unit[$3] = $5 } }
END {
  printf "%-26s", "metric"; for (j = 1; j <= nm; j++) printf " %12s", M[j]; printf "  unit\n"
  for (i = 1; i <= k; i++) {
    printf "%-26s", order[i]
    for (j = 1; j <= nm; j++) { x = "-"; if ((M[j], order[i]) in val) { y = val[M[j], order[i]]; x = (y >= 1000) ? sprintf("%.0f", y) : sprintf("%.4g", y) }; printf " %12s", x }
    printf "  %s\n", unit[order[i]]
  }
}' "$out/medians.txt"
exit $status
