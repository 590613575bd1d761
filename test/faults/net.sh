# The fault harness's network (sourced by test/faults/run.sh).
#
# Each node i runs in its own network namespace p2pf<i>. Every pair of
# nodes (i, j) is joined by its own veth pair: "to<j>" inside p2pf<i>,
# "to<i>" inside p2pf<j>, on its own /24, so that any set of links can be
# taken down on its own: a majority/minority split, or a bridge node that
# still sees both sides while they no longer see each other. There is no
# routing between links, so a message never goes around a cut link. The
# client runs in p2pfc (no links: it reaches the nodes' AF_UNIX API
# sockets through the shared filesystem).
#
# Everything this creates is named p2pf*, and tmpfs mounts have the source
# "p2pf-tmpfs", so that net_leftovers can find and remove what a killed run
# left behind.

FAULTS_NS_PREFIX=p2pf
FAULTS_TMPFS_SOURCE=p2pf-tmpfs
FAULTS_PORT=4001

ns_of() { echo "${FAULTS_NS_PREFIX}$1"; }

# Node i's address on its link to node j.
addr_of() {
    local i=$1 j=$2 lo hi
    if [ "$i" -lt "$j" ]; then lo=$i; hi=$j; else lo=$j; hi=$i; fi
    echo "10.77.$((lo * 10 + hi)).$([ "$i" -eq "$lo" ] && echo 1 || echo 2)"
}

# Remove the namespaces (and their processes), links and mounts of an
# earlier run. Prints what it removed.
net_leftovers() {
    local ns pid m found=0
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${FAULTS_NS_PREFIX}([0-9]+|c)$"); do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill -9 "$pid" 2>/dev/null
        done
        ip netns del "$ns" && echo "faults: removed leftover namespace $ns"
        found=1
    done
    while read -r m; do
        [ -n "$m" ] || continue
        umount -l "$m" && echo "faults: removed leftover tmpfs $m"
        found=1
    done < <(awk -v s="$FAULTS_TMPFS_SOURCE" '$1 == s {print $2}' /proc/mounts)
    return 0
}

# Create the namespaces and the full mesh of n nodes, all links up.
net_setup() {
    local n=$1 i j
    for ((i = 0; i < n; i++)); do
        ip netns add "$(ns_of "$i")" || return 1
        ip -n "$(ns_of "$i")" link set lo up || return 1
    done
    ip netns add "$(ns_of c)" || return 1
    for ((i = 0; i < n; i++)); do
        for ((j = i + 1; j < n; j++)); do
            ip link add name "to$j" netns "$(ns_of "$i")" type veth \
                peer name "to$i" netns "$(ns_of "$j")" || return 1
            ip -n "$(ns_of "$i")" addr add "$(addr_of "$i" "$j")/24" dev "to$j" || return 1
            ip -n "$(ns_of "$j")" addr add "$(addr_of "$j" "$i")/24" dev "to$i" || return 1
            ip -n "$(ns_of "$i")" link set "to$j" up || return 1
            ip -n "$(ns_of "$j")" link set "to$i" up || return 1
        done
    done
}

# Delete the namespaces (which deletes their veths); kill what runs there.
net_teardown() {
    local n=$1 i ns pid
    for i in $(seq 0 $((n - 1))) c; do
        ns=$(ns_of "$i")
        ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$ns" || continue
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill -9 "$pid" 2>/dev/null
        done
        ip netns del "$ns"
    done
}

# link_set i j up|down: the link between nodes i and j. Taking one end
# down takes the carrier away from both.
link_set() {
    ip -n "$(ns_of "$1")" link set "to$2" "$3"
    ip -n "$(ns_of "$2")" link set "to$1" "$3"
}

# Cut every link between the nodes in group A and those in group B
# (space-separated indexes).
net_cut() {
    local a b
    for a in $1; do
        for b in $2; do
            link_set "$a" "$b" down
        done
    done
}

# Every link up.
net_heal() {
    local n=$1 i j
    for ((i = 0; i < n; i++)); do
        for ((j = i + 1; j < n; j++)); do
            link_set "$i" "$j" up
        done
    done
}

# Which links are down, for the log ("0-2 1-2" or "none").
net_down_links() {
    local n=$1 i j out=""
    for ((i = 0; i < n; i++)); do
        for ((j = i + 1; j < n; j++)); do
            if ! ip -n "$(ns_of "$i")" link show "to$j" | grep -q "state UP"; then
                out="$out $i-$j"
            fi
        done
    done
    echo "${out:- none}"
}
