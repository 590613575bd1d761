package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	consensus "github.com/libp2p/go-libp2p-consensus"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
)

const helpText = `commands (one per line; reply "ok ..." or "err <message>"):
  id | addrs | version | help
  status                       state leader term last_index commit_index applied_index last_snapshot
  leader                       leader peer ID, or "none"
  config                       latest configuration: ID=voter|nonvoter|staging ... (then @ADDRESS
                               when a server's address is not its ID)
  state                        GetCurrentState as JSON, or err (no state / inconsistent)
  (V and S run to the end of the line; a Go-quoted "..." keeps outer spaces)
  commit-state V               CommitState: raftState{Value:V} (consensus mode) or msgState{Msg:V} (oplog modes)
  commit-op S                  CommitOp(appendOp{Append:S}) (oplog) or CommitOp(badOp{}) (oplog-bad)
  rollback V                   Rollback to the state V (as commit-state)
  example N                    the seed example's loop: CommitState(raftState{Value: 2i}) for i < N,
                               printing "Performed i updates..." every 200 to stderr; replies the last
                               agreed Value (1998 for N = 1000)
  barrier                      raft.Barrier (a LogBarrier entry)
  add-voter ID|MA [PREV]       AddVoter (a multiaddr with /p2p/ID also goes into the peerstore)
  add-nonvoter ID|MA [PREV]    AddNonvoter
  demote ID | remove ID        DemoteVoter | RemoveServer
  transfer [ID]                LeadershipTransfer (to ID with LeadershipTransferToServer)
  snapshot                     take a snapshot; prints its index and term
  set-snapshot THRESHOLD INTERVAL TRAILING   raft.ReloadConfig (e.g. set-snapshot 16 1s 4)
  bootstrap [SUFFRAGE:]MA...    raft.BootstrapCluster on the running node: self as voter plus each peer
                               (SUFFRAGE voter (default), nonvoter or staging); fails if it has state
  peer-add MA                  add a peer address to the peerstore
  deaf on|off                  reset inbound raft streams at once (a one-way partition), or stop
  wait-leader TIMEOUT          until some leader is known (this node's view)
  wait-state-leader TIMEOUT    until this node is leader
  wait-applied INDEX TIMEOUT   until this node applied INDEX
  stats                        raft.Stats()
  (-mode kv: p2praft node's key-value store)
  get KEY                      the value, Go-quoted, or "err not found"
  kv-dump                      every key and value in byte order: {"key":K,"value":V} ...
                               (as p2praft kv --json ls prints them, space-separated)
  kv-seq                       seq=N keys=K (N: ops applied, as kv.c counts them)
  state                        {"Seq":N,"Ok":B,"Data":[{"key":K,"value":V},...]}
  kv-set KEY VALUE | kv-del KEY | kv-cas KEY OLD NEW   CommitOp; replies seq=N ok=true|false
  shutdown                     stop the node (graceful) and exit 0`

func (n *node) listenControl(path string) error {
	os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		return err
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				n.serveConn(c, c)
			}()
		}
	}()
	return nil
}

func (n *node) serveConn(r io.Reader, w io.Writer) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		reply, quit := n.command(strings.Fields(line), line)
		fmt.Fprintln(w, reply)
		if quit {
			close(n.quit)
			return
		}
	}
}

func okf(format string, args ...interface{}) string { return "ok " + fmt.Sprintf(format, args...) }
func errf(err error) string {
	return "err " + strings.ReplaceAll(err.Error(), "\n", " ")
}

func suffrageName(s raft.ServerSuffrage) string {
	switch s {
	case raft.Voter:
		return "voter"
	case raft.Nonvoter:
		return "nonvoter"
	case raft.Staging:
		return "staging"
	}
	return strconv.Itoa(int(s))
}

func stateJSON(st consensus.State) string {
	if st == nil {
		return "null"
	}
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Sprintf("%q", err.Error())
	}
	return string(b)
}

