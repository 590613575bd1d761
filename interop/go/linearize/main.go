// Command linearize checks a fault-harness history (test/faults/client.c)
// with porcupine, an external linearizability checker, and checks that no
// acknowledged write was lost.
//
//	linearize -history FILE [-nemesis FILE] [-out DIR] [-timeout D] [-name S]
//
// The model is a key-value map with get, set and compare-and-set,
// partitioned by key (each key is its own register). An operation whose
// outcome is unknown may or may not have taken effect: it is given a return
// time after the end of the history, so porcupine may place it anywhere from
// its invocation on, including after every other operation (where nothing
// observes it, which is the same as never happening). Writes that surely
// failed and reads without a definite answer are left out: they had no
// effect.
//
// Lost writes: each key ends with a final consistent read. Its value was
// written by one write W (values are unique). An acknowledged write w is
// lost if W returned before w was invoked: then w came later in real time,
// so the final value can only be W's if w vanished. A final "not found"
// loses every acknowledged write of the key; a final value nobody wrote is
// corruption. A key without a final read is a liveness failure.
//
// Write latencies count every write that reached a node, up to any answer;
// "healthy" ones only the writes sent to a node that was under no fault of
// its own meanwhile (FAULTED lines of the nemesis log): the latency that
// re-routing around a failed leader is about.
//
// Output: a report on stdout ending with one line
//
//	RESULT name=... ops=... ok=... failed=... unknown=... write_p50_ms=...
//	  write_p99_ms=... write_p999_ms=... healthy_write_p999_ms=...
//	  longest_stall_ms=...
//	  linearizable=yes|no|timeout lost=N problems=N verdict=PASS|FAIL|INCONCLUSIVE
//
// and, when a key is not linearizable, porcupine's HTML visualization of it
// in DIR/linearizability-KEY.html. Exit status 0 PASS, 1 FAIL,
// 2 INCONCLUSIVE (the checker timed out), 3 unreadable input.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// rec is one line of the history file.
type rec struct {
	Type     string `json:"type"`
	Proc     int    `json:"proc"`
	Node     int    `json:"node"`
	Op       string `json:"op"`
	Key      string `json:"key"`
	Exp      string `json:"exp"`
	Val      string `json:"val"`
	Call     int64  `json:"call"`
	Ret      int64  `json:"ret"`
	Res      string `json:"res"`
	Sent     bool   `json:"sent"`
	Got      string `json:"got"`
	Final    bool   `json:"final"`
	Msg      string `json:"msg"`
	Real0    int64  `json:"real0_ns"`
	T        int64  `json:"t"`
	Expect   string `json:"expect"`
	Nodes    int    `json:"nodes"`
	FinalMis int    `json:"final_missing"`
	line     int
}

// The model: one register per key.
type state struct {
	present bool
	val     string
}

type input struct {
	op  string // get, set, cas
	exp string
	val string
}

type output struct {
	res string // ok, notfound, mismatch, unknown
	got string
}

type meta struct {
	node int
	msg  string
	line int
}

func step(s0, in0, out0 interface{}) (bool, interface{}) {
	s := s0.(state)
	in := in0.(input)
	out := out0.(output)
	switch in.op {
	case "get":
		if out.res == "notfound" {
			return !s.present, s
		}
		return s.present && s.val == out.got, s
	case "set":
		return true, state{true, in.val}
	case "cas":
		match := s.present && s.val == in.exp
		switch out.res {
		case "ok":
			return match, state{true, in.val}
		case "mismatch":
			return !match, s
		default: // unknown: it took effect only if it could
			if match {
				return true, state{true, in.val}
			}
			return true, s
		}
	}
	return false, s
}

var model = porcupine.Model{
	Init: func() interface{} { return state{} },
	Step: step,
	DescribeOperation: func(in0, out0 interface{}) string {
		in := in0.(input)
		out := out0.(output)
		switch in.op {
		case "get":
			if out.res == "notfound" {
				return "get -> not found"
			}
			return "get -> " + out.got
		case "set":
			return fmt.Sprintf("set(%s) -> %s", in.val, out.res)
		default:
			return fmt.Sprintf("cas(%s, %s) -> %s", in.exp, in.val, out.res)
		}
	},
	DescribeState: func(s0 interface{}) string {
		s := s0.(state)
		if !s.present {
			return "(absent)"
		}
		return s.val
	},
	DescribeOperationMetadata: func(m0 interface{}) string {
		if m0 == nil {
			return ""
		}
		m := m0.(meta)
		return fmt.Sprintf("node %d, history line %d %s", m.node, m.line, m.msg)
	},
}

