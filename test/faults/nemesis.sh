# The fault harness's nemeses (sourced by test/faults/run.sh, after net.sh
# and cluster.sh). Each nemesis_<name> runs one cycle: inject the fault,
# hold it, heal it, and leave the cluster a moment to recover; run.sh calls
# it until the run's time is up. The hold and rest times are random
# (bash's $RANDOM, seeded per run) within the ranges below; the 150-300 ms
# election timeout of `p2praft node` is well inside every hold.
#
#   kill-leader         kill -9 the leader, restart it 1-3 s later
#   kill-majority       kill -9 a majority (the leader among them half of
#                       the time), restart them 1-3 s later
#   pause-leader        SIGSTOP the leader for 1-3 s, then SIGCONT
#   partition-majority  cut a minority off (holding the leader half of the
#                       time) for 2-5 s
#   partition-bridge    one node keeps its links to everyone while the rest
#                       split in two halves that cannot see each other
#                       (3 nodes: A-B-C with A-C cut), for 3-6 s
#   disk-full           fill the data tmpfs of the leader, then of a
#                       follower, then of every node, in turn, for 2-4 s;
#                       then free it
#   membership          remove a member (the leader half of the time) with
#                       `p2praft peers rm`, stop it (once it learns, it
#                       exits by itself, status 8), wipe its data, add it
#                       back with `p2praft peers add` and start it empty
#                       with --join; wait (30 s at most) until it is a
#                       voter again, then rest 1-3 s. The workload keeps
#                       sending to it throughout.

NEMESES="kill-leader kill-majority pause-leader partition-majority partition-bridge disk-full membership"

# Record which nodes are under a fault of their own from now on (killed,
# paused, cut off from the leader's side, disk full); none without
# arguments. The checker gives the write latency of the other nodes apart:
# a request sent to a healthy node should be served while others fail.
mark_faulted() {
    echo "$EPOCHREALTIME FAULTED $*" >>"$RUN/nemesis.log"
}

# A random duration in seconds, between $1 and $2 ms, for sleep.
rand_s() {
    local ms=$(($1 + RANDOM % ($2 - $1 + 1)))
    printf '%d.%03d' $((ms / 1000)) $((ms % 1000))
}

# The nodes 0..N-1 in a random order, one per line.
shuffled() {
    local i j t a=()
    for ((i = 0; i < N; i++)); do a[i]=$i; done
    for ((i = N - 1; i > 0; i--)); do
        j=$((RANDOM % (i + 1)))
        t=${a[i]}; a[i]=${a[j]}; a[j]=$t
    done
    printf '%s\n' "${a[@]}"
}

# TARGET := the leader, or a random running node when there is none;
# TARGET_WHY says which, for the nemesis log. (No subshell: it sets both.)
pick_target() {
    local i
    TARGET=$(cluster_leader)
    TARGET_WHY="the leader"
    if [ -z "$TARGET" ]; then
        TARGET_WHY="no leader: a random node"
        for i in $(shuffled); do
            TARGET=$i
            [ "${NODE_STATE[i]}" = up ] && break
        done
    fi
}

# k nodes at random; with $2 = yes, the leader is one of them.
pick_nodes() {
    local k=$1 with_leader=$2 l out="" i
    l=$(cluster_leader)
    if [ "$with_leader" = yes ] && [ -n "$l" ]; then
        out=$l
        k=$((k - 1))
    fi
    for i in $(shuffled); do
        [ "$k" -gt 0 ] || break
        [ "$i" = "$l" ] && continue
        out="$out $i"
        k=$((k - 1))
    done
    echo $out
}

# The nodes not in the list $1.
others_of() {
    local i out=""
    for ((i = 0; i < N; i++)); do
        case " $1 " in *" $i "*) ;; *) out="$out $i" ;; esac
    done
    echo $out
}

coin() { [ $((RANDOM % 2)) -eq 0 ] && echo yes || echo no; }

nemesis_kill-leader() {
    pick_target
    log_event "kill -9 node $TARGET ($TARGET_WHY)"
    mark_faulted "$TARGET"
    node_kill "$TARGET"
    sleep "$(rand_s 1000 3000)"
    log_event "restart node $TARGET"
    node_start "$TARGET"
    mark_faulted
    sleep "$(rand_s 2000 4000)"
}

nemesis_kill-majority() {
    local set i
    set=$(pick_nodes $((N / 2 + 1)) "$(coin)")
    log_event "kill -9 nodes $set (leader was $(cluster_leader))"
    mark_faulted $set
    for i in $set; do node_kill "$i"; done
    sleep "$(rand_s 1000 3000)"
    log_event "restart nodes $set"
    for i in $set; do node_start "$i"; done
    mark_faulted
    sleep "$(rand_s 3000 5000)"
}

nemesis_pause-leader() {
    local l
    pick_target
    l=$TARGET
    log_event "SIGSTOP node $l ($TARGET_WHY)"
    mark_faulted "$l"
    node_pause "$l"
    sleep "$(rand_s 1000 3000)"
    log_event "SIGCONT node $l"
    node_resume "$l"
    mark_faulted
    sleep "$(rand_s 2000 4000)"
}

