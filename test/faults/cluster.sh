# The fault harness's nodes (sourced by test/faults/run.sh, after net.sh).
#
# Node i: key, log and API socket in $RUN/n<i>/, raft data on its own
# tmpfs at $RUN/n<i>/data (so that the disk nemesis can fill it), process
# in namespace p2pf<i>, listening on every one of its links. NODE_STATE[i]
# is what the harness expects: up, paused or down; a node that is not
# running while it should be has crashed (node_check_crashes).
#
# Needs: CLI (the p2praft binary), RUN, N, TMPFS_MB, STORE (disk or mem),
# SNAP_THRESHOLD (empty: the node's default), and log_event(). A memory
# node always starts with --bootstrap (it has nothing to load); the node
# refuses a second start under the same key, so node_check_crashes()
# leaves a crashed memory node down.
# FAULTS_LOG=LEVEL runs the nodes with P2PRAFT_LOG=LEVEL (default: the
# node's own, warnings and errors).

NODE_PID=()
NODE_STATE=()
NODE_ID=()

node_dir() { echo "$RUN/n$1"; }
node_api() { echo "$RUN/n$1/api.sock"; }
node_log() { echo "$RUN/n$1/node.log"; }

# Keys and data directories (each a fresh tmpfs) for N nodes.
cluster_prepare() {
    local i d
    for ((i = 0; i < N; i++)); do
        d=$(node_dir "$i")
        mkdir -p "$d/data" || return 1
        NODE_ID[i]=$("$CLI" keygen -o "$d/key" | tail -n 1) || return 1
        mount -t tmpfs -o "size=${TMPFS_MB}m,mode=0700" "$FAULTS_TMPFS_SOURCE" "$d/data" || return 1
        NODE_STATE[i]=down
    done
}

# Unmount the nodes' tmpfs (after their processes are gone).
cluster_unmount() {
    local i
    for ((i = 0; i < N; i++)); do
        if mountpoint -q "$(node_dir "$i")/data" 2>/dev/null; then
            umount -l "$(node_dir "$i")/data"
        fi
    done
}

# Is node i's process alive? (bash reaps its children, so a dead one is
# gone, not a zombie.)
node_alive() {
    [ -n "${NODE_PID[$1]:-}" ] && kill -0 "${NODE_PID[$1]}" 2>/dev/null
}

# One status field of node i ("" when it does not answer within 1 s).
node_field() {
    "$CLI" status --api "$(node_api "$1")" --timeout-ms 1000 2>/dev/null |
        sed -n "s/^$2: //p"
}

# Copy stdin to stdout, each line prefixed with the time (the clock of
# nemesis.log), so that node logs and faults line up.
stamp() {
    local l
    while IFS= read -r l; do
        printf '%s %s\n' "$EPOCHREALTIME" "$l"
    done
}

# Start node i and wait until its API answers. $2: "bootstrap" (the first
# start), "join" (an empty data directory, after `p2praft peers add`: the
# others are --join addresses), or nothing (start from the data).
node_start() {
    local i=$1 mode=${2:-} boot="" peer_flag=--peer j peers=() deadline extra=()
    [ -n "${SNAP_THRESHOLD:-}" ] && extra+=(--snapshot-threshold "$SNAP_THRESHOLD")
    if [ "${STORE:-disk}" = mem ]; then
        extra+=(--store mem)
        [ "$mode" = join ] || mode=bootstrap
    fi
    [ "$mode" = bootstrap ] && boot=yes
    [ "$mode" = join ] && peer_flag=--join
    for ((j = 0; j < N; j++)); do
        [ "$j" -eq "$i" ] && continue
        peers+=("$peer_flag" "/ip4/$(addr_of "$j" "$i")/tcp/$FAULTS_PORT/p2p/${NODE_ID[j]}")
    done
    echo "$EPOCHREALTIME === start${mode:+ ($mode)}" >>"$(node_log "$i")"
    ip netns exec "$(ns_of "$i")" env ${FAULTS_LOG:+P2PRAFT_LOG=$FAULTS_LOG} \
        "$CLI" node --key "$(node_dir "$i")/key" \
        --data-dir "$(node_dir "$i")/data" --api "$(node_api "$i")" \
        --listen "/ip4/0.0.0.0/tcp/$FAULTS_PORT" "${peers[@]}" \
        ${boot:+--bootstrap} "${extra[@]}" ${NODE_FLAGS:-} > >(stamp >>"$(node_log "$i")") 2>&1 &
    NODE_PID[i]=$!
    NODE_STATE[i]=up
    deadline=$((SECONDS + 20))
    while [ "$SECONDS" -lt "$deadline" ]; do
        if ! node_alive "$i"; then
            wait "${NODE_PID[i]}" 2>/dev/null
            log_event "node $i exited at start (status $?)"
            NODE_STATE[i]=down
            return 1
        fi
        [ -n "$(node_field "$i" role)" ] && return 0
        sleep 0.05
    done
    log_event "node $i: API not up after 20 s"
    return 1
}

