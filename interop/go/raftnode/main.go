// Command raftnode is one real go-libp2p-raft v0.5.0 node (hashicorp/raft as
// its go.mod pins it, or hashicorp/raft 1.7.x when built with -tags raft17
// and -modfile=go17.mod) with a line-oriented control interface, for
// p2praft's interop tests and for capturing hashicorp's wire bytes.
//
//	raftnode node [flags]          run a node (see -h)
//	raftnode ctl -sock PATH CMD... send one control command, print the reply
//	raftnode split -in DIR -out DIR   turn recorded raft streams into vectors
//	raftnode synth -out DIR        encode synthetic messages with hashicorp's
//	                               own encoder (forms a live cluster rarely sends)
//
// The control protocol is one command per line, one reply line per command:
// "ok ..." or "err <message>". It is served on stdin/stdout, and on a unix
// socket with -control PATH. See README.md for the commands.
package main

import (
	"fmt"
	"os"
)

func usage() {
	fmt.Fprint(os.Stderr, `usage:
  raftnode node [flags]                 run one go-libp2p-raft node (raftnode node -h)
  raftnode ctl -sock PATH CMD [ARG...]  send one control command to a node, print the reply
                                        (exit 0 on "ok", 1 on "err", 2 if unreachable)
  raftnode split -in DIR -out DIR       cut streams recorded with node -record into vectors
  raftnode synth -out DIR               encode synthetic messages with hashicorp's encoder
  raftnode keygen -o FILE               write an Ed25519 key (MarshalPrivateKey format), print its peer ID
  raftnode version                      print the raft and go-libp2p-raft versions built in
`)
	os.Exit(2)
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	args := os.Args[2:]
	switch os.Args[1] {
	case "node":
		os.Exit(runNode(args))
	case "ctl":
		os.Exit(runCtl(args))
	case "split":
		os.Exit(runSplit(args))
	case "synth":
		os.Exit(runSynth(args))
	case "keygen":
		os.Exit(runKeygen(args))
	case "version":
		fmt.Println(versions())
	default:
		usage()
	}
}