nemesis_partition-majority() {
    local minority majority
    minority=$(pick_nodes $(((N - 1) / 2)) "$(coin)")
    majority=$(others_of "$minority")
    log_event "partition: {$minority } | {$majority } (leader was $(cluster_leader))"
    mark_faulted $minority
    net_cut "$minority" "$majority"
    sleep "$(rand_s 2000 5000)"
    log_event "heal (links down were:$(net_down_links "$N"))"
    net_heal "$N"
    mark_faulted
    sleep "$(rand_s 2000 4000)"
}

nemesis_partition-bridge() {
    local order bridge rest left="" right="" i k=0 l cut=""
    order=$(shuffled)
    l=$(cluster_leader)
    # the leader is the bridge half of the time
    if [ "$(coin)" = yes ] && [ -n "$l" ]; then
        bridge=$l
    else
        bridge=$(echo "$order" | head -n 1)
    fi
    rest=$(others_of "$bridge")
    for i in $rest; do
        if [ $((k % 2)) -eq 0 ]; then left="$left $i"; else right="$right $i"; fi
        k=$((k + 1))
    done
    log_event "bridge: {$left } - $bridge - {$right } (leader was $l)"
    # cut off from the leader: the half it is not in
    case " $left " in *" $l "*) cut=$right ;; esac
    case " $right " in *" $l "*) cut=$left ;; esac
    mark_faulted $cut
    net_cut "$left" "$right"
    sleep "$(rand_s 3000 6000)"
    log_event "heal (links down were:$(net_down_links "$N"))"
    net_heal "$N"
    mark_faulted
    sleep "$(rand_s 2000 4000)"
}

# `p2praft peers` through node $1's API (10 s bound); prints its output.
peers_via() {
    local via=$1
    shift
    "$CLI" peers --api "$(node_api "$via")" --timeout-ms 10000 "$@" 2>&1
}

# The role node $2 has in the configuration, asked through node $1 ("" when
# it is not a member, or no answer).
peers_role() {
    peers_via "$1" ls | awk -v id="${NODE_ID[$2]}" '$1 == id {print $2}'
}

nemesis_membership() {
    local x via l out rc deadline role
    if [ "$(coin)" = yes ] && [ -n "$(cluster_leader)" ]; then
        x=$(cluster_leader)
        TARGET_WHY="the leader"
    else
        x=$(pick_nodes 1 no)
        TARGET_WHY="a follower"
    fi
    via=$(others_of "$x" | tr ' ' '\n' | grep -v '^$' | head -n 1)
    mark_faulted "$x"
    out=$(peers_via "$via" rm "${NODE_ID[x]}")
    rc=$?
    log_event "peers rm node $x ($TARGET_WHY) via node $via: exit $rc: $out"
    if [ "$rc" -ne 0 ] && [ -n "$(peers_role "$via" "$x")" ]; then
        log_event "node $x is still a member: skipping the cycle"
        mark_faulted
        sleep "$(rand_s 1000 3000)"
        return
    fi
    node_stop "$x" # it may have exited already: removed, status 8
    rm -rf "$(node_dir "$x")"/data/*
    log_event "node $x stopped, its data wiped"
    l=$(cluster_leader)
    [ -n "$l" ] || l=$via
    deadline=$((SECONDS + 30))
    while :; do
        out=$(peers_via "$via" add "/ip4/$(addr_of "$x" "$l")/tcp/$FAULTS_PORT/p2p/${NODE_ID[x]}")
        rc=$?
        # exit 5 "already a member": an earlier attempt went through
        { [ "$rc" -eq 0 ] || [ -n "$(peers_role "$via" "$x")" ]; } && break
        if [ "$SECONDS" -ge "$deadline" ]; then
            log_event "peers add node $x failed for 30 s: $out"
            break
        fi
        sleep 0.2
    done
    log_event "peers add node $x via node $via: exit $rc: $out"
    node_start "$x" join
    deadline=$((SECONDS + 30))
    role=""
    while [ "$SECONDS" -lt "$deadline" ]; do
        role=$(peers_role "$via" "$x")
        [ "$role" = voter ] && break
        sleep 0.1
    done
    log_event "node $x rejoined: ${role:-not a member} ($((30 - deadline + SECONDS)) s)"
    mark_faulted
    sleep "$(rand_s 1000 3000)"
}

DISK_CYCLE=0
nemesis_disk-full() {
    local set i
    DISK_CYCLE=$((DISK_CYCLE + 1))
    case $((DISK_CYCLE % 3)) in
    0)
        set=$(others_of "")
        TARGET_WHY="every node"
        ;;
    1)
        pick_target
        set=$TARGET
        ;;
    2)
        set=$(pick_nodes 1 no)
        TARGET_WHY="a follower"
        ;;
    esac
    for i in $set; do
        # dd stops at ENOSPC; what matters is that the disk is full
        dd if=/dev/zero of="$(node_dir "$i")/data/fill" bs=64k 2>/dev/null
    done
    mark_faulted $set
    log_event "disk full on nodes $set ($TARGET_WHY; $(df --output=avail -k "$(node_dir "${set%% *}")/data" | tail -n 1 | tr -d ' ') KiB left on the first)"
    sleep "$(rand_s 2000 4000)"
    for i in $set; do
        rm -f "$(node_dir "$i")/data/fill"
    done
    log_event "disk freed on nodes $set"
    mark_faulted
    sleep "$(rand_s 2000 4000)"
}
