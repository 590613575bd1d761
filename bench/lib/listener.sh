# Shell helpers shared by the host benches (sourced, not run).
# start_listener CMD: starts CMD (a p2praft or go-libp2p listener) with its
# output in $out/listen.{out,err}; sets lpid and lma (the first
# /ip4/127.0.0.1 address it prints). Fails after 60 s without one.
start_listener() {
    local log="$out/listen"
    lma=""
    : >"$log.out"
    bash -c "exec $1" >"$log.out" 2>"$log.err" &
    lpid=$!
    local deadline=$((SECONDS + 60))
    while [ $SECONDS -lt $deadline ] && kill -0 "$lpid" 2>/dev/null; do
        lma="$(grep -m1 -E '^/ip4/127\.0\.0\.1/tcp/[0-9]+/p2p/' "$log.out" || true)"
        [ -n "$lma" ] && return 0
        sleep 0.05
    done
    echo "$(basename "$0"): listener '$1' printed no address: $(cat "$log.err")"
    return 1
}

stop_listener() {
    kill -TERM "$lpid" 2>/dev/null
    { wait "$lpid"; } 2>/dev/null
}
