package main

// -mode kv: the key-value store of `p2praft node` (src/raft/kv.c), as a
// go-libp2p-raft OpLog, so that a Go node can be a member of a cluster of
// `p2praft node --wire hashicorp` nodes and apply the same entries.
//
// On the wire (the seed's log format, what a p2praft node on the hashicorp
// wire writes): each entry is a bare msgpack kvOp, a map {"Kind", "Key",
// "Value", "Expect"}; the state (snapshots, rollbacks) a map {"Data",
// "Seq", "Ok"}. Both follow go-libp2p-raft's own decoding rules (ugorji
// msgpack, ErrorIfNoField), so an op never decodes as a state nor a state
// as an op: the seed's rollback test works on them.
//
// Apply mirrors kv.c's apply_in_place exactly: set stores the value (an
// empty one as nil), del and cas report whether they changed anything in
// Ok, NOP (the node's read barrier) changes nothing but Seq, an unknown
// kind is a failed no-op; Seq counts every op; Data becomes nil when the
// last key goes. The state is encoded by hand with its keys in byte order,
// as kv.c writes it, so a Go snapshot is byte for byte a C one.

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	consensus "github.com/libp2p/go-libp2p-consensus"
	"github.com/ugorji/go/codec"
)

const (
	kvSet = 1
	kvDel = 2
	kvCas = 3
	kvNop = 4
)

// kvMu guards every kvState: the FSM applies under its own lock, but the
// control interface reads the live state (GetCurrentState returns it).
var kvMu sync.RWMutex

type kvState struct {
	Data map[string][]byte
	Seq  uint64
	Ok   bool
}

type kvOp struct {
	Kind   int64
	Key    string
	Value  []byte
	Expect []byte
}

// decodeStrict decodes as go-libp2p-raft's decode() does: msgpack with
// ErrorIfNoField, so a map with a field the type lacks is refused.
func decodeStrict(r io.Reader, v interface{}) error {
	h := &codec.MsgpackHandle{}
	h.ErrorIfNoField = true
	return codec.NewDecoder(r, h).Decode(v)
}

func (o *kvOp) Marshal(w io.Writer) error {
	return codec.NewEncoder(w, &codec.MsgpackHandle{}).Encode(o)
}

// Unmarshal decodes into a fresh op: the FSM reuses one op for every
// entry, and a field absent from an entry must not keep the last value.
func (o *kvOp) Unmarshal(r io.Reader) error {
	var fresh kvOp
	if err := decodeStrict(r, &fresh); err != nil {
		return err
	}
	*o = fresh
	return nil
}

func (o *kvOp) ApplyTo(s consensus.State) (consensus.State, error) {
	st, ok := s.(*kvState)
	if !ok {
		return nil, fmt.Errorf("kv op applied to a %T", s)
	}
	kvMu.Lock()
	defer kvMu.Unlock()
	set := func() {
		if st.Data == nil {
			st.Data = map[string][]byte{}
		}
		var v []byte // an empty value is stored as nil, as kv.c does
		if len(o.Value) > 0 {
			v = append([]byte(nil), o.Value...) // the op's buffer is reused
		}
		st.Data[o.Key] = v
	}
	done := false
	switch o.Kind {
	case kvSet:
		set()
		done = true
	case kvDel:
		_, done = st.Data[o.Key]
		delete(st.Data, o.Key)
	case kvCas:
		cur, present := st.Data[o.Key]
		done = present && bytes.Equal(cur, o.Expect)
		if done {
			set()
		}
	case kvNop:
		done = true
	}
	st.Seq++
	st.Ok = done
	if len(st.Data) == 0 {
		st.Data = nil
	}
	return st, nil
}

// ---- the state's bytes: kv.c's p2praft__kv_encode ----------------------------

// The msgpack forms ugorji's MsgpackHandle writes (WriteExt off): strings
// and []byte as raw (fixstr, str16, str32; never str8), nil slices as nil.
func mpRaw(b *bytes.Buffer, s []byte) {
	n := len(s)
	switch {
	case n < 32:
		b.WriteByte(0xa0 | byte(n))
	case n <= 0xffff:
		b.WriteByte(0xda)
		binary.Write(b, binary.BigEndian, uint16(n))
	default:
		b.WriteByte(0xdb)
		binary.Write(b, binary.BigEndian, uint32(n))
	}
	b.Write(s)
}

func mpMapHdr(b *bytes.Buffer, n int) {
	switch {
	case n < 16:
		b.WriteByte(0x80 | byte(n))
	case n <= 0xffff:
		b.WriteByte(0xde)
		binary.Write(b, binary.BigEndian, uint16(n))
	default:
		b.WriteByte(0xdf)
		binary.Write(b, binary.BigEndian, uint32(n))
	}
}

func mpUint(b *bytes.Buffer, u uint64) {
	switch {
	case u <= 0x7f:
		b.WriteByte(byte(u))
	case u <= 0xff:
		b.WriteByte(0xcc)
		b.WriteByte(byte(u))
	case u <= 0xffff:
		b.WriteByte(0xcd)
		binary.Write(b, binary.BigEndian, uint16(u))
	case u <= 0xffffffff:
		b.WriteByte(0xce)
		binary.Write(b, binary.BigEndian, uint32(u))
	default:
		b.WriteByte(0xcf)
		binary.Write(b, binary.BigEndian, u)
	}
}