type history struct {
	start   rec
	ops     []rec
	end     int64
	hasEnd  bool
	missing int
}

func readHistory(path string) (*history, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := &history{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var r rec
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", path, n, err)
		}
		r.line = n
		switch r.Type {
		case "start":
			h.start = r
		case "op":
			if r.Key == "" || (r.Op != "get" && r.Op != "set" && r.Op != "cas") {
				return nil, fmt.Errorf("%s:%d: bad operation", path, n)
			}
			switch r.Res {
			case "ok", "notfound", "mismatch", "fail", "unknown":
			default:
				return nil, fmt.Errorf("%s:%d: bad result %q", path, n, r.Res)
			}
			if r.Ret < r.Call {
				return nil, fmt.Errorf("%s:%d: returns before its call", path, n)
			}
			h.ops = append(h.ops, r)
			if r.Ret > h.end {
				h.end = r.Ret
			}
		case "end":
			h.hasEnd = true
			h.missing = r.FinalMis
			if r.T > h.end {
				h.end = r.T
			}
		default:
			return nil, fmt.Errorf("%s:%d: unknown record type %q", path, n, r.Type)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return h, nil
}

// toOperations turns one key's records into porcupine operations, with
// client IDs made dense (the visualization draws one row per ID).
func toOperations(recs []rec, end int64) []porcupine.Operation {
	ids := map[int]int{}
	var ops []porcupine.Operation
	for _, r := range recs {
		in := input{op: r.Op, exp: r.Exp, val: r.Val}
		out := output{res: r.Res, got: r.Got}
		ret := r.Ret
		switch {
		case r.Res == "fail":
			continue // surely not applied
		case r.Op == "get" && r.Res == "unknown":
			continue // a read without an answer changes nothing
		case r.Res == "unknown":
			ret = end // may take effect at any time from its call on
		case r.Op == "set" && r.Res != "ok", r.Op == "cas" && r.Res == "notfound":
			continue
		}
		id, ok := ids[r.Proc]
		if !ok {
			id = len(ids)
			ids[r.Proc] = id
		}
		ops = append(ops, porcupine.Operation{
			ClientId: id, Input: in, Call: r.Call, Output: out, Return: ret,
			Metadata: meta{node: r.Node, msg: r.Msg, line: r.line},
		})
	}
	return ops
}

type nemesisEvent struct {
	t    int64
	text string
}

// readNemesis reads "SECONDS.MICROS text" lines (bash's $EPOCHREALTIME),
// placed on the history's clock through the start record's real0_ns.
func readNemesis(path string, real0 int64) ([]nemesisEvent, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var evs []nemesisEvent
	for _, l := range strings.Split(string(b), "\n") {
		sp := strings.IndexByte(l, ' ')
		if sp <= 0 {
			continue
		}
		sec, err := strconv.ParseFloat(l[:sp], 64)
		if err != nil {
			continue
		}
		evs = append(evs, nemesisEvent{int64(sec*1e9) - real0, l[sp+1:]})
	}
	return evs, nil
}

// A faultChange comes from a "FAULTED 1 2" line of the nemesis log
// (test/faults/nemesis.sh): from time t on, those nodes are under a fault
// of their own (killed, paused, cut off in a minority); "FAULTED" alone:
// none is.
type faultChange struct {
	t     int64
	nodes map[int]bool
}

func faultChanges(evs []nemesisEvent) []faultChange {
	var out []faultChange
	for _, e := range evs {
		f := strings.Fields(e.text)
		if len(f) == 0 || f[0] != "FAULTED" {
			continue
		}
		c := faultChange{t: e.t, nodes: map[int]bool{}}
		for _, s := range f[1:] {
			if n, err := strconv.Atoi(s); err == nil {
				c.nodes[n] = true
			}
		}
		out = append(out, c)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].t < out[j].t })
	return out
}

