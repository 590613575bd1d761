#!/usr/bin/env bash
# p2praft against the seed, same machine, same run (issues 5 and 9).
# Runs bench/seed/run.sh (go-libp2p-raft v0.5.0's Example_consensus workload;
# modes SEED_MODES, default all four: mem bolt mem-tuned bolt-tuned) and
# build/bench/bench_e2e (p2praft, three nodes over libp2p in one process)
# E2E_REPS times per store (default 5, fresh process each), then prints the
# medians side by side:
#   in memory: p2praft's memory store      vs the seed's InmemStore (mem, mem-tuned)
#   on disk:   p2praft's raft_uv in E2E_DIR vs the seed's raft-boltdb in SEED_DIR
#              (both default to the system temp dir) (bolt, bolt-tuned)
#   tmpfs:     p2praft's raft_uv on /dev/shm vs libraft alone (raft_uv on
#              /dev/shm with libraft's own TCP transport, no libp2p)
# The -tuned seed modes use 100 ms heartbeat/election/lease timeouts, so each
# ratio is also taken against the seed at its best. Ratio columns are "times
# better for p2praft": p2praft/other for ops/s, other/p2praft for times.
# Where a sequential commit's time goes (p2praft and libraft only; the seed
# does not measure it), each per commit of the sequential phase:
#   seq_syscalls     system calls of the loop thread (all three nodes share
#                    that thread); shown when the kernel lets us count them
#   seq_cpu_us       CPU time (user + system) of the whole process, us
#   seq_ctxsw        context switches (voluntary + involuntary) of the whole
#                    process: the loop thread and libuv's thread pool
#   seq_loop_sleeps  times the loop thread slept (its voluntary switches):
#                    ~0 when nothing makes it wait (the memory store)
#   seq_handoffs     appends handed to raft_uv (not for the memory store):
#                    on tmpfs each is one write on libuv's thread pool, a
#                    hand-off to a pool thread and a wakeup of the loop back
#                    (bench/bench_e2e.c says when it is only an upper bound)
# Per-run output: build/bench-e2e/.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
out="$root/build/bench-e2e"
reps="${E2E_REPS:-5}"
tmp="${TMPDIR:-/tmp}"
disk_dir="${E2E_DIR:-$tmp}"
shm_dir="${E2E_SHM:-/dev/shm}"
stores="${E2E_STORES:-mem shm disk tcp}"
export SEED_MODES="${SEED_MODES:-mem bolt mem-tuned bolt-tuned}"
export SEED_DIR="${SEED_DIR:-$tmp}"
mkdir -p "$out"
status=0

if [ ! -x build/bench/bench_e2e ]; then
    make --no-print-directory build/bench/bench_e2e >/dev/null || { echo "e2e: build failed"; exit 1; }
fi
# The system call counter reads a tracepoint: tracefs must be mounted
# (`perf` mounts it; as root we mount it here) and tracing allowed (root).
if [ ! -e /sys/kernel/tracing/events/raw_syscalls ] && [ "$(id -u)" -eq 0 ]; then
    mount -t tracefs nodev /sys/kernel/tracing >/dev/null 2>&1 || true
fi
if [ ! -e /sys/kernel/tracing/events/raw_syscalls ]; then
    echo "e2e: no /sys/kernel/tracing/events/raw_syscalls: seq_syscalls not measured"
fi

