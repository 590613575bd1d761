// Command peer is the go-libp2p reference peer for p2praft's interop tests
// and benchmarks; it has the same CLI as ../../js/peer.mjs (see
// ../../README.md for the contract).
//
// Usage: peer MODE [MA] [options]
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/protocol/identify"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
)

const (
	protoEcho = protocol.ID("/p2praft/test/echo/1.0.0")
	protoSink = protocol.ID("/p2praft/test/sink/1.0.0")
	chunk     = 64 * 1024
	mib       = 1024 * 1024
	// checkTimeout bounds each dial check, so a stalled peer gives a FAIL line.
	checkTimeout = 60 * time.Second
)

const usage = `usage: peer MODE [MA] [options]
  listen [--listen MA]...          print listen multiaddrs (with /p2p/), serve until SIGINT/SIGTERM
  dial MA [--expect-agent PREFIX] [--expect-protocol P]...
                                   ping, identify, echo 1 MiB and 64 MiB, 50 concurrent echo streams
  bench-throughput MA [--bytes N] [--proto sink|echo]
  bench-rtt MA [--count N]
  bench-connect MA [--count N]
  dial-proto MA PROTO              open one stream of PROTO, send 16 bytes, read: prints
                                   "result=reset|eof|data|noproto|error ..." then "ping=ok|fail"
options for every mode:
  --default-security               keep go-libp2p's default security list (TLS first, then Noise)
                                   instead of Noise only`

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

type options struct {
	mode            string
	ma              string
	listen          multiFlag
	expectAgent     string
	expectProtocols multiFlag
	bytes           int64
	count           int
	proto           string
	defaultSecurity bool
	dialProto       string
}

func parseArgs(args []string) (*options, error) {
	o := &options{}
	if len(args) == 0 {
		return nil, errors.New("missing mode")
	}
	o.mode = args[0]
	args = args[1:]
	fs := flag.NewFlagSet("peer", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Var(&o.listen, "listen", "listen multiaddr (repeatable)")
	fs.StringVar(&o.expectAgent, "expect-agent", "", "required agentVersion prefix")
	fs.Var(&o.expectProtocols, "expect-protocol", "required protocol (repeatable)")
	fs.Int64Var(&o.bytes, "bytes", 1024*mib, "bytes for bench-throughput")
	fs.IntVar(&o.count, "count", 0, "samples for bench-rtt / bench-connect")
	fs.StringVar(&o.proto, "proto", "sink", "bench-throughput protocol: sink or echo")
	fs.BoolVar(&o.defaultSecurity, "default-security", false, "TLS first, then Noise")
	// Flags and the one positional multiaddr may come in any order.
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		if o.ma != "" {
			if o.mode == "dial-proto" && o.dialProto == "" {
				o.dialProto = fs.Arg(0)
				args = fs.Args()[1:]
				continue
			}
			return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
		}
		o.ma = fs.Arg(0)
		args = fs.Args()[1:]
	}
	switch o.mode {
	case "listen":
		if o.ma != "" {
			return nil, fmt.Errorf("listen takes no positional multiaddr (use --listen)")
		}
	case "dial-proto":
		if o.ma == "" || o.dialProto == "" {
			return nil, fmt.Errorf("dial-proto needs a multiaddr and a protocol")
		}
	case "dial", "bench-throughput", "bench-rtt", "bench-connect":
		if o.ma == "" {
			return nil, fmt.Errorf("%s needs a multiaddr", o.mode)
		}
	default:
		return nil, fmt.Errorf("unknown mode %q", o.mode)
	}
	if o.bytes <= 0 || o.count < 0 {
		return nil, errors.New("--bytes and --count must be positive")
	}
	if o.proto != "sink" && o.proto != "echo" {
		return nil, errors.New("--proto must be sink or echo")
	}
	return o, nil
}

func libp2pVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/libp2p/go-libp2p" {
				return d.Version
			}
		}
	}
	return "unknown"
}

