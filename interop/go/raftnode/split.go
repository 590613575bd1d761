package main

// raftnode split: cut the streams recorded by `node -record` into one file
// per message kind, for test/vectors/hashicorp/.
//
// A recorded stream is the bytes one node wrote (<base>.w: requests, each an
// rpc type byte then a msgpack request, InstallSnapshot followed by the
// snapshot bytes) and read (<base>.r: responses, each a msgpack error
// string then a msgpack response), in order. Message boundaries are found
// by walking the msgpack (mpLen); each message is decoded with hashicorp's
// own decoder (go-msgpack v2, as NetworkTransport does) only to classify it
// and to describe it in index.txt. The bytes written out are exactly the
// recorded ones.

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/raft"
)

const (
	rpcAppendEntries   = 0
	rpcRequestVote     = 1
	rpcInstallSnapshot = 2
	rpcTimeoutNow      = 3
	rpcRequestPreVote  = 4
)

var errShort = errors.New("truncated msgpack")

// mpLen returns the length of the msgpack object at the start of b.
func mpLen(b []byte) (int, error) {
	pos, pending := 0, 1
	need := func(n int) error {
		if pos+n > len(b) {
			return errShort
		}
		return nil
	}
	be := func(n int) int {
		v := 0
		for i := 0; i < n; i++ {
			v = v<<8 | int(b[pos+i])
		}
		return v
	}
	for pending > 0 {
		pending--
		if err := need(1); err != nil {
			return 0, err
		}
		c := b[pos]
		pos++
		var skip, items int
		switch {
		case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		case c >= 0x80 && c <= 0x8f:
			items = 2 * int(c&0x0f)
		case c >= 0x90 && c <= 0x9f:
			items = int(c & 0x0f)
		case c >= 0xa0 && c <= 0xbf:
			skip = int(c & 0x1f)
		case c == 0xc4 || c == 0xd9 || c == 0xc7:
			if err := need(1); err != nil {
				return 0, err
			}
			skip = be(1)
			pos++
			if c == 0xc7 {
				skip++
			}
		case c == 0xc5 || c == 0xda || c == 0xc8:
			if err := need(2); err != nil {
				return 0, err
			}
			skip = be(2)
			pos += 2
			if c == 0xc8 {
				skip++
			}
		case c == 0xc6 || c == 0xdb || c == 0xc9:
			if err := need(4); err != nil {
				return 0, err
			}
			skip = be(4)
			pos += 4
			if c == 0xc9 {
				skip++
			}
		case c == 0xcc || c == 0xd0:
			skip = 1
		case c == 0xcd || c == 0xd1:
			skip = 2
		case c == 0xca || c == 0xce || c == 0xd2:
			skip = 4
		case c == 0xcb || c == 0xcf || c == 0xd3:
			skip = 8
		case c >= 0xd4 && c <= 0xd8:
			skip = 1 + []int{1, 2, 4, 8, 16}[c-0xd4]
		case c == 0xdc:
			if err := need(2); err != nil {
				return 0, err
			}
			items = be(2)
			pos += 2
		case c == 0xdd:
			if err := need(4); err != nil {
				return 0, err
			}
			items = be(4)
			pos += 4
		case c == 0xde:
			if err := need(2); err != nil {
				return 0, err
			}
			items = 2 * be(2)
			pos += 2
		case c == 0xdf:
			if err := need(4); err != nil {
				return 0, err
			}
			items = 2 * be(4)
			pos += 4
		default:
			return 0, fmt.Errorf("invalid msgpack byte 0x%02x", c)
		}
		if err := need(skip); err != nil {
			return 0, err
		}
		pos += skip
		pending += items
	}
	return pos, nil
}

func decodeInto(b []byte, v interface{}) error {
	return codec.NewDecoderBytes(b, &codec.MsgpackHandle{}).Decode(v)
}

type capturedMsg struct {
	rpc      int
	req      []byte // type byte + msgpack request
	data     []byte // InstallSnapshot payload
	resp     []byte // msgpack error string + msgpack response (nil if none)
	reqVal   interface{}
	respVal  interface{}
	errStr   string
	origin   string
	sequence int
}

