// Cross-language snapshot check, Go side: go-libp2p-raft v0.5.0's
// EncodeSnapshot/DecodeSnapshot on the Go twin of the C test type
// `struct everything` (test/unit/codec_types.h).
//
//	snapshot write FILE   encode the fixed values into FILE
//	snapshot read FILE    decode FILE and print the canonical text form
//	snapshot print-fixed  canonical text form of the fixed values
//
// The canonical form (one field per line, strings and bytes in hex, map
// keys sorted, nil distinct from empty) is printed identically by
// snapcheck.c, so run.sh can compare outputs textually.
package main

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	libp2praft "github.com/libp2p/go-libp2p-raft"
)

type Inner struct {
	D    int64
	Name string
}

type Everything struct {
	B      bool
	I      int64
	U      uint64
	F      float64
	S      string
	Bytes  []byte
	In     Inner
	Ints   []int64
	Strs   []string
	Inners []Inner
	Nested [][]uint64
	M      map[string]int64
	MS     map[string]Inner
	MA     map[string][]string
	Nil    interface{}
}

func fixed() *Everything {
	return &Everything{
		B:      true,
		I:      -5,
		U:      300,
		F:      2.5,
		S:      `hola, "mundo"`,
		Bytes:  []byte{0, 1, 0xff},
		In:     Inner{D: 1, Name: "in"},
		Ints:   []int64{1, -200, 70000},
		Strs:   []string{"a", "bc"},
		Inners: []Inner{{7, "x"}, {-8, "y"}},
		Nested: [][]uint64{{1, 2}, nil},
		M:      map[string]int64{"k1": 10},
		MS:     map[string]Inner{"in": {3, "z"}},
		MA:     map[string][]string{"list": {"a", "bc"}},
		Nil:    nil,
	}
}

func hx(s string) string { return hex.EncodeToString([]byte(s)) }

func inner(i Inner) string { return fmt.Sprintf("{D:%d,Name:%s}", i.D, hx(i.Name)) }

func canon(e *Everything) string {
	var b strings.Builder
	fmt.Fprintf(&b, "B=%t\n", e.B)
	fmt.Fprintf(&b, "I=%d\n", e.I)
	fmt.Fprintf(&b, "U=%d\n", e.U)
	fmt.Fprintf(&b, "F=%s\n", strconv.FormatFloat(e.F, 'e', 17, 64))
	fmt.Fprintf(&b, "S=%s\n", hx(e.S))
	if e.Bytes == nil {
		b.WriteString("Bytes=nil\n")
	} else {
		fmt.Fprintf(&b, "Bytes=%s\n", hex.EncodeToString(e.Bytes))
	}
	fmt.Fprintf(&b, "In=%s\n", inner(e.In))
	list := func(name string, n int, isNil bool, item func(int) string) {
		if isNil {
			fmt.Fprintf(&b, "%s=nil\n", name)
			return
		}
		parts := make([]string, n)
		for i := 0; i < n; i++ {
			parts[i] = item(i)
		}
		fmt.Fprintf(&b, "%s=[%s]\n", name, strings.Join(parts, ","))
	}
	list("Ints", len(e.Ints), e.Ints == nil, func(i int) string { return strconv.FormatInt(e.Ints[i], 10) })
	list("Strs", len(e.Strs), e.Strs == nil, func(i int) string { return hx(e.Strs[i]) })
	list("Inners", len(e.Inners), e.Inners == nil, func(i int) string { return inner(e.Inners[i]) })
	list("Nested", len(e.Nested), e.Nested == nil, func(i int) string {
		if e.Nested[i] == nil {
			return "nil"
		}
		p := make([]string, len(e.Nested[i]))
		for j, v := range e.Nested[i] {
			p[j] = strconv.FormatUint(v, 10)
		}
		return "[" + strings.Join(p, ",") + "]"
	})
	keys := func(n int, get func(func(string))) []string {
		ks := make([]string, 0, n)
		get(func(k string) { ks = append(ks, k) })
		sort.Strings(ks)
		return ks
	}
	if e.M == nil {
		b.WriteString("M=nil\n")
	} else {
		ks := keys(len(e.M), func(f func(string)) {
			for k := range e.M {
				f(k)
			}
		})
		p := []string{}
		for _, k := range ks {
			p = append(p, fmt.Sprintf("%s:%d", hx(k), e.M[k]))
		}
		fmt.Fprintf(&b, "M={%s}\n", strings.Join(p, ","))
	}
	if e.MS == nil {
		b.WriteString("MS=nil\n")
	} else {
		ks := keys(len(e.MS), func(f func(string)) {
			for k := range e.MS {
				f(k)
			}
		})
		p := []string{}
		for _, k := range ks {
			p = append(p, fmt.Sprintf("%s:%s", hx(k), inner(e.MS[k])))
		}
		fmt.Fprintf(&b, "MS={%s}\n", strings.Join(p, ","))
	}
	if e.MA == nil {
		b.WriteString("MA=nil\n")
	} else {
		ks := keys(len(e.MA), func(f func(string)) {
			for k := range e.MA {
				f(k)
			}
		})
		p := []string{}
		for _, k := range ks {
			v := e.MA[k]
			if v == nil {
				p = append(p, hx(k)+":nil")
				continue
			}
			q := make([]string, len(v))
			for i, s := range v {
				q[i] = hx(s)
			}
			p = append(p, fmt.Sprintf("%s:[%s]", hx(k), strings.Join(q, ",")))
		}
		fmt.Fprintf(&b, "MA={%s}\n", strings.Join(p, ","))
	}
	if e.Nil == nil {
		b.WriteString("Nil=nil\n")
	} else {
		fmt.Fprintf(&b, "Nil=%v\n", e.Nil)
	}
	return b.String()
}

func main() {
	if len(os.Args) == 2 && os.Args[1] == "print-fixed" {
		fmt.Print(canon(fixed()))
		return
	}
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: snapshot write|read FILE | print-fixed")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "write":
		var buf bytes.Buffer
		if err := libp2praft.EncodeSnapshot(fixed(), &buf); err != nil {
			fmt.Fprintln(os.Stderr, "encode:", err)
			os.Exit(1)
		}
		if err := os.WriteFile(os.Args[2], buf.Bytes(), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	case "read":
		data, err := os.ReadFile(os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		e := &Everything{}
		if err := libp2praft.DecodeSnapshot(e, bytes.NewReader(data)); err != nil {
			fmt.Fprintln(os.Stderr, "decode:", err)
			os.Exit(1)
		}
		fmt.Print(canon(e))
	default:
		fmt.Fprintln(os.Stderr, "usage: snapshot write|read FILE")
		os.Exit(2)
	}
}
