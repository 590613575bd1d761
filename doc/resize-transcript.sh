#!/usr/bin/env bash
# A 3 -> 5 -> 3 resize under a write loop, printed as a terminal session.
export PATH=$(cd "$(dirname "$0")/.." && pwd)/build:$PATH  # run it in an empty directory
run() { echo "\$ $*"; eval "$@"; }
for i in 1 2 3 4 5; do p2praft keygen -o k$i >/dev/null; ID[$i]=$(p2praft id -k k$i); MA[$i]=/ip4/127.0.0.1/tcp/$((47200+i))/p2p/${ID[$i]}; done
start() { i=$1; shift; p2praft node --key k$i --data-dir d$i --listen /ip4/127.0.0.1/tcp/$((47200+i)) "$@" >out$i 2>err$i & echo $! >pid$i; until grep -q ready out$i; do sleep 0.05; done; }
for i in 1 2 3; do p=(); for j in 1 2 3; do [ $j = $i ] || p+=(--peer ${MA[$j]}); done; start $i --bootstrap "${p[@]}"; done
until p2praft peers --data-dir d1 ls >/dev/null 2>&1; do sleep 0.1; done
# the writer: one write after another through node 1, acknowledged ones logged
( n=0; while [ ! -f stop ]; do p2praft kv --data-dir d1 set w$n $n >/dev/null 2>&1 && echo w$n >>acked; n=$((n+1)); done ) &
W=$!
echo "# three members, a writer running through node 1"
run p2praft peers --data-dir d2 ls
echo "# grow to five: add each member first, then start it empty with --join"
run p2praft peers --data-dir d2 add ${MA[4]}
echo "\$ p2praft node --key k4 --data-dir d4 --listen /ip4/127.0.0.1/tcp/47204 --join ${MA[1]} --join ... &"
start 4 --join ${MA[1]} --join ${MA[2]} --join ${MA[3]}
run p2praft peers --data-dir d3 add ${MA[5]}
echo "\$ p2praft node --key k5 --data-dir d5 --listen /ip4/127.0.0.1/tcp/47205 --join ... &"
start 5 --join ${MA[1]} --join ${MA[2]} --join ${MA[3]} --join ${MA[4]}
until [ "$(p2praft peers --data-dir d1 ls | grep -c ' voter ')" = 5 ]; do sleep 0.1; done
run p2praft peers --data-dir d1 ls
grep -h "joined\|caught up" err4 | sed 's/^/  node 4 log: /'
echo "# move leadership to node 5, then shrink back to three"
run p2praft peers --data-dir d1 transfer ${ID[5]}
run p2praft peers --data-dir d1 rm ${ID[5]}
kill -TERM $(cat pid4); while kill -0 $(cat pid4) 2>/dev/null; do sleep 0.05; done
echo "\$ kill -TERM <node 4>; p2praft node --key k4 --data-dir d4 --listen /ip4/127.0.0.1/tcp/47204 --leave"
p2praft node --key k4 --data-dir d4 --listen /ip4/127.0.0.1/tcp/47204 --leave 2>&1 | grep -v "^listen\|^api\|^peer_id\|^ready" | cut -c1-160
run p2praft peers --data-dir d2 --json ls
# node 5, removed by peers rm, stops by itself: one line, exit status 8
while kill -0 $(cat pid5) 2>/dev/null; do sleep 0.05; done; wait $(cat pid5); st=$?
grep -h "removed from" err5 | cut -c1-150 | sed 's/^/  node 5 log: /'
echo "  node 5 exited with status $st"
touch stop; wait $W
echo "# every acknowledged write is there"
echo "\$ for k in \$(cat acked); do p2praft kv --data-dir d3 get --consistent \$k; done | wc -l; wc -l < acked"
for k in $(cat acked); do p2praft kv --data-dir d3 get --consistent $k; done | wc -l; wc -l < acked
for i in 1 2 3; do kill -TERM $(cat pid$i); done; wait
