package main

// raftnode synth: messages a live cluster rarely or never puts on the wire,
// encoded by hashicorp's own encoder exactly as NetworkTransport sets it up
// (go-msgpack v2 MsgpackHandle, TimeNotBuiltin = !MsgpackUseNewTimeFormat),
// from hashicorp/raft's own types. They pin the encoding rules at the edges
// (16-bit and 32-bit lengths, 64-bit values, the other time format, error
// responses) for p2praft's codec tests. Every file is listed in index.txt.

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

func transportEncoder(w *bufio.Writer, newTime bool) *codec.Encoder {
	return codec.NewEncoder(w, &codec.MsgpackHandle{
		BasicHandle: codec.BasicHandle{TimeNotBuiltin: !newTime},
	})
}

// encodeReq is sendRPC: the rpc type byte, then the msgpack request.
func encodeReq(rpc byte, req interface{}, newTime bool) []byte {
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	w.WriteByte(rpc)
	if err := transportEncoder(w, newTime).Encode(req); err != nil {
		panic(err)
	}
	w.Flush()
	return b.Bytes()
}

// encodeResp is handleCommand's reply: the error string, then the response.
func encodeResp(errStr string, resp interface{}) []byte {
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	enc := transportEncoder(w, false)
	if err := enc.Encode(errStr); err != nil {
		panic(err)
	}
	if err := enc.Encode(resp); err != nil {
		panic(err)
	}
	w.Flush()
	return b.Bytes()
}

// seededPeerID is the peer ID of the Ed25519 key whose 32-byte seed is
// all `b`: fixed, valid peer IDs for synthetic messages.
func seededPeerID(b byte) string {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, ed25519.SeedSize))
	k, err := crypto.UnmarshalEd25519PrivateKey(priv)
	if err != nil {
		panic(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		panic(err)
	}
	return id.String()
}

