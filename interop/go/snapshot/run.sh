#!/usr/bin/env bash
# Cross-language snapshot check: a snapshot written by go-libp2p-raft v0.5.0
# (EncodeSnapshot) and one written by p2praft (p2praft_encode_snapshot) for
# the same values must be byte-identical, and each side must decode both to
# the same values (compared in a canonical text form). Exits non-zero on
# any mismatch.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
out="$root/build/interop/snapshot"
mkdir -p "$out"

make -C "$root" --no-print-directory build/libp2praft.a >/dev/null
(cd "$here" && GOFLAGS=-mod=readonly GOTOOLCHAIN="${GOTOOLCHAIN:-auto}" go build -o "$out/snapshot-go" .)
cc -std=c11 -D_GNU_SOURCE -O1 -Wall -Wextra -I"$root/include" \
   -o "$out/snapcheck" "$here/c/snapcheck.c" "$root/build/libp2praft.a" \
   $(pkg-config --libs libuv libcrypto raft 2>/dev/null) -lpthread -lm

"$out/snapshot-go" write "$out/go.snap"
"$out/snapcheck" write "$out/c.snap"
"$out/snapcheck" print-fixed > "$out/want.txt"
"$out/snapshot-go" print-fixed > "$out/want-go.txt"

fail=0
check() { # name file
    if ! diff -u "$out/want.txt" "$2" >"$out/$1.diff"; then
        echo "FAIL $1"; cat "$out/$1.diff"; fail=1
    else
        echo "ok   $1"
    fi
}
check "fixed values agree (Go vs C canonical text)" "$out/want-go.txt"
if cmp -s "$out/go.snap" "$out/c.snap"; then
    echo "ok   snapshots byte-identical ($(wc -c <"$out/c.snap") bytes)"
else
    echo "FAIL snapshots differ"; xxd "$out/go.snap"; xxd "$out/c.snap"; fail=1
fi
"$out/snapshot-go" read "$out/c.snap" > "$out/go-reads-c.txt" || fail=1
"$out/snapcheck" read "$out/go.snap" > "$out/c-reads-go.txt" || fail=1
"$out/snapshot-go" read "$out/go.snap" > "$out/go-reads-go.txt" || fail=1
"$out/snapcheck" read "$out/c.snap" > "$out/c-reads-c.txt" || fail=1
check "Go decodes the C snapshot" "$out/go-reads-c.txt"
check "C decodes the Go snapshot" "$out/c-reads-go.txt"
check "Go round trip" "$out/go-reads-go.txt"
check "C round trip" "$out/c-reads-c.txt"
exit $fail
