#!/usr/bin/env bash
# p2praft against the seed, same machine, same run (issue 5, "Benchmarks").
# Runs bench/seed/run.sh (go-libp2p-raft v0.5.0's Example_consensus workload;
# modes SEED_MODES, default "mem bolt") and build/bench/bench_e2e (p2praft,
# three nodes over libp2p in one process) E2E_REPS times per storage
# (default 5, fresh process each), then prints the medians side by side:
#   tmpfs: p2praft's raft_uv files on /dev/shm   vs the seed's in-memory stores (mem)
#   disk:  p2praft's raft_uv files in E2E_DIR    vs the seed's raft-boltdb in SEED_DIR
#          (both default to the system temp dir)
# Ratio columns are "times better for p2praft": p2praft/seed for ops/s,
# seed/p2praft for times. Per-run output: build/bench-e2e/.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
out="$root/build/bench-e2e"
reps="${E2E_REPS:-5}"
tmp="${TMPDIR:-/tmp}"
disk_dir="${E2E_DIR:-$tmp}"
shm_dir="${E2E_SHM:-/dev/shm}"
export SEED_MODES="${SEED_MODES:-mem bolt}"
export SEED_DIR="${SEED_DIR:-$tmp}"
mkdir -p "$out"
status=0

if [ ! -x build/bench/bench_e2e ]; then
    make --no-print-directory build/bench/bench_e2e >/dev/null || { echo "e2e: build failed"; exit 1; }
fi

echo "e2e: seed side (bench/seed/run.sh, SEED_MODES=\"$SEED_MODES\", SEED_REPS=${SEED_REPS:-5})"
if ! bench/seed/run.sh > "$out/seed.txt" 2>&1; then
    echo "e2e: the seed run FAILED:"; cat "$out/seed.txt"; status=1
fi
grep -E '^seed: ' "$out/seed.txt"

echo "e2e: p2praft side (build/bench/bench_e2e, $reps repetitions per storage)"
: > "$out/results.txt"
for store in shm disk; do
    dir="$shm_dir"; [ "$store" = disk ] && dir="$disk_dir"
    for rep in $(seq 1 "$reps"); do
        log="$out/$store.$rep.log"
        if ! build/bench/bench_e2e --store "$store" --dir "$dir" > "$log" 2> "$log.err"; then
            echo "e2e: p2praft $store repetition $rep FAILED:"; cat "$log" "$log.err"; status=1
            continue
        fi
        grep '^p2praft ' "$log" >> "$out/results.txt"
    done
done
# Medians per (store, metric).
awk -v prefix=p2praft -f "$here/../lib/medians.awk" "$out/results.txt" > "$out/medians.txt"
cat "$out/medians.txt"
grep -E '^seed [a-z-]+ ' "$out/seed.txt" > "$out/seed-medians.txt" || true

echo
echo "p2praft vs the seed: medians ($reps p2praft runs, ${SEED_REPS:-5} seed runs per column); 3 nodes in one process on 127.0.0.1"
echo "  p2praft: lp2p (Noise, Yamux) + libraft 0.22 raft_uv, election 150 ms, heartbeat 30 ms, pre-vote"
echo "  seed:    go-libp2p (TLS, yamux) + hashicorp/raft, raft.DefaultConfig (election 1 s)"
awk '
function better(metric, unit, p, s) {
  if (p == "" || s == "" || p == 0 || s == 0) return "-"
  if (unit == "ops/s") return sprintf("%.2fx", p / s)
  if (metric == "op_size") return "-"
  return sprintf("%.2fx", s / p)
}
function fmt(x) { if (x == "") return "-"; return (x >= 1000) ? sprintf("%.0f", x) : sprintf("%.4g", x) }
FNR == NR { seed[$2, $3] = $4; next }
{ p2p[$2, $3] = $4; if (!($3 in seen)) { seen[$3] = 1; order[++k] = $3; unit[$3] = $5 } }
END {
  printf "%-24s %10s %10s %8s   %10s %10s %8s  %s\n", "metric", "p2p tmpfs", "seed mem", "ratio", "p2p disk", "seed bolt", "ratio", "unit"
  for (i = 1; i <= k; i++) {
    m = order[i]; sm = m
    a = p2p["shm", m]; b = seed["mem", sm]; c = p2p["disk", m]; d = seed["bolt", sm]
    printf "%-24s %10s %10s %8s   %10s %10s %8s  %s\n", m, fmt(a), fmt(b), better(m, unit[m], a, b), fmt(c), fmt(d), better(m, unit[m], c, d), unit[m]
  }
  printf "(ratio: times better for p2praft; targets: >= 2x on throughput and latency, first_leader p50 <= 300 ms, failover p50 <= 500 ms)\n"
  fl = p2p["shm", "first_leader"]; fo = p2p["shm", "failover"]
  fl2 = p2p["disk", "first_leader"]; fo2 = p2p["disk", "failover"]
  printf "targets: first_leader p50 %s/%s ms (tmpfs/disk) %s; failover p50 %s/%s ms %s\n", fmt(fl), fmt(fl2), (fl <= 300 && fl2 <= 300) ? "OK" : "MISSED", fmt(fo), fmt(fo2), (fo <= 500 && fo2 <= 500) ? "OK" : "MISSED"
}' "$out/seed-medians.txt" "$out/medians.txt" | tee "$out/table.txt"
exit $status
