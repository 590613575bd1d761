package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb"
	"github.com/libp2p/go-libp2p"
	consensus "github.com/libp2p/go-libp2p-consensus"
	libp2praft "github.com/libp2p/go-libp2p-raft"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"
)

// raftState is the seed example's state (Example_consensus): CommitState
// entries are its msgpack encoding, {"Value": n}.
type raftState struct {
	Value int
}

// msgState, appendOp and badOp are the seed test suite's OpLog types
// (TestOpLog's raftState{Msg} and testOperation{Append}, TestBadApplyAt's
// badOp), so the same workload can run against p2praft.
type msgState struct {
	Msg string
}

type appendOp struct {
	Append string
}

func (o *appendOp) ApplyTo(s consensus.State) (consensus.State, error) {
	st := s.(*msgState)
	return &msgState{Msg: st.Msg + o.Append}, nil
}

type badOp struct{}

func (b *badOp) ApplyTo(s consensus.State) (consensus.State, error) {
	return nil, errors.New("whops")
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

type nodeOpts struct {
	key, control, store, dir, mode, record, logLevel string
	listen, peers, nonvoters, staging                multiFlag
	bootstrap, prevote                               bool
	heartbeat, election, lease, commitTimeout        time.Duration
	rpcTimeout, snapInterval                         time.Duration
	snapThreshold, trailingLogs, maxAppend           uint64
}

// node is one running raft node and what the control interface needs.
type node struct {
	opts  *nodeOpts
	host  host.Host
	tap   *recordingHost
	trans *raft.NetworkTransport
	raft  *raft.Raft
	cons  *libp2praft.Consensus
	actor *libp2praft.Actor
	close []io.Closer
	quit  chan struct{}
}

func versions() string {
	out := []string{}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			switch d.Path {
			case "github.com/hashicorp/raft", "github.com/libp2p/go-libp2p-raft",
				"github.com/libp2p/go-libp2p", "github.com/hashicorp/go-msgpack/v2":
				v := d.Version
				if d.Replace != nil {
					v = d.Replace.Version
				}
				out = append(out, d.Path+"@"+v)
			}
		}
		out = append(out, bi.GoVersion)
	}
	return strings.Join(out, " ")
}

func raftVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/hashicorp/raft" {
				return d.Version
			}
		}
	}
	return "unknown"
}

func loadKey(path string) (crypto.PrivKey, error) {
	if path == "" {
		k, _, err := crypto.GenerateEd25519Key(rand.Reader)
		return k, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := crypto.UnmarshalPrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: not a MarshalPrivateKey key file: %v", path, err)
	}
	return k, nil
}

// parsePeer splits /ip4/.../tcp/N/p2p/ID into the peer ID and its address.
func parsePeer(s string) (*peer.AddrInfo, error) {
	m, err := ma.NewMultiaddr(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", s, err)
	}
	ai, err := peer.AddrInfoFromP2pAddr(m)
	if err != nil {
		return nil, fmt.Errorf("%s: %v (a peer is /ip4/A/tcp/P/p2p/ID)", s, err)
	}
	return ai, nil
}