func (s *kvState) sortedKeys() []string {
	keys := make([]string, 0, len(s.Data))
	for k := range s.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (s *kvState) Marshal(w io.Writer) error {
	kvMu.RLock()
	var b bytes.Buffer
	mpMapHdr(&b, 3)
	mpRaw(&b, []byte("Data"))
	if s.Data == nil {
		b.WriteByte(0xc0)
	} else {
		mpMapHdr(&b, len(s.Data))
		for _, k := range s.sortedKeys() {
			mpRaw(&b, []byte(k))
			if v := s.Data[k]; v == nil {
				b.WriteByte(0xc0)
			} else {
				mpRaw(&b, v)
			}
		}
	}
	mpRaw(&b, []byte("Seq"))
	mpUint(&b, s.Seq)
	mpRaw(&b, []byte("Ok"))
	if s.Ok {
		b.WriteByte(0xc3)
	} else {
		b.WriteByte(0xc2)
	}
	kvMu.RUnlock()
	_, err := w.Write(b.Bytes())
	return err
}

// Unmarshal replaces the state (a snapshot's Restore, or a rollback entry)
// only when the bytes decode: decoding into the live map would merge.
func (s *kvState) Unmarshal(r io.Reader) error {
	var fresh kvState
	if err := decodeStrict(r, &fresh); err != nil {
		return err
	}
	kvMu.Lock()
	*s = fresh
	kvMu.Unlock()
	return nil
}

// ---- control commands ------------------------------------------------------

func (n *node) kvState() (*kvState, error) {
	st, err := n.cons.GetCurrentState()
	if err != nil {
		return nil, err
	}
	kv, ok := st.(*kvState)
	if !ok {
		return nil, fmt.Errorf("not a kv state")
	}
	return kv, nil
}

// kvDump is every key and value in byte order, one JSON object per key
// with a space between them: what `p2praft kv --json ls` prints (jansson,
// compact), one line per key, for keys and values that are UTF-8.
func kvDump(st *kvState) string {
	kvMu.RLock()
	defer kvMu.RUnlock()
	var parts []string
	for _, k := range st.sortedKeys() {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		enc.Encode(struct {
			Key   string `json:"key"`
			Value string `json:"value"`
		}{k, string(st.Data[k])})
		parts = append(parts, string(bytes.TrimRight(b.Bytes(), "\n")))
	}
	return strings.Join(parts, " ")
}

// kvCommand serves the kv mode's control commands; handled false for any
// other command.
func (n *node) kvCommand(f []string, line string) (reply string, handled bool) {
	need := func(k int) bool { return len(f) >= k+1 }
	commit := func(op *kvOp) string {
		agreed, err := n.cons.CommitOp(op)
		if err != nil {
			return errf(err)
		}
		st, ok := agreed.(*kvState)
		if !ok || st == nil {
			return "err the op did not apply (inconsistent state)"
		}
		kvMu.RLock()
		defer kvMu.RUnlock()
		return okf("seq=%d ok=%t", st.Seq, st.Ok)
	}
	switch f[0] {
	case "get":
		if !need(1) {
			return "err usage: get KEY", true
		}
		st, err := n.kvState()
		if err != nil {
			return errf(err), true
		}
		kvMu.RLock()
		v, ok := st.Data[f[1]]
		kvMu.RUnlock()
		if !ok {
			return "err not found", true
		}
		return okf("%q", v), true
	case "kv-dump":
		st, err := n.kvState()
		if err != nil {
			return errf(err), true
		}
		return okf("%s", kvDump(st)), true
	case "state":
		st, err := n.kvState()
		if err != nil {
			return errf(err), true
		}
		kvMu.RLock()
		seq, ok := st.Seq, st.Ok
		kvMu.RUnlock()
		return okf(`{"Seq":%d,"Ok":%t,"Data":[%s]}`, seq, ok, strings.Replace(kvDump(st), "} {", "},{", -1)), true
	case "kv-seq":
		st, err := n.kvState()
		if err != nil {
			return errf(err), true
		}
		kvMu.RLock()
		defer kvMu.RUnlock()
		return okf("seq=%d keys=%d", st.Seq, len(st.Data)), true
	case "kv-set":
		if !need(2) {
			return "err usage: kv-set KEY VALUE", true
		}
		return commit(&kvOp{Kind: kvSet, Key: f[1], Value: []byte(argRest(argRest(line, f[0]), f[1]))}), true
	case "kv-del":
		if !need(1) {
			return "err usage: kv-del KEY", true
		}
		return commit(&kvOp{Kind: kvDel, Key: f[1]}), true
	case "kv-cas":
		if !need(3) {
			return "err usage: kv-cas KEY OLD NEW", true
		}
		return commit(&kvOp{Kind: kvCas, Key: f[1], Expect: []byte(f[2]), Value: []byte(f[3])}), true
	}
	return "", false
}
