//go:build raft17

package main

import (
	"fmt"

	"github.com/hashicorp/raft"
)

// hashicorp/raft 1.7 runs a pre-vote round (RequestPreVote, rpc type 4)
// before each election unless PreVoteDisabled.
func setPreVote(c *raft.Config, on bool) { c.PreVoteDisabled = !on }

const hasPreVote = true

func newPreVoteRequest() (interface{}, error) {
	return &raft.RequestPreVoteRequest{}, nil
}

func newPreVoteResponse() (interface{}, error) {
	return &raft.RequestPreVoteResponse{}, nil
}

func preVoteGranted(resp interface{}) (bool, bool) {
	r, ok := resp.(*raft.RequestPreVoteResponse)
	if !ok {
		return false, false
	}
	return r.Granted, true
}

func describePreVoteReq(req interface{}) string {
	r, ok := req.(*raft.RequestPreVoteRequest)
	if !ok {
		return "?"
	}
	return fmt.Sprintf("RequestPreVote %s Term=%d LastLogIndex=%d LastLogTerm=%d",
		header(r.RPCHeader), r.Term, r.LastLogIndex, r.LastLogTerm)
}

func describePreVoteResp(resp interface{}) string {
	r, ok := resp.(*raft.RequestPreVoteResponse)
	if !ok {
		return "?"
	}
	return fmt.Sprintf("RequestPreVoteResponse %s Term=%d Granted=%v", header(r.RPCHeader), r.Term, r.Granted)
}