func newHost(o *options) (host.Host, error) {
	listen := []string(o.listen)
	opts := []libp2p.Option{
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.UserAgent("go-libp2p/" + libp2pVersion() + " p2praft-interop"),
	}
	if o.defaultSecurity {
		opts = append(opts, libp2p.DefaultSecurity)
	} else {
		opts = append(opts, libp2p.Security(noise.ID, noise.New))
	}
	if o.mode == "listen" {
		if len(listen) == 0 {
			listen = []string{"/ip4/127.0.0.1/tcp/0"}
		}
		opts = append(opts, libp2p.ListenAddrStrings(listen...))
	} else {
		opts = append(opts, libp2p.NoListenAddrs)
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		return nil, err
	}
	serveTestProtocols(h)
	return h, nil
}

// serveTestProtocols registers echo (copy every byte back until the remote
// closes its write side, then close) and sink (read until the remote closes
// its write side, reply with the byte count as u64 big-endian, then close).
func serveTestProtocols(h host.Host) {
	h.SetStreamHandler(protoEcho, func(s network.Stream) {
		if _, err := io.Copy(s, s); err != nil {
			s.Reset()
			return
		}
		s.Close()
	})
	h.SetStreamHandler(protoSink, func(s network.Stream) {
		n, err := io.Copy(io.Discard, s)
		if err != nil {
			s.Reset()
			return
		}
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(n))
		if _, err := s.Write(b[:]); err != nil {
			s.Reset()
			return
		}
		s.Close()
	})
}