// argRest is everything after the command word (states may hold spaces);
// a Go-quoted string ("I have ") keeps leading and trailing spaces.
func argRest(line, cmd string) string {
	s := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), cmd))
	if strings.HasPrefix(s, `"`) {
		if u, err := strconv.Unquote(s); err == nil {
			return u
		}
	}
	return s
}

func (n *node) stateArg(s string) (consensus.State, error) {
	if n.opts.mode == "kv" {
		return nil, fmt.Errorf("kv mode: write with kv-set, kv-del, kv-cas")
	}
	if n.opts.mode == "consensus" {
		v, err := strconv.Atoi(s)
		if err != nil {
			return nil, fmt.Errorf("consensus mode: the state is an integer Value")
		}
		return &raftState{Value: v}, nil
	}
	return &msgState{Msg: s}, nil
}

// serverArg takes a peer ID or a multiaddr ending in /p2p/ID (whose
// address is then added to the peerstore).
func (n *node) serverArg(s string) (raft.ServerID, error) {
	if strings.HasPrefix(s, "/") {
		ai, err := parsePeer(s)
		if err != nil {
			return "", err
		}
		n.host.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.PermanentAddrTTL)
		return raft.ServerID(ai.ID.String()), nil
	}
	if _, err := peer.Decode(s); err != nil {
		return "", fmt.Errorf("%s: not a peer ID: %v", s, err)
	}
	return raft.ServerID(s), nil
}

const futureTimeout = 10 * time.Second

