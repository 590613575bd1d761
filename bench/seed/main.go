// Command seedbench runs go-libp2p-raft v0.5.0's Example_consensus workload
// (three raft nodes over three go-libp2p hosts in one process) and measures
// it, as the baseline that p2praft is compared against (issue 5, "Benchmarks
// against the seed").
//
// One invocation = one fresh cluster = one repetition. Phases, in order:
//
//	leader    time from creating the raft instances until one is leader
//	seq       the example's 1000 sequential CommitState calls on the leader
//	          (prints the example's "Performed N updates" and "RaftN final
//	          state" lines; waits for every node to apply instead of sleeping)
//	conc      64 goroutines committing 128-byte ops on the leader for -dur,
//	          once through CommitState and once through raw raft.Apply
//	failover  shut down the leader's raft, transport and host; time until a
//	          write commits again on one of the two survivors
//
// Results are printed as machine-readable lines
//
//	seed <mode> <metric> <value> <unit>
//
// where mode is the -store value plus "-tuned" with -timeouts=tuned.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb"
	"github.com/libp2p/go-libp2p"
	libp2praft "github.com/libp2p/go-libp2p-raft"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/ugorji/go/codec"
)

// raftState is the example's state. Pad is empty (and omitted from the
// encoding) in the example phase, so those log entries are byte-identical to
// the example's; the concurrent phase fills it to make 128-byte entries.
type raftState struct {
	Value int
	Pad   []byte `codec:",omitempty"`
}

type node struct {
	name      string
	host      host.Host
	transport *raft.NetworkTransport
	raft      *raft.Raft
	cons      *libp2praft.Consensus
	actor     *libp2praft.Actor
	closers   []io.Closer
	dead      bool
}

var (
	flagStore    = flag.String("store", "mem", "log/stable store: mem (raft.InmemStore, as the example) or bolt (raft-boltdb on disk)")
	flagTimeouts = flag.String("timeouts", "default", "raft timeouts: default (raft.DefaultConfig, as the example) or tuned (heartbeat/election 100 ms)")
	flagDir      = flag.String("dir", "", "parent directory for bolt stores and snapshots (default: system temp dir)")
	flagUpdates  = flag.Int("updates", 1000, "sequential CommitState calls (the example does 1000)")
	flagConc     = flag.Int("conc", 64, "concurrent committers")
	flagDur      = flag.Duration("dur", 3*time.Second, "duration of each concurrent phase")
	flagOpSize   = flag.Int("opsize", 128, "encoded size of one concurrent-phase log entry, bytes")
	flagQuiet    = flag.Bool("quiet", false, "do not print the example's progress lines")
)

var mode string

func result(metric string, value float64, unit string) {
	fmt.Printf("seed %s %s %.6g %s\n", mode, metric, value, unit)
}

func fatalf(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "seedbench: "+format+"\n", args...)
	os.Exit(1)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.999999) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return sorted[i]
}

func raftConfig(h host.Host) *raft.Config {
	c := raft.DefaultConfig()
	c.LogOutput = io.Discard
	c.Logger = nil
	c.LocalID = raft.ServerID(h.ID().String())
	if *flagTimeouts == "tuned" {
		c.HeartbeatTimeout = 100 * time.Millisecond
		c.ElectionTimeout = 100 * time.Millisecond
		c.LeaderLeaseTimeout = 100 * time.Millisecond
	}
	return c
}

func newHost() host.Host {
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		fatalf("libp2p.New: %v", err)
	}
	return h
}

// stores returns the log store, stable store and snapshot store of one node.
func stores(n *node, dir string) (raft.LogStore, raft.StableStore, raft.SnapshotStore) {
	if *flagStore == "mem" {
		s := raft.NewInmemStore()
		return s, s, raft.NewInmemSnapshotStore()
	}
	d := filepath.Join(dir, n.name)
	if err := os.MkdirAll(d, 0o700); err != nil {
		fatalf("mkdir: %v", err)
	}
	b, err := raftboltdb.NewBoltStore(filepath.Join(d, "raft.db"))
	if err != nil {
		fatalf("bolt: %v", err)
	}
	n.closers = append(n.closers, b)
	snaps, err := raft.NewFileSnapshotStore(d, 3, io.Discard)
	if err != nil {
		fatalf("snapshots: %v", err)
	}
	return b, b, snaps
}