func listen(o *options) error {
	h, err := newHost(o)
	if err != nil {
		return err
	}
	defer h.Close()
	for _, a := range h.Addrs() {
		fmt.Printf("%s/p2p/%s\n", a, h.ID())
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	return nil
}

// echoCheck sends total random bytes on a new echo stream and checks that the
// same bytes come back; returns the hex sha256.
func echoCheck(ctx context.Context, h host.Host, pid peer.ID, total int) (string, error) {
	s, err := h.NewStream(ctx, pid, protoEcho)
	if err != nil {
		return "", err
	}
	defer s.Close()
	if d, ok := ctx.Deadline(); ok {
		s.SetDeadline(d)
	}
	sent := sha256.New()
	werr := make(chan error, 1)
	go func() {
		buf := make([]byte, chunk)
		for off := 0; off < total; off += chunk {
			b := buf[:min(chunk, total-off)]
			rand.Read(b)
			sent.Write(b)
			if _, err := s.Write(b); err != nil {
				werr <- err
				return
			}
		}
		werr <- s.CloseWrite()
	}()
	got := sha256.New()
	n, rerr := io.Copy(got, s)
	if err := <-werr; err != nil {
		s.Reset()
		return "", fmt.Errorf("write: %w", err)
	}
	if rerr != nil {
		return "", fmt.Errorf("read: %w", rerr)
	}
	a, b := hex.EncodeToString(sent.Sum(nil)), hex.EncodeToString(got.Sum(nil))
	if n != int64(total) || a != b {
		return "", fmt.Errorf("sent %d bytes sha256 %s, got back %d bytes sha256 %s", total, a, n, b)
	}
	return a, nil
}

func connect(ctx context.Context, h host.Host, ma string) (*peer.AddrInfo, error) {
	ai, err := peer.AddrInfoFromString(ma)
	if err != nil {
		return nil, fmt.Errorf("bad multiaddr %q (needs /p2p/): %w", ma, err)
	}
	if err := h.Connect(ctx, *ai); err != nil {
		return nil, err
	}
	return ai, nil
}

func dialChecks(h host.Host, o *options) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	failed := 0
	check := func(name string, fn func(ctx context.Context) (string, error)) {
		cctx, ccancel := context.WithTimeout(ctx, checkTimeout)
		defer ccancel()
		msg, err := fn(cctx)
		if err != nil {
			failed++
			fmt.Printf("FAIL %s %v\n", name, err)
			return
		}
		fmt.Printf("ok %s %s\n", name, msg)
	}
	var ai *peer.AddrInfo
	check("connect", func(ctx context.Context) (string, error) {
		t0 := time.Now()
		var err error
		if ai, err = connect(ctx, h, o.ma); err != nil {
			return "", err
		}
		conns := h.Network().ConnsToPeer(ai.ID)
		if len(conns) == 0 {
			return "", errors.New("connected but no connection")
		}
		st := conns[0].ConnState()
		proposed := "/noise"
		if o.defaultSecurity {
			proposed = "/tls/1.0.0,/noise"
		}
		return fmt.Sprintf("peer=%s proposed=%s encryption=%s muxer=%s early_muxer=%v ms=%.2f", ai.ID, proposed,
			st.Security, st.StreamMultiplexer, st.UsedEarlyMuxerNegotiation, float64(time.Since(t0))/1e6), nil
	})
	if ai == nil {
		return 1
	}
	pid := ai.ID
	check("ping", func(ctx context.Context) (string, error) {
		pctx, pcancel := context.WithCancel(ctx)
		defer pcancel()
		var rtts []string
		ch := ping.Ping(pctx, h, pid)
		for i := 0; i < 3; i++ {
			r, ok := <-ch
			if !ok {
				return "", fmt.Errorf("ping: %v", pctx.Err())
			}
			if r.Error != nil {
				return "", r.Error
			}
			rtts = append(rtts, fmt.Sprintf("%.3f", float64(r.RTT)/1e6))
		}
		return "rtt_ms=" + strings.Join(rtts, ","), nil
	})
	check("identify", func(ctx context.Context) (string, error) {
		ids, ok := h.(interface{ IDService() identify.IDService })
		if !ok {
			return "", errors.New("host has no identify service")
		}
		conns := h.Network().ConnsToPeer(pid)
		if len(conns) == 0 {
			return "", errors.New("no connection")
		}
		select {
		case <-ids.IDService().IdentifyWait(conns[0]):
		case <-ctx.Done():
			return "", ctx.Err()
		}
		protos, err := h.Peerstore().GetProtocols(pid)
		if err != nil {
			return "", err
		}
		if len(protos) == 0 {
			return "", errors.New("identify produced no protocols")
		}
		ps := make([]string, len(protos))
		for i, p := range protos {
			ps[i] = string(p)
		}
		sort.Strings(ps)
		agent, _ := h.Peerstore().Get(pid, "AgentVersion")
		pv, _ := h.Peerstore().Get(pid, "ProtocolVersion")
		a, _ := agent.(string)
		v, _ := pv.(string)
		msg := fmt.Sprintf("agent=%q protocolVersion=%q protocols=%s", a, v, strings.Join(ps, ","))
		if o.expectAgent != "" && !strings.HasPrefix(a, o.expectAgent) {
			return "", fmt.Errorf("agent does not start with %q: %s", o.expectAgent, msg)
		}
		var missing []string
		for _, want := range o.expectProtocols {
			found := false
			for _, p := range ps {
				found = found || p == want
			}
			if !found {
				missing = append(missing, want)
			}
		}
		if len(missing) > 0 {
			return "", fmt.Errorf("missing protocols %s: %s", strings.Join(missing, ","), msg)
		}
		return msg, nil
	})
	for _, c := range []struct {
		name string
		size int
	}{{"echo-1MiB", mib}, {"echo-64MiB", 64 * mib}} {
		check(c.name, func(ctx context.Context) (string, error) {
			t0 := time.Now()
			sum, err := echoCheck(ctx, h, pid, c.size)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("bytes=%d sha256=%s ms=%.1f", c.size, sum, float64(time.Since(t0))/1e6), nil
		})
	}
	check("echo-50-concurrent", func(ctx context.Context) (string, error) {
		const n, size = 50, 256 * 1024
		t0 := time.Now()
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				_, errs[i] = echoCheck(ctx, h, pid, size)
			}(i)
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return "", err
		}
		return fmt.Sprintf("streams=%d bytes_each=%d ms=%.1f", n, size, float64(time.Since(t0))/1e6), nil
	})
	h.Network().ClosePeer(pid)
	if failed > 0 {
		return 1
	}
	return 0
}