func runSynth(args []string) int {
	fs := flag.NewFlagSet("synth", flag.ExitOnError)
	out := fs.String("out", "", "directory for the vectors")
	fs.Parse(args)
	if *out == "" {
		fmt.Fprintln(os.Stderr, "usage: raftnode synth -out DIR")
		return 2
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// The peer ID of the Ed25519 key whose seed is 32 times 0x01.
	idA := seededPeerID(1)
	hdr := raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(idA), Addr: []byte(idA)}
	appended := time.Date(2024, 5, 17, 12, 34, 56, 789000000, time.UTC)
	big := bytes.Repeat([]byte{'x'}, 70000)

	var index strings.Builder
	put := func(name, what string, b []byte) {
		os.WriteFile(filepath.Join(*out, name), b, 0o644)
		fmt.Fprintf(&index, "%s (%d bytes)\n  %s\n", name, len(b), what)
	}

	// 1. Edge lengths and values: Data of 40 bytes (str16: go-msgpack
	// never writes str8), 70000 bytes (str32), 17 entries (array16), a zero
	// AppendedAt (what p2praft sends for entries it did not get from a Go
	// leader), uint64 maxima.
	var entries []*raft.Log
	for i := 0; i < 17; i++ {
		entries = append(entries, &raft.Log{Index: uint64(1000 + i), Term: 7, Type: raft.LogCommand,
			Data: []byte{0x81, 0xa5, 'V', 'a', 'l', 'u', 'e', byte(i)}, AppendedAt: appended})
	}
	entries[1].Data = bytes.Repeat([]byte{'y'}, 40)
	entries[2].AppendedAt = time.Time{}
	entries[3].Extensions = []byte("ext")
	entries[4].Data = []byte{}
	entries[5].Data = nil
	put("ae-edges.req", "AppendEntries, 17 LogCommand entries 1000..1016 term 7 (array16); entry 1001 Data 40 bytes (str16), "+
		"1002 zero AppendedAt, 1003 Extensions \"ext\", 1004 empty non-nil Data, 1005 nil Data; others AppendedAt 2024-05-17T12:34:56.789Z",
		encodeReq(rpcAppendEntries, &raft.AppendEntriesRequest{RPCHeader: hdr, Term: 7, Leader: []byte(idA),
			PrevLogEntry: 999, PrevLogTerm: 6, Entries: entries, LeaderCommitIndex: 998}, false))
	put("ae-big-data.req", "AppendEntries, one LogCommand of 70000 bytes (str32), terms and indexes at the uint64 maximum",
		encodeReq(rpcAppendEntries, &raft.AppendEntriesRequest{RPCHeader: hdr, Term: ^uint64(0), Leader: []byte(idA),
			PrevLogEntry: ^uint64(0) - 1, PrevLogTerm: ^uint64(0), LeaderCommitIndex: 1 << 32,
			Entries: []*raft.Log{{Index: ^uint64(0), Term: ^uint64(0), Type: raft.LogCommand, Data: big, AppendedAt: appended}}}, false))

	// 2. The other time format (NetworkTransportConfig.MsgpackUseNewTimeFormat):
	// AppendedAt as a 4-, 8- or 12-byte raw timestamp, zero time as nil.
	nt := []*raft.Log{
		{Index: 5, Term: 2, Type: raft.LogCommand, Data: []byte("a"), AppendedAt: time.Unix(1700000000, 0)},
		{Index: 6, Term: 2, Type: raft.LogCommand, Data: []byte("b"), AppendedAt: appended},
		{Index: 7, Term: 2, Type: raft.LogCommand, Data: []byte("c"), AppendedAt: time.Date(1960, 1, 1, 0, 0, 0, 5, time.UTC)},
		{Index: 8, Term: 2, Type: raft.LogNoop},
	}
	put("ae-newtime.req", "AppendEntries with MsgpackUseNewTimeFormat: AppendedAt as 4-byte (index 5), 8-byte (6), 12-byte (7) raw timestamps, zero time as nil (8)",
		encodeReq(rpcAppendEntries, &raft.AppendEntriesRequest{RPCHeader: hdr, Term: 2, Leader: []byte(idA),
			PrevLogEntry: 4, PrevLogTerm: 2, Entries: nt, LeaderCommitIndex: 4}, true))

	// 3. A configuration of 17 servers (array16), all three suffrages, as a
	// LogConfiguration entry and in an InstallSnapshot.
	var conf raft.Configuration
	for i := 0; i < 17; i++ {
		id := seededPeerID(byte(100 + i))
		conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.ServerSuffrage(i % 3), ID: raft.ServerID(id), Address: raft.ServerAddress(id)})
	}
	put("ae-config-17.req", "AppendEntries with one LogConfiguration of 17 servers (peer IDs of the Ed25519 seeds 100..116 repeated; suffrage i%3: voter, nonvoter, staging, ...)",
		encodeReq(rpcAppendEntries, &raft.AppendEntriesRequest{RPCHeader: hdr, Term: 3, Leader: []byte(idA),
			PrevLogEntry: 10, PrevLogTerm: 3, LeaderCommitIndex: 10,
			Entries: []*raft.Log{{Index: 11, Term: 3, Type: raft.LogConfiguration, Data: raft.EncodeConfiguration(conf), AppendedAt: appended}}}, false))
	put("install-snapshot-big.req", "InstallSnapshot of 17 servers, Size 1<<40 (int64), ConfigurationIndex 11",
		encodeReq(rpcInstallSnapshot, &raft.InstallSnapshotRequest{RPCHeader: hdr, SnapshotVersion: raft.SnapshotVersionMax,
			Term: 3, Leader: []byte(idA), LastLogIndex: 1 << 33, LastLogTerm: 3, Configuration: raft.EncodeConfiguration(conf),
			ConfigurationIndex: 11, Size: 1 << 40}, false))

	// 4. Error replies, as handleCommand writes them: processRPC answers a
	// command it cannot handle (or a bad RPC header) with a nil response.
	put("error-unexpected-command.resp", "error \"unexpected command\" and a nil response (hashicorp/raft 1.7 counts this as a granted pre-vote)",
		encodeResp("unexpected command", nil))
	put("error-unsupported-protocol.resp", "raft.ErrUnsupportedProtocol (\"operation not supported with current protocol version\") and a nil response",
		encodeResp(raft.ErrUnsupportedProtocol.Error(), nil))
	put("ae-error.resp", "an AppendEntriesResponse carrying an error string (a failed configuration entry)",
		encodeResp("failed to decode peers", &raft.AppendEntriesResponse{RPCHeader: hdr, Term: 3, LastLog: 10}))

	// 5. A deprecated entry type (LogAddPeerDeprecated = 2), which p2praft
	// refuses.
	put("ae-deprecated-type.req", "AppendEntries with a LogAddPeerDeprecated entry (type 2)",
		encodeReq(rpcAppendEntries, &raft.AppendEntriesRequest{RPCHeader: hdr, Term: 3, Leader: []byte(idA),
			PrevLogEntry: 1, PrevLogTerm: 1, LeaderCommitIndex: 1,
			Entries: []*raft.Log{{Index: 2, Term: 3, Type: raft.LogAddPeerDeprecated, Data: []byte{0x90}, AppendedAt: appended}}}, false))
	os.WriteFile(filepath.Join(*out, "index.txt"), []byte(index.String()), 0o644)
	fmt.Printf("synth: wrote %s\n", *out)
	return 0
}