func newReq(rpc int) (interface{}, error) {
	switch rpc {
	case rpcAppendEntries:
		return &raft.AppendEntriesRequest{}, nil
	case rpcRequestVote:
		return &raft.RequestVoteRequest{}, nil
	case rpcInstallSnapshot:
		return &raft.InstallSnapshotRequest{}, nil
	case rpcTimeoutNow:
		return &raft.TimeoutNowRequest{}, nil
	case rpcRequestPreVote:
		return newPreVoteRequest()
	}
	return nil, fmt.Errorf("unknown rpc type %d", rpc)
}

func newResp(rpc int) (interface{}, error) {
	switch rpc {
	case rpcAppendEntries:
		return &raft.AppendEntriesResponse{}, nil
	case rpcRequestVote:
		return &raft.RequestVoteResponse{}, nil
	case rpcInstallSnapshot:
		return &raft.InstallSnapshotResponse{}, nil
	case rpcTimeoutNow:
		return &raft.TimeoutNowResponse{}, nil
	case rpcRequestPreVote:
		return newPreVoteResponse()
	}
	return nil, fmt.Errorf("unknown rpc type %d", rpc)
}

// parseStream cuts one recorded stream into its messages.
func parseStream(w, r []byte, origin string) ([]*capturedMsg, error) {
	var msgs []*capturedMsg
	for pos := 0; pos < len(w); {
		m := &capturedMsg{rpc: int(w[pos]), origin: origin, sequence: len(msgs)}
		n, err := mpLen(w[pos+1:])
		if err != nil {
			return msgs, fmt.Errorf("request %d: %v", len(msgs), err)
		}
		m.req = w[pos : pos+1+n]
		if m.reqVal, err = newReq(m.rpc); err != nil {
			return msgs, err
		}
		if err := decodeInto(w[pos+1:pos+1+n], m.reqVal); err != nil {
			return msgs, fmt.Errorf("request %d: %v", len(msgs), err)
		}
		pos += 1 + n
		if is, ok := m.reqVal.(*raft.InstallSnapshotRequest); ok {
			if pos+int(is.Size) > len(w) {
				return msgs, fmt.Errorf("snapshot data truncated")
			}
			m.data = w[pos : pos+int(is.Size)]
			pos += int(is.Size)
		}
		msgs = append(msgs, m)
	}
	pos := 0
	for _, m := range msgs {
		n1, err := mpLen(r[pos:])
		if err != nil {
			break // the stream ended before this response
		}
		n2, err := mpLen(r[pos+n1:])
		if err != nil {
			break
		}
		m.resp = r[pos : pos+n1+n2]
		if err := decodeInto(r[pos:pos+n1], &m.errStr); err != nil {
			return msgs, fmt.Errorf("response error string: %v", err)
		}
		if m.respVal, err = newResp(m.rpc); err != nil {
			return msgs, err
		}
		if err := decodeInto(r[pos+n1:pos+n1+n2], m.respVal); err != nil {
			return msgs, fmt.Errorf("response: %v", err)
		}
		pos += n1 + n2
	}
	if pos != len(r) && msgs != nil && msgs[len(msgs)-1].resp != nil {
		return msgs, fmt.Errorf("%d unexpected bytes after the responses", len(r)-pos)
	}
	return msgs, nil
}

func suffrageTag(s raft.ServerSuffrage) string {
	return "config-" + suffrageName(s)
}

// entryKinds lists the kinds of entries in an AppendEntries, in order of
// first appearance.
func entryKinds(req *raft.AppendEntriesRequest) []string {
	var kinds []string
	seen := map[string]bool{}
	add := func(k string) {
		if !seen[k] {
			seen[k] = true
			kinds = append(kinds, k)
		}
	}
	for _, e := range req.Entries {
		switch e.Type {
		case raft.LogCommand:
			add("command")
		case raft.LogNoop:
			add("noop")
		case raft.LogBarrier:
			add("barrier")
		case raft.LogConfiguration:
			for _, s := range raft.DecodeConfiguration(e.Data).Servers {
				add(suffrageTag(s.Suffrage))
			}
		default:
			add(fmt.Sprintf("type%d", e.Type))
		}
	}
	return kinds
}