func percentile(sorted []float64, p float64) float64 {
	i := int(p*float64(len(sorted))+0.999999) - 1
	i = max(0, min(len(sorted)-1, i))
	return sorted[i]
}

func benchThroughput(h host.Host, o *options) error {
	ctx := context.Background()
	ai, err := connect(ctx, h, o.ma)
	if err != nil {
		return err
	}
	proto := protoSink
	if o.proto == "echo" {
		proto = protoEcho
	}
	run := func(total int64) (time.Duration, error) {
		s, err := h.NewStream(ctx, ai.ID, proto)
		if err != nil {
			return 0, err
		}
		defer s.Close()
		buf := make([]byte, chunk)
		rand.Read(buf)
		t0 := time.Now()
		werr := make(chan error, 1)
		go func() {
			for off := int64(0); off < total; off += chunk {
				if _, err := s.Write(buf[:min(int64(chunk), total-off)]); err != nil {
					werr <- err
					return
				}
			}
			werr <- s.CloseWrite()
		}()
		var reply bytes.Buffer
		var n int64
		if proto == protoSink {
			n, err = io.Copy(&reply, s)
		} else {
			n, err = io.Copy(io.Discard, s)
		}
		if werr := <-werr; werr != nil {
			return 0, werr
		}
		if err != nil {
			return 0, err
		}
		elapsed := time.Since(t0)
		if proto == protoSink {
			if reply.Len() != 8 || binary.BigEndian.Uint64(reply.Bytes()) != uint64(total) {
				return 0, fmt.Errorf("sink replied %x, expected count %d", reply.Bytes(), total)
			}
		} else if n != total {
			return 0, fmt.Errorf("echo returned %d of %d bytes", n, total)
		}
		return elapsed, nil
	}
	if _, err := run(mib); err != nil { // warm-up
		return err
	}
	d, err := run(o.bytes)
	if err != nil {
		return err
	}
	fmt.Printf("bench throughput %.3f Gbit/s bytes=%d seconds=%.4f proto=%s\n",
		float64(o.bytes)*8/d.Seconds()/1e9, o.bytes, d.Seconds(), proto)
	return nil
}

func benchRtt(h host.Host, o *options) error {
	count := o.count
	if count == 0 {
		count = 10000
	}
	ctx := context.Background()
	ai, err := connect(ctx, h, o.ma)
	if err != nil {
		return err
	}
	s, err := h.NewStream(ctx, ai.ID, protoEcho)
	if err != nil {
		return err
	}
	defer s.Close()
	msg := make([]byte, 64)
	rand.Read(msg)
	back := make([]byte, 64)
	warmup := min(1000, count)
	samples := make([]float64, 0, count)
	for i := 0; i < warmup+count; i++ {
		t0 := time.Now()
		if _, err := s.Write(msg); err != nil {
			return err
		}
		if _, err := io.ReadFull(s, back); err != nil {
			return err
		}
		us := float64(time.Since(t0)) / 1e3
		if !bytes.Equal(back, msg) {
			return errors.New("echo returned different bytes")
		}
		if i >= warmup {
			samples = append(samples, us)
		}
	}
	s.CloseWrite()
	sort.Float64s(samples)
	sum := 0.0
	for _, v := range samples {
		sum += v
	}
	fmt.Printf("bench rtt_p50 %.1f us count=%d size=64\n", percentile(samples, 0.5), count)
	fmt.Printf("bench rtt_p99 %.1f us count=%d size=64\n", percentile(samples, 0.99), count)
	fmt.Printf("bench rtt_mean %.1f us count=%d size=64\n", sum/float64(len(samples)), count)
	return nil
}