func runNode(args []string) int {
	o := &nodeOpts{}
	def := raft.DefaultConfig()
	fs := flag.NewFlagSet("node", flag.ExitOnError)
	fs.StringVar(&o.key, "key", "", "key file (go-libp2p MarshalPrivateKey format, as `p2praft keygen` writes); default a fresh key")
	fs.Var(&o.listen, "listen", "listen multiaddr (repeatable; default /ip4/127.0.0.1/tcp/0)")
	fs.Var(&o.peers, "peer", "a peer's multiaddr with /p2p/ID (repeatable); with -bootstrap each is a voter")
	fs.Var(&o.nonvoters, "nonvoter", "with -bootstrap: a peer multiaddr bootstrapped as Nonvoter (repeatable)")
	fs.Var(&o.staging, "staging", "with -bootstrap: a peer multiaddr bootstrapped as Staging (repeatable)")
	fs.BoolVar(&o.bootstrap, "bootstrap", false, "bootstrap the cluster: self and every -peer as voters (raft.BootstrapCluster)")
	fs.StringVar(&o.control, "control", "", "also serve the control interface on this unix socket")
	fs.StringVar(&o.store, "store", "mem", "mem (raft.InmemStore + InmemSnapshotStore, as the seed) or bolt (raft-boltdb + FileSnapshotStore under -dir)")
	fs.StringVar(&o.dir, "dir", "", "data directory for -store bolt")
	fs.StringVar(&o.mode, "mode", "consensus", "consensus (NewConsensus(raftState{Value})), oplog (NewOpLog(msgState{Msg}, appendOp{Append})), oplog-bad (ops always fail ApplyTo) or kv (p2praft node's key-value store: kv.go)")
	fs.StringVar(&o.record, "record", "", "record every raft stream this node opens (both directions) under this directory")
	fs.StringVar(&o.logLevel, "log", "warn", "hashicorp/raft log level: trace, debug, info, warn, error, off")
	fs.BoolVar(&o.prevote, "prevote", true, "pre-vote (hashicorp/raft 1.7 builds only; ignored by 1.6.1, which has none)")
	fs.DurationVar(&o.heartbeat, "heartbeat", def.HeartbeatTimeout, "raft HeartbeatTimeout")
	fs.DurationVar(&o.election, "election", def.ElectionTimeout, "raft ElectionTimeout")
	fs.DurationVar(&o.lease, "lease", def.LeaderLeaseTimeout, "raft LeaderLeaseTimeout")
	fs.DurationVar(&o.commitTimeout, "commit-timeout", def.CommitTimeout, "raft CommitTimeout")
	fs.DurationVar(&o.rpcTimeout, "rpc-timeout", time.Minute, "NewLibp2pTransport timeout (the seed example uses a minute)")
	fs.DurationVar(&o.snapInterval, "snapshot-interval", def.SnapshotInterval, "raft SnapshotInterval")
	fs.Uint64Var(&o.snapThreshold, "snapshot-threshold", def.SnapshotThreshold, "raft SnapshotThreshold")
	fs.Uint64Var(&o.trailingLogs, "trailing-logs", def.TrailingLogs, "raft TrailingLogs")
	fs.Uint64Var(&o.maxAppend, "max-append", uint64(def.MaxAppendEntries), "raft MaxAppendEntries")
	fs.Parse(args)
	if fs.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "raftnode node: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	n, err := startNode(o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "raftnode: %v\n", err)
		return 1
	}
	return n.serve()
}

func startNode(o *nodeOpts) (*node, error) {
	switch o.mode {
	case "consensus", "oplog", "oplog-bad", "kv":
	default:
		return nil, fmt.Errorf("-mode must be consensus, oplog, oplog-bad or kv")
	}
	if o.store != "mem" && o.store != "bolt" {
		return nil, fmt.Errorf("-store must be mem or bolt")
	}
	if o.store == "bolt" && o.dir == "" {
		return nil, fmt.Errorf("-store bolt needs -dir")
	}
	key, err := loadKey(o.key)
	if err != nil {
		return nil, err
	}
	listen := []string(o.listen)
	if len(listen) == 0 {
		listen = []string{"/ip4/127.0.0.1/tcp/0"}
	}
	h, err := libp2p.New(libp2p.Identity(key), libp2p.ListenAddrStrings(listen...))
	if err != nil {
		return nil, fmt.Errorf("libp2p.New: %v", err)
	}
	n := &node{opts: o, host: h, quit: make(chan struct{})}
	var servers []raft.Server
	self := h.ID().String()
	servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(self), Address: raft.ServerAddress(self)})
	addPeers := func(list []string, suffrage raft.ServerSuffrage) error {
		for _, s := range list {
			ai, err := parsePeer(s)
			if err != nil {
				return err
			}
			h.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.PermanentAddrTTL)
			id := ai.ID.String()
			servers = append(servers, raft.Server{Suffrage: suffrage, ID: raft.ServerID(id), Address: raft.ServerAddress(id)})
		}
		return nil
	}
	if err := addPeers(o.peers, raft.Voter); err != nil {
		return nil, err
	}
	if err := addPeers(o.nonvoters, raft.Nonvoter); err != nil {
		return nil, err
	}
	if err := addPeers(o.staging, raft.Staging); err != nil {
		return nil, err
	}

	// The transport is go-libp2p-raft's own. It is given a host whose raft
	// streams can be tapped (-record) or refused ("deaf on"); record.go.
	if o.record != "" {
		if err := os.MkdirAll(o.record, 0o755); err != nil {
			return nil, err
		}
	}
	n.tap = newRecordingHost(h, o.record)
	n.trans, err = libp2praft.NewLibp2pTransport(n.tap, o.rpcTimeout)
	if err != nil {
		return nil, fmt.Errorf("transport: %v", err)
	}

	conf := raft.DefaultConfig()
	conf.LocalID = raft.ServerID(self)
	conf.HeartbeatTimeout = o.heartbeat
	conf.ElectionTimeout = o.election
	conf.LeaderLeaseTimeout = o.lease
	conf.CommitTimeout = o.commitTimeout
	conf.SnapshotInterval = o.snapInterval
	conf.SnapshotThreshold = o.snapThreshold
	conf.TrailingLogs = o.trailingLogs
	conf.MaxAppendEntries = int(o.maxAppend)
	if o.logLevel == "off" {
		conf.LogOutput = io.Discard
	} else {
		conf.Logger = hclog.New(&hclog.LoggerOptions{
			Name: "raft " + shortID(self), Level: hclog.LevelFromString(o.logLevel), Output: os.Stderr,
		})
	}
	setPreVote(conf, o.prevote)

	var logs raft.LogStore
	var stable raft.StableStore
	var snaps raft.SnapshotStore
	if o.store == "mem" {
		s := raft.NewInmemStore()
		logs, stable, snaps = s, s, raft.NewInmemSnapshotStore()
	} else {
		if err := os.MkdirAll(o.dir, 0o700); err != nil {
			return nil, err
		}
		b, err := raftboltdb.NewBoltStore(filepath.Join(o.dir, "raft.db"))
		if err != nil {
			return nil, fmt.Errorf("bolt: %v", err)
		}
		n.close = append(n.close, b)
		logs, stable = b, b
		snaps, err = raft.NewFileSnapshotStore(o.dir, 3, os.Stderr)
		if err != nil {
			return nil, fmt.Errorf("snapshots: %v", err)
		}
	}

	switch o.mode {
	case "consensus":
		n.cons = libp2praft.NewConsensus(&raftState{Value: 3})
	case "oplog":
		n.cons = libp2praft.NewOpLog(&msgState{}, &appendOp{})
	case "oplog-bad":
		n.cons = libp2praft.NewOpLog(&msgState{}, &badOp{})
	case "kv":
		n.cons = libp2praft.NewOpLog(&kvState{}, &kvOp{})
	}

	if o.bootstrap {
		has, err := raft.HasExistingState(logs, stable, snaps)
		if err != nil {
			return nil, err
		}
		if !has {
			cfg := raft.Configuration{Servers: servers}
			if err := raft.BootstrapCluster(conf, logs, stable, snaps, n.trans, cfg); err != nil {
				return nil, fmt.Errorf("bootstrap: %v", err)
			}
		}
	}
	n.raft, err = raft.NewRaft(conf, n.cons.FSM(), logs, stable, snaps, n.trans)
	if err != nil {
		return nil, fmt.Errorf("NewRaft: %v", err)
	}
	n.actor = libp2praft.NewActor(n.raft)
	n.cons.SetActor(n.actor)
	return n, nil
}