// classes are the vector classes a message can stand for; a message is
// kept when it is the first of one of its classes.
func classes(m *capturedMsg) []string {
	var out []string
	switch req := m.reqVal.(type) {
	case *raft.AppendEntriesRequest:
		resp, _ := m.respVal.(*raft.AppendEntriesResponse)
		switch {
		case req.PrevLogEntry == 0 && req.PrevLogTerm == 0 && len(req.Entries) == 0 && req.LeaderCommitIndex == 0:
			out = append(out, "ae-heartbeat")
		case len(req.Entries) == 0:
			out = append(out, "ae-no-entries")
		default:
			for _, k := range entryKinds(req) {
				out = append(out, "ae-"+k)
			}
			if len(req.Entries) > 1 {
				out = append(out, "ae-several")
			}
		}
		if resp != nil && !resp.Success {
			out = append(out, "ae-rejected")
		}
	case *raft.RequestVoteRequest:
		resp, _ := m.respVal.(*raft.RequestVoteResponse)
		if req.LeadershipTransfer {
			out = append(out, "rv-transfer")
		}
		if resp != nil && resp.Granted {
			out = append(out, "rv-granted")
		} else if resp != nil {
			out = append(out, "rv-denied")
		}
	case *raft.InstallSnapshotRequest:
		out = append(out, "install-snapshot")
	case *raft.TimeoutNowRequest:
		out = append(out, "timeout-now")
	default:
		if g, ok := preVoteGranted(m.respVal); ok {
			if g {
				out = append(out, "prevote-granted")
			} else {
				out = append(out, "prevote-denied")
			}
		}
	}
	return out
}

func describeReq(m *capturedMsg) string {
	switch req := m.reqVal.(type) {
	case *raft.AppendEntriesRequest:
		var es []string
		for _, e := range req.Entries {
			es = append(es, describeLog(e))
		}
		return fmt.Sprintf("AppendEntries %s Term=%d Leader=%q PrevLogEntry=%d PrevLogTerm=%d LeaderCommitIndex=%d Entries=[%s]",
			header(req.RPCHeader), req.Term, req.Leader, req.PrevLogEntry, req.PrevLogTerm, req.LeaderCommitIndex, strings.Join(es, ", "))
	case *raft.RequestVoteRequest:
		return fmt.Sprintf("RequestVote %s Term=%d Candidate=%q LastLogIndex=%d LastLogTerm=%d LeadershipTransfer=%v",
			header(req.RPCHeader), req.Term, req.Candidate, req.LastLogIndex, req.LastLogTerm, req.LeadershipTransfer)
	case *raft.InstallSnapshotRequest:
		return fmt.Sprintf("InstallSnapshot %s SnapshotVersion=%d Term=%d Leader=%q LastLogIndex=%d LastLogTerm=%d Peers=%x Configuration=%s ConfigurationIndex=%d Size=%d",
			header(req.RPCHeader), req.SnapshotVersion, req.Term, req.Leader, req.LastLogIndex, req.LastLogTerm, req.Peers,
			describeConf(raft.DecodeConfiguration(req.Configuration)), req.ConfigurationIndex, req.Size)
	case *raft.TimeoutNowRequest:
		return fmt.Sprintf("TimeoutNow %s", header(req.RPCHeader))
	}
	return describePreVoteReq(m.reqVal)
}

func describeResp(m *capturedMsg) string {
	e := fmt.Sprintf("error=%q ", m.errStr)
	switch r := m.respVal.(type) {
	case *raft.AppendEntriesResponse:
		return e + fmt.Sprintf("AppendEntriesResponse %s Term=%d LastLog=%d Success=%v NoRetryBackoff=%v",
			header(r.RPCHeader), r.Term, r.LastLog, r.Success, r.NoRetryBackoff)
	case *raft.RequestVoteResponse:
		return e + fmt.Sprintf("RequestVoteResponse %s Term=%d Peers=%x Granted=%v", header(r.RPCHeader), r.Term, r.Peers, r.Granted)
	case *raft.InstallSnapshotResponse:
		return e + fmt.Sprintf("InstallSnapshotResponse %s Term=%d Success=%v", header(r.RPCHeader), r.Term, r.Success)
	case *raft.TimeoutNowResponse:
		return e + fmt.Sprintf("TimeoutNowResponse %s", header(r.RPCHeader))
	}
	return e + describePreVoteResp(m.respVal)
}

func header(h raft.RPCHeader) string {
	return fmt.Sprintf("RPCHeader{ProtocolVersion=%d ID=%q Addr=%q}", h.ProtocolVersion, h.ID, h.Addr)
}