node_kill() {
    kill -9 "${NODE_PID[$1]}" 2>/dev/null
    wait "${NODE_PID[$1]}" 2>/dev/null
    NODE_STATE[$1]=down
}

node_pause() {
    kill -STOP "${NODE_PID[$1]}"
    NODE_STATE[$1]=paused
}

node_resume() {
    kill -CONT "${NODE_PID[$1]}"
    NODE_STATE[$1]=up
}

# SIGTERM; a clean shutdown exits 0 within 15 s. Returns the exit status
# (137 after the SIGKILL that ends a node which did not stop).
node_stop() {
    local rc deadline=$((SECONDS + 15))
    kill -CONT "${NODE_PID[$1]}" 2>/dev/null
    kill -TERM "${NODE_PID[$1]}" 2>/dev/null
    while node_alive "$1" && [ "$SECONDS" -lt "$deadline" ]; do
        sleep 0.05
    done
    if node_alive "$1"; then
        log_event "node $1 still runs 15 s after SIGTERM: SIGKILL"
        kill -9 "${NODE_PID[$1]}" 2>/dev/null
    fi
    wait "${NODE_PID[$1]}" 2>/dev/null
    rc=$?
    NODE_STATE[$1]=down
    return "$rc"
}

# The node that leads with the highest term among those that say they
# lead (a deposed leader cut off from the others may still say so); ""
# when none does.
cluster_leader() {
    local i best="" best_term=-1 role term
    for ((i = 0; i < N; i++)); do
        [ "${NODE_STATE[i]}" = up ] || continue
        role=$(node_field "$i" role)
        [ "$role" = leader ] || continue
        term=$(node_field "$i" term)
        if [ -n "$term" ] && [ "$term" -gt "$best_term" ]; then
            best=$i
            best_term=$term
        fi
    done
    echo "$best"
}

# Wait (at most $1 s) until every running node names the same leader,
# which says it leads. Prints its index; returns 1 on timeout.
cluster_wait_leader() {
    local deadline=$((SECONDS + $1)) i l first agree
    while [ "$SECONDS" -lt "$deadline" ]; do
        agree=1
        first=""
        for ((i = 0; i < N; i++)); do
            [ "${NODE_STATE[i]}" = up ] || continue
            l=$(node_field "$i" leader)
            if [ -z "$l" ] || [ "$l" = none ] || { [ -n "$first" ] && [ "$l" != "$first" ]; }; then
                agree=0
                break
            fi
            first=$l
        done
        if [ "$agree" -eq 1 ] && [ -n "$first" ]; then
            for ((i = 0; i < N; i++)); do
                if [ "${NODE_ID[i]}" = "$first" ] && [ "${NODE_STATE[i]}" = up ] &&
                    [ "$(node_field "$i" role)" = leader ]; then
                    echo "$i"
                    return 0
                fi
            done
        fi
        sleep 0.1
    done
    return 1
}

# Nodes that died while they should run: log it (a crash is a finding),
# keep the log, restart them. Returns 1 if there was one.
node_check_crashes() {
    local i rc found=0
    for ((i = 0; i < N; i++)); do
        [ "${NODE_STATE[i]}" = down ] && continue
        node_alive "$i" && continue
        wait "${NODE_PID[i]}" 2>/dev/null
        rc=$?
        log_event "CRASH node $i exited on its own (status $rc)"
        echo "node $i exited on its own (status $rc)" >>"$RUN/crashes"
        NODE_STATE[i]=down
        if [ "${STORE:-disk}" = mem ]; then
            log_event "node $i keeps its raft state in memory: it stays down"
        else
            node_start "$i"
        fi
        found=1
    done
    return "$found"
}
