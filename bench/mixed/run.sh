#!/usr/bin/env bash
# Mixed Go and C clusters on go-libp2p-raft's wire (issue 10), same machine,
# same run: interop/go/raftnode/mixed-bench.sh with the Go test node
# (go-libp2p-raft v0.5.0 on hashicorp/raft 1.6.1, build/interop/go-raftnode)
# and the C one (build/interop/c-raftnode), then a table of its medians:
# 3 Go, 2 Go + 1 C (Go leader), 1 Go + 2 C (C leader), 3 C on the hashicorp
# wire, and 3 C on p2praft's own wire for reference. `make bench` builds
# both nodes first. BENCH_REPS, BENCH_N, BENCH_CONC and BENCH_CLUSTERS go
# to mixed-bench.sh.
set -uo pipefail
cd "$(dirname "$0")/../.."
g=build/interop/go-raftnode
c=build/interop/c-raftnode
if [ ! -x "$g" ] || [ ! -x "$c" ]; then
    echo "bench/mixed: $g or $c is missing (make go-raftnode all)" >&2
    exit 1
fi
out=$(bash interop/go/raftnode/mixed-bench.sh "$g" "$c") || {
    printf '%s\n' "$out"
    exit 1
}
printf '%s\n' "$out" | grep -v '^bench [^ ]* seq_commits_per_s '
echo
echo "| cluster | leader | seq commits/s | conc commits/s |"
echo "| --- | --- | --- | --- |"
printf '%s\n' "$out" | awk '
    $1 == "bench" && $3 == "seq_commits_per_s" {
        name["go3"] = "3 Go"; name["mixed-go"] = "2 Go + 1 C (hashicorp wire)"
        name["mixed-c"] = "1 Go + 2 C (hashicorp wire)"
        name["c3-hc"] = "3 C, hashicorp wire and seed log format"
        name["c3-p2p"] = "3 C, p2praft wire and format"
        l = $7; sub(/^leader=/, "", l)
        printf "| %s | %s | %s | %s |\n", ($2 in name ? name[$2] : $2), (l == "go" ? "Go" : "C"), $4, $6
    }'
# A cluster that did not start or commit says so above: fail the bench.
! printf '%s\n' "$out" | grep -q '^bench [^ ]*: '
