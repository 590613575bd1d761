/* Internal structures shared by the consensus, its FSM and the actor. */
#ifndef P2PRAFT_RAFT_CONSENSUS_H
#define P2PRAFT_RAFT_CONSENSUS_H

#include <pthread.h>
#include <raft.h>
#include <uv.h>

#include "p2praft.h"

/* Entry kinds (one byte before each payload in a log entry). */
enum {
    P2PRAFT__ENTRY_OP = 1,
    P2PRAFT__ENTRY_STATE = 2,
    P2PRAFT__ENTRY_ROLLBACK = 3
};

/* Log entry format version (first byte of every entry). */
#define P2PRAFT__ENTRY_V1 0x01

struct p2praft_actor {
    struct raft *raft;
    p2praft_resolve_fn resolve;
    void *resolve_ctx;
};

/* Is `fsm` the FSM of a p2praft consensus? Then its data is the consensus. */
struct p2praft_consensus *p2praft__fsm_consensus(struct raft_fsm *fsm);

/* While a commit's callback runs (loop thread), with status 0: the raft
 * index of the entry that applied that commit. Otherwise 0. Commits share
 * entries, and raft_last_applied() at callback time may be past the
 * entry when raft applied several at once. */
uint64_t p2praft__consensus_cb_index(const struct p2praft_consensus *c);

/* The current state into *out, borrowed: loop thread only, and only until
 * control returns to the loop (the next apply replaces it, or changes it
 * in place). 0,
 * LP2P_EINCONSISTENT or LP2P_ENOSTATE, as
 * p2praft_consensus_get_current_state(), which makes a copy that a reader
 * on the loop thread does not need. */
int p2praft__consensus_state(struct p2praft_consensus *c, const void **out);

/* The size of the last snapshot taken, and of all of them (bytes, frame
 * included). Any thread. */
void p2praft__consensus_snapshot_bytes(struct p2praft_consensus *c,
                                       uint64_t *last, uint64_t *total);

/* Describe the leader for an ENOTLEADER message ("" when unknown). */
void p2praft__actor_leader_msg(struct p2praft_actor *a, char *out, size_t len);

#endif