func (n *node) command(f []string, line string) (string, bool) {
	r := n.raft
	if n.opts.mode == "kv" {
		if reply, handled := n.kvCommand(f, line); handled {
			return reply, false
		}
	}
	need := func(k int) bool { return len(f) >= k+1 }
	switch f[0] {
	case "help":
		return "ok " + strings.ReplaceAll(helpText, "\n", " | "), false
	case "id":
		return okf("%s", n.host.ID()), false
	case "addrs":
		return okf("%s", strings.Join(n.addrs(), " ")), false
	case "version":
		return okf("%s", versions()), false
	case "status":
		addr, _ := r.LeaderWithID()
		leader := string(addr)
		if leader == "" {
			leader = "none"
		}
		snapIdx, snapTerm := lastSnapshot(r)
		return okf("state=%s leader=%s term=%s last_index=%d commit_index=%s applied_index=%d last_snapshot=%d/%d",
			r.State(), leader, r.Stats()["term"], r.LastIndex(), r.Stats()["commit_index"], r.AppliedIndex(), snapIdx, snapTerm), false
	case "leader":
		addr, _ := r.LeaderWithID()
		if addr == "" {
			return "ok none", false
		}
		return okf("%s", addr), false
	case "config":
		fut := r.GetConfiguration()
		if err := fut.Error(); err != nil {
			return errf(err), false
		}
		var parts []string
		for _, s := range fut.Configuration().Servers {
			part := fmt.Sprintf("%s=%s", s.ID, suffrageName(s.Suffrage))
			if string(s.Address) != string(s.ID) {
				// go-libp2p-raft dials the Address as a peer ID: this
				// server is unreachable from here.
				part += "@" + string(s.Address)
			}
			parts = append(parts, part)
		}
		return okf("%s", strings.Join(parts, " ")), false
	case "state":
		st, err := n.cons.GetCurrentState()
		if err != nil {
			return errf(err), false
		}
		return okf("%s", stateJSON(st)), false
	case "commit-state", "rollback":
		st, err := n.stateArg(argRest(line, f[0]))
		if err != nil {
			return errf(err), false
		}
		if f[0] == "rollback" {
			if err := n.cons.Rollback(st); err != nil {
				return errf(err), false
			}
			return "ok", false
		}
		agreed, err := n.cons.CommitState(st)
		if err != nil {
			return errf(err), false
		}
		return okf("%s", stateJSON(agreed)), false
	case "example":
		if n.opts.mode != "consensus" || !need(1) {
			return "err usage: example N (consensus mode)", false
		}
		count, err := strconv.Atoi(f[1])
		if err != nil {
			return errf(err), false
		}
		last := 0
		for i := 0; i < count; i++ {
			agreed, err := n.cons.CommitState(&raftState{Value: i * 2})
			if err != nil {
				return fmt.Sprintf("err after %d updates: %v", i, err), false
			}
			if agreed == nil {
				return fmt.Sprintf("err after %d updates: agreed state is nil", i), false
			}
			last = agreed.(*raftState).Value
			if (i+1)%200 == 0 {
				fmt.Fprintf(os.Stderr, "Performed %d updates. Current state value: %d\n", i+1, last)
			}
		}
		return okf("%d", last), false
	case "commit-op":
		var op consensus.Op
		switch n.opts.mode {
		case "oplog":
			op = &appendOp{Append: argRest(line, f[0])}
		case "oplog-bad":
			op = &badOp{}
		default:
			return "err commit-op needs -mode oplog or oplog-bad", false
		}
		agreed, err := n.cons.CommitOp(op)
		if err != nil {
			return errf(err), false
		}
		return okf("%s", stateJSON(agreed)), false
	case "barrier":
		if err := r.Barrier(futureTimeout).Error(); err != nil {
			return errf(err), false
		}
		return okf("index=%d", r.LastIndex()), false
	case "add-voter", "add-nonvoter", "demote", "remove":
		if !need(1) {
			return "err usage: " + f[0] + " ID|MA [PREV_INDEX]", false
		}
		id, err := n.serverArg(f[1])
		if err != nil {
			return errf(err), false
		}
		var prev uint64
		if need(2) {
			if prev, err = strconv.ParseUint(f[2], 10, 64); err != nil {
				return errf(err), false
			}
		}
		var fut raft.IndexFuture
		switch f[0] {
		case "add-voter":
			fut = r.AddVoter(id, raft.ServerAddress(id), prev, futureTimeout)
		case "add-nonvoter":
			fut = r.AddNonvoter(id, raft.ServerAddress(id), prev, futureTimeout)
		case "demote":
			fut = r.DemoteVoter(id, prev, futureTimeout)
		default:
			fut = r.RemoveServer(id, prev, futureTimeout)
		}
		if err := fut.Error(); err != nil {
			return errf(err), false
		}
		return okf("index=%d", fut.Index()), false
	case "transfer":
		var fut raft.Future
		if need(1) {
			id, err := n.serverArg(f[1])
			if err != nil {
				return errf(err), false
			}
			fut = r.LeadershipTransferToServer(id, raft.ServerAddress(id))
		} else {
			fut = r.LeadershipTransfer()
		}
		if err := fut.Error(); err != nil {
			return errf(err), false
		}
		return "ok", false
	case "snapshot":
		fut := r.Snapshot()
		if err := fut.Error(); err != nil {
			return errf(err), false
		}
		meta, rc, err := fut.Open()
		if err != nil {
			return errf(err), false
		}
		rc.Close()
		return okf("index=%d term=%d size=%d", meta.Index, meta.Term, meta.Size), false
	case "set-snapshot":
		if !need(3) {
			return "err usage: set-snapshot THRESHOLD INTERVAL TRAILING", false
		}
		th, err1 := strconv.ParseUint(f[1], 10, 64)
		iv, err2 := time.ParseDuration(f[2])
		tr, err3 := strconv.ParseUint(f[3], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			return "err usage: set-snapshot THRESHOLD INTERVAL TRAILING (e.g. 16 1s 4)", false
		}
		rc := r.ReloadableConfig()
		rc.SnapshotThreshold, rc.SnapshotInterval, rc.TrailingLogs = th, iv, tr
		if err := r.ReloadConfig(rc); err != nil {
			return errf(err), false
		}
		return "ok", false
	case "bootstrap":
		self := raft.ServerID(n.host.ID().String())
		servers := []raft.Server{{Suffrage: raft.Voter, ID: self, Address: raft.ServerAddress(self)}}
		for _, a := range f[1:] {
			suffrage := raft.Voter
			if i := strings.Index(a, ":"); i > 0 && !strings.HasPrefix(a, "/") {
				switch a[:i] {
				case "voter":
				case "nonvoter":
					suffrage = raft.Nonvoter
				case "staging":
					suffrage = raft.Staging
				default:
					return fmt.Sprintf("err bad suffrage %q", a[:i]), false
				}
				a = a[i+1:]
			}
			id, err := n.serverArg(a)
			if err != nil {
				return errf(err), false
			}
			servers = append(servers, raft.Server{Suffrage: suffrage, ID: id, Address: raft.ServerAddress(id)})
		}
		if err := r.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
			return errf(err), false
		}
		return "ok", false
	case "deaf":
		if !need(1) || (f[1] != "on" && f[1] != "off") {
			return "err usage: deaf on|off", false
		}
		n.tap.setDeaf(f[1] == "on")
		return "ok", false
	case "peer-add":
		if !need(1) {
			return "err usage: peer-add MA", false
		}
		if _, err := n.serverArg(f[1]); err != nil {
			return errf(err), false
		}
		return "ok", false
	case "wait-leader", "wait-state-leader":
		d, err := durArg(f, 1)
		if err != nil {
			return errf(err), false
		}
		ok := waitFor(d, func() bool {
			if f[0] == "wait-state-leader" {
				return r.State() == raft.Leader
			}
			addr, _ := r.LeaderWithID()
			return addr != ""
		})
		if !ok {
			return "err timed out", false
		}
		addr, _ := r.LeaderWithID()
		return okf("%s", addr), false
	case "wait-applied":
		if !need(1) {
			return "err usage: wait-applied INDEX TIMEOUT", false
		}
		idx, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			return errf(err), false
		}
		d, err := durArg(f, 2)
		if err != nil {
			return errf(err), false
		}
		if !waitFor(d, func() bool { return r.AppliedIndex() >= idx }) {
			return fmt.Sprintf("err timed out at applied_index=%d", r.AppliedIndex()), false
		}
		return okf("applied_index=%d", r.AppliedIndex()), false
	case "stats":
		var parts []string
		for k, v := range r.Stats() {
			parts = append(parts, k+"="+strings.ReplaceAll(v, " ", "_"))
		}
		return okf("%s", strings.Join(parts, " ")), false
	case "shutdown":
		return "ok", true
	}
	return fmt.Sprintf("err unknown command %q (try help)", f[0]), false
}