// healthyNode: was node free of faults of its own from call to ret? A
// request sent to such a node should be served even while others fail.
func healthyNode(changes []faultChange, node int, call, ret int64) bool {
	faulted := false
	for _, c := range changes {
		if c.t > ret {
			break
		}
		if c.t <= call {
			faulted = c.nodes[node]
		} else if c.nodes[node] {
			return false
		}
	}
	return !faulted
}

type keyResult struct {
	key    string
	result porcupine.CheckResult
	ops    int
}

func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	if i < 0 {
		i = 0
	}
	return sorted[i]
}

// lostWrites applies the rule in the package comment to each key; it
// returns one sentence per problem.
func lostWrites(byKey map[string][]rec, end int64) (lost int, problems []string) {
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		var final *rec
		writer := map[string]rec{}
		var acked []rec
		for i, r := range byKey[k] {
			if r.Final && (r.Res == "ok" || r.Res == "notfound") {
				final = &byKey[k][i]
			}
			if r.Op == "set" || r.Op == "cas" {
				if r.Res == "ok" || r.Res == "unknown" {
					writer[r.Val] = r
				}
				if r.Res == "ok" {
					acked = append(acked, r)
				}
			}
		}
		if final == nil {
			problems = append(problems, fmt.Sprintf("%s: no final read (the cluster did not answer after the heal)", k))
			continue
		}
		if final.Res == "notfound" {
			for _, w := range acked {
				lost++
				problems = append(problems, fmt.Sprintf("%s: acknowledged %s %s (line %d) lost: the final read finds no value", k, w.Op, w.Val, w.line))
			}
			continue
		}
		wf, ok := writer[final.Got]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: final value %q was never written", k, final.Got))
			continue
		}
		wfRet := wf.Ret
		if wf.Res == "unknown" {
			wfRet = end
		}
		for _, w := range acked {
			if w.Val != wf.Val && w.Call > wfRet {
				lost++
				problems = append(problems, fmt.Sprintf("%s: acknowledged %s %s (line %d) lost: the final value %s (line %d) was written before it began", k, w.Op, w.Val, w.line, wf.Val, wf.line))
			}
		}
	}
	return lost, problems
}

// fileSafe keeps a key usable in a file name.
func fileSafe(k string) string {
	return strings.Map(func(r rune) rune {
		if r == '.' || r == '-' || r == '_' || (r >= '0' && r <= '9') ||
			(r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') {
			return r
		}
		return '_'
	}, k)
}

// longestStall is the longest time, in ms, during which no write was
// acknowledged: between two acknowledgements, or from the first
// invocation to the first one, up to the last acknowledgement before the
// final reads. It shows how long faults kept the cluster from serving.
func longestStall(ops []rec) float64 {
	var acks []int64
	first := int64(-1)
	for _, r := range ops {
		if r.Final {
			continue
		}
		if first < 0 || r.Call < first {
			first = r.Call
		}
		if r.Op != "get" && (r.Res == "ok" || r.Res == "mismatch") {
			acks = append(acks, r.Ret)
		}
	}
	if len(acks) == 0 {
		return math.NaN()
	}
	sort.Slice(acks, func(i, j int) bool { return acks[i] < acks[j] })
	prev, worst := first, int64(0)
	for _, t := range acks {
		if t-prev > worst {
			worst = t - prev
		}
		prev = t
	}
	return float64(worst) / 1e6
}