// benchConnect: one sample = new TCP connection, security, yamux, an echo
// stream, one byte echoed back (the stream is usable); then the connection is
// closed. go-libp2p's NewStream waits for identify on a new connection: that
// is part of go's setup cost and is included.
func benchConnect(h host.Host, o *options) error {
	count := o.count
	if count == 0 {
		count = 200
	}
	ai, err := peer.AddrInfoFromString(o.ma)
	if err != nil {
		return err
	}
	one := func() (float64, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		t0 := time.Now()
		if err := h.Connect(ctx, *ai); err != nil {
			return 0, err
		}
		s, err := h.NewStream(ctx, ai.ID, protoEcho)
		if err != nil {
			return 0, err
		}
		if _, err := s.Write([]byte{0x2a}); err != nil {
			return 0, err
		}
		var b [1]byte
		if _, err := io.ReadFull(s, b[:]); err != nil {
			return 0, err
		}
		ms := float64(time.Since(t0)) / 1e6
		if b[0] != 0x2a {
			return 0, errors.New("echo returned a different byte")
		}
		s.Close()
		if err := h.Network().ClosePeer(ai.ID); err != nil {
			return 0, err
		}
		return ms, nil
	}
	for i := 0; i < min(20, count); i++ {
		if _, err := one(); err != nil {
			return err
		}
	}
	samples := make([]float64, 0, count)
	for i := 0; i < count; i++ {
		ms, err := one()
		if err != nil {
			return err
		}
		samples = append(samples, ms)
	}
	sort.Float64s(samples)
	fmt.Printf("bench connect_p50 %.3f ms count=%d\n", percentile(samples, 0.5), count)
	fmt.Printf("bench connect_p99 %.3f ms count=%d\n", percentile(samples, 0.99), count)
	return nil
}

func main() {
	o, err := parseArgs(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "peer: %v\n%s\n", err, usage)
		os.Exit(2)
	}
	if o.mode == "listen" {
		if err := listen(o); err != nil {
			fmt.Fprintf(os.Stderr, "peer: %v\n", err)
			os.Exit(1)
		}
		return
	}
	h, err := newHost(o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "peer: %v\n", err)
		os.Exit(1)
	}
	code := 0
	switch o.mode {
	case "dial":
		code = dialChecks(h, o)
	case "bench-throughput":
		err = benchThroughput(h, o)
	case "bench-rtt":
		err = benchRtt(h, o)
	case "bench-connect":
		err = benchConnect(h, o)
	case "dial-proto":
		err = dialProto(h, o)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "peer: %s: %v\n", o.mode, err)
		code = 1
	}
	h.Close()
	os.Exit(code)
}

// dialProto opens one stream of o.dialProto (the p2praft tests use it to check
// that a peer outside the raft configuration is refused): it prints how the
// stream ended, then whether the connection still answers a ping.
func dialProto(h host.Host, o *options) error {
	ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
	defer cancel()
	ai, err := connect(ctx, h, o.ma)
	if err != nil {
		return err
	}
	s, err := h.NewStream(ctx, ai.ID, protocol.ID(o.dialProto))
	if err != nil {
		if errors.Is(err, network.ErrReset) {
			fmt.Println("result=reset (during negotiation)")
		} else {
			fmt.Printf("result=noproto %v\n", err)
		}
	} else {
		_ = s.SetDeadline(time.Now().Add(10 * time.Second))
		_, werr := s.Write(make([]byte, 16))
		buf := make([]byte, 64)
		n, rerr := s.Read(buf)
		switch {
		case n > 0:
			fmt.Printf("result=data %d bytes\n", n)
		case errors.Is(rerr, network.ErrReset) || errors.Is(werr, network.ErrReset):
			fmt.Println("result=reset")
		case errors.Is(rerr, io.EOF):
			fmt.Println("result=eof")
		default:
			fmt.Printf("result=error write=%v read=%v\n", werr, rerr)
		}
		_ = s.Reset()
	}
	pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
	defer pcancel()
	if r := <-ping.Ping(pctx, h, ai.ID); r.Error != nil {
		fmt.Printf("ping=fail %v\n", r.Error)
	} else {
		fmt.Println("ping=ok")
	}
	return nil
}