func durArg(f []string, i int) (time.Duration, error) {
	if len(f) <= i {
		return 10 * time.Second, nil
	}
	return time.ParseDuration(f[i])
}

func lastSnapshot(r *raft.Raft) (uint64, uint64) {
	s := r.Stats()
	idx, _ := strconv.ParseUint(s["last_snapshot_index"], 10, 64)
	term, _ := strconv.ParseUint(s["last_snapshot_term"], 10, 64)
	return idx, term
}

// runCtl is the client side: one command over the unix socket.
func runCtl(args []string) int {
	fs := flag.NewFlagSet("ctl", flag.ExitOnError)
	sock := fs.String("sock", "", "the node's -control socket")
	timeout := fs.Duration("timeout", 60*time.Second, "give up after this long")
	fs.Parse(args)
	if *sock == "" || fs.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: raftnode ctl -sock PATH CMD [ARG...]")
		return 2
	}
	c, err := net.DialTimeout("unix", *sock, *timeout)
	if err != nil {
		fmt.Fprintf(os.Stderr, "raftnode ctl: %v\n", err)
		return 2
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(*timeout))
	if _, err := fmt.Fprintln(c, strings.Join(fs.Args(), " ")); err != nil {
		fmt.Fprintf(os.Stderr, "raftnode ctl: %v\n", err)
		return 2
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		fmt.Fprintf(os.Stderr, "raftnode ctl: no reply: %v\n", err)
		return 2
	}
	line = strings.TrimRight(line, "\n")
	fmt.Println(line)
	if line == "ok" || strings.HasPrefix(line, "ok ") {
		return 0
	}
	return 1
}