func describeLog(e *raft.Log) string {
	data := fmt.Sprintf("%x", e.Data)
	if e.Type == raft.LogConfiguration {
		data = describeConf(raft.DecodeConfiguration(e.Data))
	}
	return fmt.Sprintf("{Index=%d Term=%d Type=%s Data=%s Extensions=%x AppendedAt=%s}",
		e.Index, e.Term, e.Type, data, e.Extensions, e.AppendedAt.UTC().Format("2006-01-02T15:04:05.999999999Z"))
}

func describeConf(c raft.Configuration) string {
	var s []string
	for _, srv := range c.Servers {
		s = append(s, fmt.Sprintf("%s:%s", suffrageName(srv.Suffrage), srv.ID))
	}
	return "[" + strings.Join(s, " ") + "]"
}

func runSplit(args []string) int {
	fs := flag.NewFlagSet("split", flag.ExitOnError)
	in := fs.String("in", "", "directory written by node -record (several nodes may share it)")
	out := fs.String("out", "", "directory for the vectors")
	fs.Parse(args)
	if *in == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "usage: raftnode split -in DIR -out DIR")
		return 2
	}
	files, _ := filepath.Glob(filepath.Join(*in, "*.w"))
	sort.Strings(files)
	var all []*capturedMsg
	for _, wf := range files {
		base := strings.TrimSuffix(wf, ".w")
		w, err := os.ReadFile(wf)
		if err != nil {
			fmt.Fprintf(os.Stderr, "split: %v\n", err)
			return 1
		}
		r, _ := os.ReadFile(base + ".r")
		msgs, err := parseStream(w, r, filepath.Base(base))
		if err != nil {
			fmt.Fprintf(os.Stderr, "split: %s: %v\n", filepath.Base(base), err)
			return 1
		}
		all = append(all, msgs...)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintf(os.Stderr, "split: %v\n", err)
		return 1
	}
	taken := map[string]bool{}
	var index bytes.Buffer
	counts := map[int]int{}
	for _, m := range all {
		counts[m.rpc]++
		if m.resp == nil {
			continue // no response recorded: not a useful pair
		}
		var fresh []string
		for _, c := range classes(m) {
			if !taken[c] {
				fresh = append(fresh, c)
			}
		}
		if len(fresh) == 0 {
			continue
		}
		// One file set per class, so names are stable from one capture to
		// the next; a message that is the first of several classes is
		// written under each of them.
		for i, name := range fresh {
			taken[name] = true
			write := func(suffix string, b []byte) {
				os.WriteFile(filepath.Join(*out, name+suffix), b, 0o644)
			}
			write(".req", m.req)
			write(".resp", m.resp)
			if m.data != nil {
				write(".data", m.data)
			}
			if i > 0 {
				fmt.Fprintf(&index, "%s.req, .resp: the same message as %s\n", name, fresh[0])
				continue
			}
			fmt.Fprintf(&index, "%s.req (%d bytes, from stream %s #%d)\n  %s\n", name, len(m.req), m.origin, m.sequence, describeReq(m))
			if m.data != nil {
				fmt.Fprintf(&index, "%s.data (%d bytes): the snapshot bytes sent after the request: %s\n", name, len(m.data), hex.EncodeToString(m.data))
			}
			fmt.Fprintf(&index, "%s.resp (%d bytes)\n  %s\n", name, len(m.resp), describeResp(m))
		}
	}
	os.WriteFile(filepath.Join(*out, "index.txt"), index.Bytes(), 0o644)
	want := []string{"ae-heartbeat", "ae-no-entries", "ae-command", "ae-noop", "ae-barrier", "ae-config-voter",
		"ae-config-nonvoter", "ae-config-staging", "ae-several", "ae-rejected", "rv-granted", "rv-denied",
		"rv-transfer", "install-snapshot", "timeout-now"}
	if hasPreVote {
		want = append(want, "prevote-granted", "prevote-denied")
	}
	missing := 0
	for _, c := range want {
		if !taken[c] {
			fmt.Fprintf(os.Stderr, "split: no %s captured\n", c)
			missing++
		}
	}
	fmt.Printf("split: %d messages in %d streams (AE %d, RV %d, IS %d, TN %d, PV %d); %d classes kept\n",
		len(all), len(files), counts[0], counts[1], counts[2], counts[3], counts[4], len(taken))
	if missing > 0 {
		return 1
	}
	return 0
}