func main() {
	histPath := flag.String("history", "", "history file (JSON lines)")
	nemPath := flag.String("nemesis", "", "nemesis log, for the visualization")
	outDir := flag.String("out", ".", "where visualizations go")
	timeout := flag.Duration("timeout", 120*time.Second, "porcupine's time limit per key")
	name := flag.String("name", "", "run name for the RESULT line")
	flag.Parse()
	if *histPath == "" {
		fmt.Fprintln(os.Stderr, "usage: linearize -history FILE [-nemesis FILE] [-out DIR] [-timeout D] [-name S]")
		os.Exit(3)
	}
	h, err := readHistory(*histPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "linearize:", err)
		os.Exit(3)
	}
	if *name == "" {
		*name = filepath.Base(filepath.Dir(*histPath))
	}
	end := h.end + 1
	nem, err := readNemesis(*nemPath, h.start.Real0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "linearize:", err)
		os.Exit(3)
	}

	// Counts and write latencies (every write that reached a node: the
	// time until it got any answer, or until the client gave up).
	var nOK, nFail, nUnknown int
	var lat, latHealthy []float64
	changes := faultChanges(nem)
	byKey := map[string][]rec{}
	for _, r := range h.ops {
		switch r.Res {
		case "fail":
			nFail++
		case "unknown":
			nUnknown++
		default:
			nOK++
		}
		if r.Op != "get" && r.Sent {
			ms := float64(r.Ret-r.Call) / 1e6
			lat = append(lat, ms)
			if healthyNode(changes, r.Node, r.Call, r.Ret) {
				latHealthy = append(latHealthy, ms)
			}
		}
		byKey[r.Key] = append(byKey[r.Key], r)
	}
	sort.Float64s(lat)
	sort.Float64s(latHealthy)
	stall := longestStall(h.ops)

	// Linearizability, one key at a time, two at once.
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	results := make([]keyResult, len(keys))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2)
	for i, k := range keys {
		wg.Add(1)
		go func(i int, k string) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			ops := toOperations(byKey[k], end)
			results[i] = keyResult{k, porcupine.CheckOperationsTimeout(model, ops, *timeout), len(ops)}
		}(i, k)
	}
	wg.Wait()

	lin := "yes"
	var bad []string
	for _, r := range results {
		switch r.result {
		case porcupine.Illegal:
			lin = "no"
			bad = append(bad, r.key)
		case porcupine.Unknown:
			if lin == "yes" {
				lin = "timeout"
			}
			fmt.Printf("key %s: checker timed out after %v (%d ops)\n", r.key, *timeout, r.ops)
		}
	}
	for _, k := range bad {
		ops := toOperations(byKey[k], end)
		_, info := porcupine.CheckOperationsVerbose(model, ops, *timeout)
		// The faults during this key's life, and the one in force when it
		// began (a whole run's would stretch the timeline).
		lo, hi := int64(math.MaxInt64), int64(0)
		for _, op := range ops {
			lo = min(lo, op.Call)
			if op.Return < end {
				hi = max(hi, op.Return)
			}
		}
		var ann []porcupine.Annotation
		for i, e := range nem {
			before := i+1 < len(nem) && nem[i+1].t <= lo
			if e.t <= hi && !before && !strings.HasPrefix(e.text, "FAULTED") {
				ann = append(ann, porcupine.Annotation{Tag: "nemesis", Start: e.t, Description: e.text})
			}
		}
		info.AddAnnotations(ann)
		path := filepath.Join(*outDir, "linearizability-"+fileSafe(k)+".html")
		err := os.MkdirAll(*outDir, 0o755)
		if err == nil {
			err = porcupine.VisualizePath(model, info, path)
		}
		if err != nil {
			fmt.Printf("key %s: NOT linearizable (%d ops); no visualization: %v\n", k, len(ops), err)
		} else {
			fmt.Printf("key %s: NOT linearizable (%d ops); see %s\n", k, len(ops), path)
		}
	}

	lost, problems := lostWrites(byKey, end)
	for _, p := range problems {
		fmt.Println(p)
	}
	verdict := "PASS"
	switch {
	case lin == "no" || len(problems) > 0 || !h.hasEnd:
		verdict = "FAIL"
	case lin == "timeout":
		verdict = "INCONCLUSIVE"
	}
	if !h.hasEnd {
		fmt.Println("the history has no end record (the client did not finish)")
	}
	fmt.Printf("keys=%d writes_timed=%d\n", len(keys), len(lat))
	fmt.Printf("RESULT name=%s ops=%d ok=%d failed=%d unknown=%d write_p50_ms=%.1f write_p99_ms=%.1f write_p999_ms=%.1f healthy_write_p999_ms=%.1f longest_stall_ms=%.0f linearizable=%s lost=%d problems=%d verdict=%s\n",
		*name, len(h.ops), nOK, nFail, nUnknown,
		percentile(lat, 0.50), percentile(lat, 0.99), percentile(lat, 0.999),
		percentile(latHealthy, 0.999), stall, lin, lost, len(problems), verdict)
	switch verdict {
	case "FAIL":
		os.Exit(1)
	case "INCONCLUSIVE":
		os.Exit(2)
	}
}
