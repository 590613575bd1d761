package main

// The kv mode's state and op (kv.go) against what src/raft/kv.c writes
// and does. `go test -run KV .` in this directory (interop/run.sh runs it).

import (
	"bytes"
	"encoding/hex"
	"testing"
)

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The state's bytes as kv.c's p2praft__kv_encode writes them: a 3-map,
// Data with keys in byte order (a nil value as nil, an empty one as an
// empty raw), Seq as the smallest uint, Ok as a bool.
func TestKVStateBytes(t *testing.T) {
	st := &kvState{Data: map[string][]byte{"b": []byte("2"), "a": []byte("1"), "e": nil, "z": {}}, Seq: 300, Ok: true}
	var b bytes.Buffer
	if err := st.Marshal(&b); err != nil {
		t.Fatal(err)
	}
	want := mustHex(t, "83"+"a444617461"+"84"+"a161a131"+"a162a132"+"a165c0"+"a17aa0"+
		"a3536571"+"cd012c"+"a24f6b"+"c3")
	if !bytes.Equal(b.Bytes(), want) {
		t.Fatalf("state bytes\n got %x\nwant %x", b.Bytes(), want)
	}
	var back kvState
	if err := back.Unmarshal(bytes.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	var again bytes.Buffer
	back.Marshal(&again)
	if !bytes.Equal(again.Bytes(), want) {
		t.Fatalf("decode/encode changed the bytes: %x", again.Bytes())
	}
	// An empty state (no op yet, or the last key deleted): Data nil.
	b.Reset()
	(&kvState{}).Marshal(&b)
	if want := mustHex(t, "83a444617461c0a353657100a24f6bc2"); !bytes.Equal(b.Bytes(), want) {
		t.Fatalf("empty state %x, want %x", b.Bytes(), want)
	}
}

// test/unit/test_kv.c's decode_any_order, on the Go side: keys in any order
// (a repeated one: the last wins) come out sorted, nil and "" kept apart;
// an empty map stays a map until an op runs, then Data is nil.
func TestKVStateAsC(t *testing.T) {
	in := mustHex(t, "83a444617461"+"85a162a132a161a131a162a133a163c0a164a0a353657107a24f6bc3")
	out := mustHex(t, "83a444617461"+"84a161a131a162a133a163c0a164a0a353657107a24f6bc3")
	empty := mustHex(t, "83a44461746180a353657100a24f6bc2")
	for _, c := range []struct{ in, out []byte }{{in, out}, {empty, empty}} {
		var st kvState
		if err := st.Unmarshal(bytes.NewReader(c.in)); err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		st.Marshal(&b)
		if !bytes.Equal(b.Bytes(), c.out) {
			t.Fatalf("got %x, want %x", b.Bytes(), c.out)
		}
		if len(st.Data) == 0 {
			nop := kvOp{Kind: kvNop}
			nop.ApplyTo(&st)
			b.Reset()
			st.Marshal(&b)
			if b.Bytes()[6] != 0xc0 {
				t.Fatalf("after an op, an empty Data encodes as %x", b.Bytes()[6])
			}
		}
	}
}

// An op is never taken for a state nor a state for an op (go-libp2p-raft's
// ErrorIfNoField): the seed's rollback detection.
func TestKVOpAndStateNeverMix(t *testing.T) {
	var ob bytes.Buffer
	(&kvOp{Kind: kvSet, Key: "k", Value: []byte("v")}).Marshal(&ob)
	var sb bytes.Buffer
	(&kvState{Seq: 1}).Marshal(&sb)
	var op kvOp
	if err := op.Unmarshal(bytes.NewReader(ob.Bytes())); err != nil || op.Kind != kvSet || op.Key != "k" || string(op.Value) != "v" {
		t.Fatalf("op: %v %+v", err, op)
	}
	if err := op.Unmarshal(bytes.NewReader(sb.Bytes())); err == nil {
		t.Fatal("a state decoded as an op")
	}
	var st kvState
	if err := st.Unmarshal(bytes.NewReader(ob.Bytes())); err == nil {
		t.Fatal("an op decoded as a state")
	}
	// The FSM reuses one op: a field the entry lacks must not survive.
	short := mustHex(t, "82a44b696e6402a34b6579a178") // {"Kind":2,"Key":"x"}
	if err := op.Unmarshal(bytes.NewReader(short)); err != nil || op.Kind != kvDel || op.Key != "x" || op.Value != nil {
		t.Fatalf("reused op: %v %+v", err, op)
	}
}

// apply_in_place's rules, step by step.
func TestKVApply(t *testing.T) {
	st := &kvState{}
	steps := []struct {
		op     kvOp
		ok     bool
		get    string
		val    string
		absent bool
	}{
		{kvOp{Kind: kvSet, Key: "a", Value: []byte("1")}, true, "a", "1", false},
		{kvOp{Kind: kvCas, Key: "a", Expect: []byte("2"), Value: []byte("3")}, false, "a", "1", false},
		{kvOp{Kind: kvCas, Key: "a", Expect: []byte("1"), Value: []byte("3")}, true, "a", "3", false},
		{kvOp{Kind: kvCas, Key: "b", Value: []byte("x")}, false, "b", "", true},
		{kvOp{Kind: kvSet, Key: "e", Value: []byte{}}, true, "e", "", false},
		{kvOp{Kind: kvCas, Key: "e", Expect: nil, Value: []byte("full")}, true, "e", "full", false},
		{kvOp{Kind: kvDel, Key: "zz"}, false, "a", "3", false},
		{kvOp{Kind: kvNop}, true, "a", "3", false},
		{kvOp{Kind: 99, Key: "a", Value: []byte("no")}, false, "a", "3", false},
		{kvOp{Kind: kvDel, Key: "a"}, true, "a", "", true},
		{kvOp{Kind: kvDel, Key: "e"}, true, "e", "", true},
	}
	for i, s := range steps {
		op := s.op
		if _, err := op.ApplyTo(st); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if st.Seq != uint64(i+1) || st.Ok != s.ok {
			t.Fatalf("step %d: seq %d ok %t, want %d %t", i, st.Seq, st.Ok, i+1, s.ok)
		}
		v, present := st.Data[s.get]
		if present == s.absent || string(v) != s.val {
			t.Fatalf("step %d: %s = %q (present %t)", i, s.get, v, present)
		}
	}
	if st.Data != nil {
		t.Fatalf("Data after the last delete: %v, want nil (kv.c writes nil)", st.Data)
	}
	// An empty value is stored as nil, as kv.c does.
	op := kvOp{Kind: kvSet, Key: "n", Value: []byte{}}
	op.ApplyTo(st)
	if v, ok := st.Data["n"]; !ok || v != nil {
		t.Fatalf("empty value stored as %#v", v)
	}
	// The op's buffer is not kept (the FSM decodes the next entry into it).
	op = kvOp{Kind: kvSet, Key: "m", Value: []byte("abc")}
	op.ApplyTo(st)
	op.Value[0] = 'X'
	if string(st.Data["m"]) != "abc" {
		t.Fatalf("stored value aliases the op: %q", st.Data["m"])
	}
	if got := kvDump(st); got != `{"key":"m","value":"abc"} {"key":"n","value":""}` {
		t.Fatalf("kvDump: %s", got)
	}
}
