#!/usr/bin/env bash
# Sample every node's raft status twice a second, one line per node:
#   EPOCH_SECONDS n<i> role=R term=T leader=<index|none|?> commit=C applied=A
# (role "-" when the node does not answer within 300 ms: down, paused or
# busy). test/faults/run.sh runs it in the client's namespace, so that the
# cleanup of a killed run stops it too.
# Usage: monitor.sh CLI RUN_DIR N
set -u
cli=$1
run=$2
n=$3
declare -A index_of=([none]=none)
for ((i = 0; i < n; i++)); do
    id=$("$cli" id -k "$run/n$i/key" 2>/dev/null | tail -n 1)
    index_of[$id]=$i
done
while :; do
    for ((i = 0; i < n; i++)); do
        st=$("$cli" status --api "$run/n$i/api.sock" --timeout-ms 300 2>/dev/null)
        role=$(sed -n 's/^role: //p' <<<"$st")
        leader=$(sed -n 's/^leader: //p' <<<"$st")
        printf '%s n%d role=%s term=%s leader=%s commit=%s applied=%s\n' \
            "$EPOCHREALTIME" "$i" "${role:--}" "$(sed -n 's/^term: //p' <<<"$st")" \
            "${index_of[$leader]:-${leader:+?}}" "$(sed -n 's/^commit_index: //p' <<<"$st")" \
            "$(sed -n 's/^applied_index: //p' <<<"$st")"
    done
    sleep 0.5
done
