package main

// Recording of raft streams (-record DIR), for the wire vectors, and a
// "deaf" switch for tests.
//
// go-libp2p-raft's transport opens one libp2p stream per RPC (MaxPool 0)
// through host.NewStream (gostream.Dial), or one per AppendEntries pipeline.
// recordingHost wraps the host handed to libp2praft.NewLibp2pTransport and
// taps only the streams it opens on /raft/1.0.0/rpc: every byte the node
// writes (requests) goes to <seq>.<local>.<remote>.w and every byte it reads
// (responses) to <seq>.<local>.<remote>.r. The stream itself is untouched,
// so the node behaves exactly as without -record. Inbound streams are not
// tapped: each is some other node's outbound stream, recorded there.
//
// Deaf (control command "deaf on|off"): open inbound raft streams (an
// AppendEntries pipeline lives on one) are reset, and new ones are reset at
// once, as if the network dropped them, while the node's own RPCs still go
// out. A deaf follower stops hearing its leader and campaigns against a
// cluster that still has one: that is how capture.sh gets denied votes.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	libp2praft "github.com/libp2p/go-libp2p-raft"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

type recordingHost struct {
	host.Host
	dir  string // "" when not recording
	seq  atomic.Int64
	deaf atomic.Bool

	mu      sync.Mutex
	inbound map[*inboundStream]struct{}
}

// inboundStream forgets itself when the transport closes it.
type inboundStream struct {
	network.Stream
	h *recordingHost
}

func (s *inboundStream) forget() {
	s.h.mu.Lock()
	delete(s.h.inbound, s)
	s.h.mu.Unlock()
}

func (s *inboundStream) Close() error { s.forget(); return s.Stream.Close() }
func (s *inboundStream) Reset() error { s.forget(); return s.Stream.Reset() }

// setDeaf turns deafness on (resetting every open inbound raft stream) or off.
func (h *recordingHost) setDeaf(on bool) {
	h.deaf.Store(on)
	if !on {
		return
	}
	h.mu.Lock()
	open := make([]*inboundStream, 0, len(h.inbound))
	for s := range h.inbound {
		open = append(open, s)
	}
	h.mu.Unlock()
	for _, s := range open {
		s.Reset()
	}
}

func newRecordingHost(h host.Host, dir string) *recordingHost {
	return &recordingHost{Host: h, dir: dir, inbound: map[*inboundStream]struct{}{}}
}

func (h *recordingHost) SetStreamHandler(pid protocol.ID, handler network.StreamHandler) {
	if pid != libp2praft.RaftProtocol {
		h.Host.SetStreamHandler(pid, handler)
		return
	}
	h.Host.SetStreamHandler(pid, func(s network.Stream) {
		if h.deaf.Load() {
			s.Reset()
			return
		}
		in := &inboundStream{Stream: s, h: h}
		h.mu.Lock()
		h.inbound[in] = struct{}{}
		h.mu.Unlock()
		handler(in)
	})
}

func (h *recordingHost) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	s, err := h.Host.NewStream(ctx, p, pids...)
	if err != nil || h.dir == "" || len(pids) != 1 || pids[0] != libp2praft.RaftProtocol {
		return s, err
	}
	base := filepath.Join(h.dir, fmt.Sprintf("%06d.%s.%s", h.seq.Add(1), h.ID(), p))
	return &recordedStream{Stream: s, w: &tap{path: base + ".w"}, r: &tap{path: base + ".r"}}, nil
}

// tap appends to one file, opened on first use.
type tap struct {
	mu   sync.Mutex
	path string
	f    *os.File
}

func (t *tap) add(p []byte) {
	if len(p) == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.f == nil {
		f, err := os.OpenFile(t.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			fmt.Fprintf(os.Stderr, "raftnode: record: %v\n", err)
			return
		}
		t.f = f
	}
	t.f.Write(p)
}

func (t *tap) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.f != nil {
		t.f.Close()
		t.f = nil
	}
}

type recordedStream struct {
	network.Stream
	w, r *tap
}

func (s *recordedStream) Write(p []byte) (int, error) {
	n, err := s.Stream.Write(p)
	s.w.add(p[:n])
	return n, err
}

func (s *recordedStream) Read(p []byte) (int, error) {
	n, err := s.Stream.Read(p)
	s.r.add(p[:n])
	return n, err
}

func (s *recordedStream) Close() error {
	err := s.Stream.Close()
	s.w.close()
	s.r.close()
	return err
}

func (s *recordedStream) Reset() error {
	err := s.Stream.Reset()
	s.w.close()
	s.r.close()
	return err
}