func leaderOf(nodes []*node) *node {
	for _, n := range nodes {
		if !n.dead && n.raft.State() == raft.Leader {
			return n
		}
	}
	return nil
}

func waitLeader(nodes []*node, timeout time.Duration) *node {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if l := leaderOf(nodes); l != nil {
			return l
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

// waitApplied waits until every live node has applied at least index.
func waitApplied(nodes []*node, index uint64, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		ok := true
		for _, n := range nodes {
			if !n.dead && n.raft.AppliedIndex() < index {
				ok = false
			}
		}
		if ok {
			return true
		}
		time.Sleep(time.Millisecond)
	}
	return false
}

func stateValue(n *node) (int, error) {
	st, err := n.cons.GetCurrentState()
	if err != nil {
		return 0, err
	}
	return st.(*raftState).Value, nil
}

// encodedSize is the size of the log entry CommitState writes for s
// (go-libp2p-raft encodes the state with ugorji msgpack defaults).
func encodedSize(s *raftState) int {
	var b bytes.Buffer
	if err := codec.NewEncoder(&b, &codec.MsgpackHandle{}).Encode(s); err != nil {
		fatalf("encode: %v", err)
	}
	return b.Len()
}

// paddedState returns a state whose encoding is exactly size bytes for any
// Value in [0, 2^31) (Value is encoded as a 5-byte int32 at most; we size the
// pad for the largest form and values in the phase stay large).
func paddedState(value, size int) *raftState {
	s := &raftState{Value: value, Pad: []byte{}}
	base := encodedSize(&raftState{Value: value, Pad: []byte{1}}) - 1
	pad := size - base
	if pad < 1 {
		pad = 1
	}
	s.Pad = bytes.Repeat([]byte{'x'}, pad)
	for encodedSize(s) > size && len(s.Pad) > 1 {
		s.Pad = s.Pad[:len(s.Pad)-1]
	}
	return s
}

func main() {
	flag.Parse()
	if *flagStore != "mem" && *flagStore != "bolt" {
		fatalf("-store must be mem or bolt")
	}
	if *flagTimeouts != "default" && *flagTimeouts != "tuned" {
		fatalf("-timeouts must be default or tuned")
	}
	mode = *flagStore
	if *flagTimeouts == "tuned" {
		mode += "-tuned"
	}
	libp2praft.SetStateTimeout = time.Second // the library default, stated

	dir := ""
	if *flagStore == "bolt" {
		var err error
		dir, err = os.MkdirTemp(*flagDir, "seedbench-")
		if err != nil {
			fatalf("temp dir: %v", err)
		}
		defer os.RemoveAll(dir)
	}
	code := run(dir)
	if dir != "" {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

func run(dir string) int {
	nodes := make([]*node, 3)
	for i := range nodes {
		nodes[i] = &node{name: fmt.Sprintf("Raft%d", i+1), host: newHost()}
	}
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				a.host.Peerstore().AddAddrs(b.host.ID(), b.host.Addrs(), peerstore.PermanentAddrTTL)
			}
		}
	}
	var servers []raft.Server
	for _, n := range nodes {
		servers = append(servers, raft.Server{
			Suffrage: raft.Voter,
			ID:       raft.ServerID(n.host.ID().String()),
			Address:  raft.ServerAddress(n.host.ID().String()),
		})
	}
	cfg := raft.Configuration{Servers: servers}

	type prepared struct {
		conf   *raft.Config
		logs   raft.LogStore
		stable raft.StableStore
		snaps  raft.SnapshotStore
	}
	preps := make([]prepared, 3)
	for i, n := range nodes {
		n.cons = libp2praft.NewConsensus(&raftState{Value: 3})
		t, err := libp2praft.NewLibp2pTransport(n.host, time.Minute)
		if err != nil {
			fatalf("transport: %v", err)
		}
		n.transport = t
		conf := raftConfig(n.host)
		logs, stable, snaps := stores(n, dir)
		if err := raft.BootstrapCluster(conf, logs, stable, snaps, t, cfg.Clone()); err != nil {
			fatalf("bootstrap: %v", err)
		}
		preps[i] = prepared{conf, logs, stable, snaps}
	}

	// (c) time to first leader: from creating the first raft instance.
	start := time.Now()
	for i, n := range nodes {
		r, err := raft.NewRaft(preps[i].conf, n.cons.FSM(), preps[i].logs, preps[i].stable, preps[i].snaps, n.transport)
		if err != nil {
			fatalf("NewRaft: %v", err)
		}
		n.raft = r
		n.actor = libp2praft.NewActor(r)
		n.cons.SetActor(n.actor)
	}
	leader := waitLeader(nodes, 30*time.Second)
	if leader == nil {
		fatalf("no leader within 30 s")
	}
	result("first_leader", ms(time.Since(start)), "ms")

	status := 0
	leader, err := phaseSequential(nodes, leader)
	if err != nil {
		fmt.Fprintf(os.Stderr, "seedbench: sequential phase: %v\n", err)
		status = 1
	}
	if status == 0 {
		if err := phaseConcurrent(nodes, leader); err != nil {
			fmt.Fprintf(os.Stderr, "seedbench: concurrent phase: %v\n", err)
			status = 1
		}
	}
	if status == 0 {
		if err := phaseFailover(nodes); err != nil {
			fmt.Fprintf(os.Stderr, "seedbench: failover phase: %v\n", err)
			status = 1
		}
	}
	for _, n := range nodes {
		shutdownNode(n)
	}
	return status
}