echo "e2e: load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "e2e: seed side (bench/seed/run.sh, SEED_MODES=\"$SEED_MODES\", SEED_REPS=${SEED_REPS:-5})"
if ! bench/seed/run.sh > "$out/seed.txt" 2>&1; then
    echo "e2e: the seed run FAILED:"; cat "$out/seed.txt"; status=1
fi
grep -E '^seed: ' "$out/seed.txt"

echo "e2e: p2praft side (build/bench/bench_e2e, $reps repetitions per store: $stores)"
: > "$out/results.txt"
for rep in $(seq 1 "$reps"); do
    for store in $stores; do
        dir="$shm_dir"; [ "$store" = disk ] && dir="$disk_dir"
        log="$out/$store.$rep.log"
        if ! build/bench/bench_e2e --store "$store" --dir "$dir" > "$log" 2> "$log.err"; then
            echo "e2e: p2praft $store repetition $rep FAILED:"; cat "$log" "$log.err"; status=1
            continue
        fi
        grep '^p2praft ' "$log" >> "$out/results.txt"
    done
done
echo "e2e: load after: $(cut -d' ' -f1-3 /proc/loadavg)"
# Medians per (store, metric).
awk -v prefix=p2praft -f "$here/../lib/medians.awk" "$out/results.txt" > "$out/medians.txt"
cat "$out/medians.txt"
grep -E '^seed [a-z-]+ ' "$out/seed.txt" > "$out/seed-medians.txt" || true

echo
echo "p2praft vs the seed: medians ($reps p2praft runs, ${SEED_REPS:-5} seed runs per column); 3 nodes in one process on 127.0.0.1"
echo "  p2praft: lp2p (Noise, Yamux) + libraft 0.22 with p2praft's raft I/O, election 150 ms, heartbeat 30 ms, pre-vote"
echo "  seed:    go-libp2p (TLS, yamux) + hashicorp/raft; default = raft.DefaultConfig (1 s), tuned = 100 ms timeouts"
awk '
function better(metric, unit, p, s) {
  if (p == "" || s == "" || p == 0 || s == 0) return "-"
  if (unit == "ops/s") return sprintf("%.2fx", p / s)
  if (metric == "op_size" || metric in profile) return "-"
  return sprintf("%.2fx", s / p)
}
function fmt(x) { if (x == "") return "-"; return (x >= 1000) ? sprintf("%.0f", x) : sprintf("%.4g", x) }
function line(what, m) {
  printf "%s: p2praft mem %s, tmpfs %s, disk %s; libraft TCP transport (tmpfs) %s\n", what, fmt(p2p["mem", m]), fmt(p2p["shm", m]), fmt(p2p["disk", m]), fmt(p2p["tcp", m])
}
BEGIN { split("seq_syscalls seq_cpu_us seq_ctxsw seq_loop_sleeps seq_handoffs", pm, " "); for (i in pm) profile[pm[i]] = 1 }
FNR == NR { seed[$2, $3] = $4; next }
# Rows in the order the runs print them; a metric only some stores print
# (seq_handoffs) goes right after the one printed before it.
{ p2p[$2, $3] = $4
  if (!($3 in seen)) {
    seen[$3] = 1; unit[$3] = $5; pos = ($2 in prev) ? idx[prev[$2]] : k
    for (j = k; j > pos; j--) { order[j + 1] = order[j]; idx[order[j + 1]] = j + 1 }
    order[pos + 1] = $3; idx[$3] = pos + 1; k++
  }
  prev[$2] = $3 }
function table(title, mine, a, b, an, bn,   i, m, x, y, z) {
  printf "\n%s\n", title
  printf "%-24s %10s %10s %8s %11s %8s  %s\n", "metric", "p2praft", an, "ratio", bn, "ratio", "unit"
  for (i = 1; i <= k; i++) {
    m = order[i]; x = p2p[mine, m]
    y = (a == "") ? "" : seed[a, m]; z = (b == "") ? "" : seed[b, m]
    if (x == "" && y == "" && z == "") continue
    printf "%-24s %10s %10s %8s %11s %8s  %s\n", m, fmt(x), fmt(y), better(m, unit[m], x, y), fmt(z), better(m, unit[m], x, z), unit[m]
  }
}
END {
  table("in memory: p2praft memory store vs the seed InmemStore", "mem", "mem", "mem-tuned", "seed mem", "mem-tuned")
  table("on disk: p2praft raft_uv vs the seed raft-boltdb", "disk", "bolt", "bolt-tuned", "seed bolt", "bolt-tuned")
  printf "\n%s\n", "tmpfs: p2praft raft_uv on /dev/shm vs libraft alone (raft_uv on /dev/shm, libraft TCP transport)"
  printf "%-24s %10s %10s %8s  %s\n", "metric", "p2praft", "libraft", "ratio", "unit"
  for (i = 1; i <= k; i++) {
    m = order[i]; x = p2p["shm", m]; y = p2p["tcp", m]
    if (x == "" && y == "") continue
    printf "%-24s %10s %10s %8s  %s\n", m, fmt(x), fmt(y), better(m, unit[m], x, y), unit[m]
  }
  printf "\n"
  line("system calls per sequential commit on the loop thread", "seq_syscalls")
  line("  context switches (whole process: loop and thread pool)", "seq_ctxsw")
  line("  loop thread sleeps", "seq_loop_sleeps")
  line("  appends handed to raft_uv (thread-pool hand-offs on tmpfs)", "seq_handoffs")
  line("  CPU us (whole process)", "seq_cpu_us")
  printf "(ratio: times better for p2praft)\n"
  printf "issue 9 targets: mem seq p50 >= 1.5x seed mem (%s); mem seq1000 >= 1.5x (%s); tmpfs p50 <= 100 us (%s us);\n", better("seq_commit_p50", "us", p2p["mem", "seq_commit_p50"], seed["mem", "seq_commit_p50"]), better("seq1000_total", "ms", p2p["mem", "seq1000_total"], seed["mem", "seq1000_total"]), fmt(p2p["shm", "seq_commit_p50"])
  printf "  disk seq p50 >= 4x seed bolt (%s); conc64 mem >= 3x (%s), disk >= 8x (%s); tmpfs p50 within 1.25x of libraft TCP (%s);\n", better("seq_commit_p50", "us", p2p["disk", "seq_commit_p50"], seed["bolt", "seq_commit_p50"]), better("conc64_commitstate_ops", "ops/s", p2p["mem", "conc64_commitstate_ops"], seed["mem", "conc64_commitstate_ops"]), better("conc64_commitstate_ops", "ops/s", p2p["disk", "conc64_commitstate_ops"], seed["bolt", "conc64_commitstate_ops"]), better("seq_commit_p50", "us", p2p["shm", "seq_commit_p50"], p2p["tcp", "seq_commit_p50"])
  printf "  first leader >= 1.0x mem-tuned (%s); failover >= 2x mem-tuned (%s)\n", better("first_leader", "ms", p2p["mem", "first_leader"], seed["mem-tuned", "first_leader"]), better("failover", "ms", p2p["mem", "failover"], seed["mem-tuned", "failover"])
}' "$out/seed-medians.txt" "$out/medians.txt" | tee "$out/table.txt"
exit $status
