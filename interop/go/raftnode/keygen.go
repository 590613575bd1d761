package main

import (
	"crypto/rand"
	"flag"
	"fmt"
	"os"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// runKeygen writes a fresh Ed25519 key in go-libp2p's MarshalPrivateKey
// format (what `p2praft keygen` writes) and prints its peer ID.
func runKeygen(args []string) int {
	fs := flag.NewFlagSet("keygen", flag.ExitOnError)
	out := fs.String("o", "", "key file to write (never overwritten)")
	fs.Parse(args)
	if *out == "" {
		fmt.Fprintln(os.Stderr, "usage: raftnode keygen -o FILE")
		return 2
	}
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err == nil {
		var b []byte
		if b, err = crypto.MarshalPrivateKey(k); err == nil {
			var f *os.File
			if f, err = os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
				_, err = f.Write(b)
				if cerr := f.Close(); err == nil {
					err = cerr
				}
			}
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "raftnode keygen: %v\n", err)
		return 1
	}
	id, _ := peer.IDFromPrivateKey(k)
	fmt.Println(id)
	return 0
}