func shutdownNode(n *node) {
	if n.dead {
		return
	}
	n.dead = true
	n.raft.Shutdown().Error()
	n.transport.Close()
	n.host.Close()
	for _, c := range n.closers {
		c.Close()
	}
}

// retryable tells whether a commit failed only because leadership moved
// (or the leader's apply queue stayed full for SetStateTimeout): the
// committer then waits for the current leader and goes on. With 100 ms
// timeouts on a loaded 2-core machine the seed does lose leadership under
// load; the retries are counted and printed.
func retryable(err error) bool {
	return errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) ||
		errors.Is(err, raft.ErrLeadershipTransferInProgress) || errors.Is(err, raft.ErrEnqueueTimeout) ||
		strings.Contains(err.Error(), "not the leader")
}

// phaseSequential is the example's updateState loop, timed per call (a
// call's time includes any retries on a new leader).
func phaseSequential(nodes []*node, leader *node) (*node, error) {
	lat := make([]time.Duration, 0, *flagUpdates)
	var last int
	retries := 0
	start := time.Now()
	for nUpdates := 0; nUpdates < *flagUpdates; {
		t0 := time.Now()
		agreed, err := leader.cons.CommitState(&raftState{Value: nUpdates * 2})
		for err != nil && retryable(err) && time.Since(t0) < 30*time.Second {
			retries++
			if l := waitLeader(nodes, 30*time.Second); l != nil {
				leader = l
			}
			agreed, err = leader.cons.CommitState(&raftState{Value: nUpdates * 2})
		}
		if err != nil {
			return leader, err
		}
		if agreed == nil {
			return leader, errors.New("agreedState is nil: commited on a non-leader?")
		}
		lat = append(lat, time.Since(t0))
		last = agreed.(*raftState).Value
		nUpdates++
		if nUpdates%200 == 0 && !*flagQuiet {
			fmt.Printf("Performed %d updates. Current state value: %d\n", nUpdates, last)
		}
	}
	total := time.Since(start)
	// Instead of the example's 5 s sleep: wait until every node applied.
	if !waitApplied(nodes, leader.raft.AppliedIndex(), 30*time.Second) {
		return leader, errors.New("followers did not apply within 30 s")
	}
	for _, n := range nodes {
		v, err := stateValue(n)
		if err != nil {
			return leader, err
		}
		if !*flagQuiet {
			fmt.Printf("%s final state: %d\n", n.name, v)
		}
		if v != last {
			return leader, fmt.Errorf("%s final state %d, leader agreed %d", n.name, v, last)
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	result("seq1000_total", ms(total), "ms")
	result("seq_commit_p50", float64(percentile(lat, 0.50))/1e3, "us")
	result("seq_commit_p99", float64(percentile(lat, 0.99))/1e3, "us")
	result("seq_ops", float64(len(lat))/total.Seconds(), "ops/s")
	result("seq_retries", float64(retries), "count")
	return leader, nil
}

// phaseConcurrent runs -conc committers on the leader for -dur, first with
// CommitState, then with raw raft.Apply of the same 128-byte entries. Only
// successful commits count; committers follow leadership changes.
func phaseConcurrent(nodes []*node, leader *node) error {
	tmpl := paddedState(1<<30, *flagOpSize)
	var enc bytes.Buffer
	if err := codec.NewEncoder(&enc, &codec.MsgpackHandle{}).Encode(tmpl); err != nil {
		return err
	}
	entry := enc.Bytes()
	result("op_size", float64(len(entry)), "bytes")

	var cur atomic.Pointer[node]
	cur.Store(leader)
	for _, how := range []string{"commitstate", "apply"} {
		var ok, retries, failed atomic.Int64
		var firstErr atomic.Value
		deadline := time.Now().Add(*flagDur)
		var wg sync.WaitGroup
		start := time.Now()
		for g := 0; g < *flagConc; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for i := 0; time.Now().Before(deadline); i++ {
					l := cur.Load()
					var err error
					if how == "commitstate" {
						s := &raftState{Value: 1<<30 + g<<16 + i, Pad: tmpl.Pad}
						_, err = l.cons.CommitState(s)
					} else {
						err = l.raft.Apply(entry, libp2praft.SetStateTimeout).Error()
					}
					if err == nil {
						ok.Add(1)
						continue
					}
					if !retryable(err) {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, err)
						return
					}
					retries.Add(1)
					time.Sleep(time.Millisecond)
					if nl := leaderOf(nodes); nl != nil {
						cur.Store(nl)
					}
				}
			}(g)
		}
		wg.Wait()
		elapsed := time.Since(start)
		if failed.Load() > 0 {
			return fmt.Errorf("%s: %d commits failed, first: %v", how, failed.Load(), firstErr.Load())
		}
		result(fmt.Sprintf("conc%d_%s_ops", *flagConc, how), float64(ok.Load())/elapsed.Seconds(), "ops/s")
		result(fmt.Sprintf("conc%d_%s_retries", *flagConc, how), float64(retries.Load()), "count")
	}
	l := waitLeader(nodes, 30*time.Second)
	if l == nil {
		return errors.New("no leader after the concurrent phase")
	}
	if !waitApplied(nodes, l.raft.AppliedIndex(), 60*time.Second) {
		return errors.New("followers did not catch up after the concurrent phase")
	}
	return nil
}

