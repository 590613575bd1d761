//go:build !raft17

package main

import (
	"errors"

	"github.com/hashicorp/raft"
)

// hashicorp/raft 1.6.1 has no pre-vote (RequestPreVote arrived in 1.7.0).
func setPreVote(c *raft.Config, on bool) {}

const hasPreVote = false

func newPreVoteRequest() (interface{}, error) {
	return nil, errNoPreVote
}

func newPreVoteResponse() (interface{}, error) {
	return nil, errNoPreVote
}

func preVoteGranted(resp interface{}) (bool, bool) { return false, false }

func describePreVoteReq(req interface{}) string   { return "?" }
func describePreVoteResp(resp interface{}) string { return "?" }

var errNoPreVote = errors.New("rpc type 4 (RequestPreVote) does not exist in hashicorp/raft 1.6")