func shortID(id string) string {
	if len(id) > 6 {
		return id[len(id)-6:]
	}
	return id
}

func (n *node) addrs() []string {
	var out []string
	for _, a := range n.host.Addrs() {
		out = append(out, a.String()+"/p2p/"+n.host.ID().String())
	}
	return out
}

// serve prints the node's identity, then serves the control interface on
// stdin/stdout (and the -control socket) until "shutdown", EOF on stdin when
// there is no socket, or SIGINT/SIGTERM.
func (n *node) serve() int {
	fmt.Printf("id %s\n", n.host.ID())
	for _, a := range n.addrs() {
		fmt.Printf("listen %s\n", a)
	}
	if n.opts.control != "" {
		if err := n.listenControl(n.opts.control); err != nil {
			fmt.Fprintf(os.Stderr, "raftnode: control socket: %v\n", err)
			n.shutdown()
			return 1
		}
	}
	fmt.Printf("ready %s %s\n", raftVersion(), n.opts.mode)
	stdinDone := make(chan struct{})
	go func() {
		n.serveConn(os.Stdin, os.Stdout)
		close(stdinDone)
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	if n.opts.control == "" {
		select {
		case <-stdinDone:
		case <-n.quit:
		case <-sig:
		}
	} else {
		select {
		case <-n.quit:
		case <-sig:
		}
	}
	n.shutdown()
	return 0
}

func (n *node) shutdown() {
	if n.raft != nil {
		n.raft.Shutdown().Error()
	}
	if n.trans != nil {
		n.trans.Close()
	}
	n.host.Close()
	for _, c := range n.close {
		c.Close()
	}
	if n.opts.control != "" {
		os.Remove(n.opts.control)
	}
}

// waitFor polls cond every 5 ms until it holds or the timeout passes.
func waitFor(timeout time.Duration, cond func() bool) bool {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		if cond() {
			return true
		}
		select {
		case <-ctx.Done():
			return cond()
		case <-t.C:
		}
	}
}