// phaseFailover kills the leader (raft, transport and host), then times
// until a CommitState succeeds on whichever survivor becomes leader.
func phaseFailover(nodes []*node) error {
	old := leaderOf(nodes)
	if old == nil {
		return errors.New("no leader before failover")
	}
	start := time.Now()
	shutdownNode(old)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	value := 7777777
	var newLeader *node
	for newLeader == nil {
		if ctx.Err() != nil {
			return errors.New("no write committed within 60 s of killing the leader")
		}
		l := leaderOf(nodes)
		if l == nil {
			time.Sleep(time.Millisecond)
			continue
		}
		if _, err := l.cons.CommitState(&raftState{Value: value}); err != nil {
			time.Sleep(time.Millisecond)
			continue
		}
		newLeader = l
	}
	result("failover", ms(time.Since(start)), "ms")
	if !waitApplied(nodes, newLeader.raft.AppliedIndex(), 30*time.Second) {
		return errors.New("survivor did not apply the post-failover write")
	}
	// hashicorp/raft may count an entry applied once it hands it to the FSM
	// goroutine, before the FSM has run it: a survivor's state may lag its
	// applied index for a moment, so wait for the value (bounded).
	deadline := time.Now().Add(10 * time.Second)
	for _, n := range nodes {
		if n.dead {
			continue
		}
		for {
			v, err := stateValue(n)
			if err == nil && v == value {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s after failover: value %d, err %v", n.name, v, err)
			}
			time.Sleep(time.Millisecond)
		}
	}
	return nil
}
