/*
 * Internals of the consensus, shared by its files:
 *   consensus.c       commits (group commit), blocking forms, reads,
 *                     lifecycle;
 *   fsm.c             raft's FSM: apply, snapshot, restore;
 *   consensus_sub.c   subscribers;
 *   consensus_turn.c  every loop turn: the loop thread, leader changes,
 *                     snapshots asked for.
 * See consensus.c for the design; nothing outside these files includes
 * this header.
 */
#ifndef P2PRAFT_RAFT_CONSENSUS_INT_H
#define P2PRAFT_RAFT_CONSENSUS_INT_H

#include <pthread.h>
#include <raft.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "p2praft.h"
#include "raft/consensus.h"
#include "util/bridge.h"
#include "util/list.h"

struct batch;

struct commit {
    struct lp2p__list link;  /* all live commits, in deadline order */
    struct lp2p__list qlink; /* in a queue waiting to be flushed, if linked */
    struct p2praft_actor *actor; /* submits it */
    struct batch *batch;
    size_t slot;
    uint64_t deadline;
    uint8_t kind;
    uint8_t *payload;
    size_t len;
    p2praft_commit_cb cb;
    void *ctx;
    bool applied; /* the FSM stored result/state */
    int result;
    void *state;
    uint64_t index; /* the raft index of the entry that applied it */
};

struct batch {
    struct raft_apply req;
    struct lp2p__list link; /* in c->batches once submitted */
    struct p2praft_consensus *c;
    uint64_t id;
    size_t n;
    struct commit **commits;
};

/* One blocking commit from another thread, on the caller's stack. */
struct xcall {
    struct lp2p__loopcall lc;
    uint8_t kind;
    uint8_t *payload; /* owned until the loop takes it (then NULL) */
    size_t len;
    void *state; /* the answer */
    uint64_t index; /* a snapshot's */
    char errmsg[256];
};

/* xcall kind of a blocking snapshot (not an entry kind). */
#define XCALL_SNAPSHOT 0xff

/* One snapshot asked for (p2praft_consensus_snapshot()). */
struct snapreq {
    struct lp2p__list link;
    uint64_t target; /* the applied index when asked */
    p2praft_snapshot_cb cb;
    void *ctx;
};

struct p2praft_sub {
    struct p2praft_sub *next;
    struct p2praft_consensus *c;
    unsigned cap;
    unsigned pending;
    uint64_t dropped;
    pthread_cond_t cv;
    void (*notify)(void *ctx, struct p2praft_sub *sub);
    /* An update subscriber (p2praft_consensus_subscribe_updates()) has no
     * queue: it sees each update as it is applied. */
    void (*on_update)(void *ctx, const struct p2praft_update *u);
    void *ctx;
};

struct p2praft_consensus {
    uv_loop_t *loop;
    pthread_t creator;     /* the thread that created the consensus */
    pthread_t loop_thread; /* the thread seen running the loop (under mu) */
    bool loop_known;       /* loop_thread is set */
    const struct p2praft_type *st;
    const struct p2praft_op_type *op; /* NULL in state mode */
    struct raft_fsm fsm;
    struct p2praft_actor *actor;
    unsigned timeout_ms;
    uint64_t cb_index; /* see p2praft__consensus_cb_index() */

    pthread_mutex_t mu; /* guards the fields down to `subs` */
    void *state;
    bool initialized;
    bool inconsistent;
    uint64_t applied;
    uint64_t restored;
    uint64_t snapshots;
    uint64_t snapshot_bytes_last, snapshot_bytes_total;
    struct p2praft_sub *subs;
    pthread_cond_t cv;       /* loop_thread or the leader changed */
    uint64_t leader_id;      /* 0: none known */
    bool leader_self;
    char leader[LP2P_PEER_ID_STRMAX];

    p2praft_leader_cb leader_cb; /* loop thread */
    void *leader_ctx;
    bool leader_fresh;           /* cb new: tell it the current leader */
    struct lp2p__list snaps;     /* struct snapreq, waiting */
    struct raft *snap_raft;      /* whose threshold is lowered, or NULL */
    unsigned snap_threshold;     /* its threshold before */
    uint64_t snap_taking;        /* index of the snapshot being taken */
    bool snap_early;             /* threshold put back when it was stored */

    struct lp2p__list commits; /* all live commits (struct commit) */
    struct lp2p__list queue;   /* queued, not yet flushed (qlink) */
    struct lp2p__list batches; /* submitted to raft (struct batch) */
    uint64_t nonce;
    uint64_t next_id;
    bool seed; /* the seed's log format (p2praft_consensus_set_seed_format) */

    uv_idle_t idle;
    uv_timer_t timer;
    uv_prepare_t prepare; /* every loop turn: see turn_cb() */
    struct lp2p__bridge calls; /* blocking commits from other threads */
    int open_handles;
    bool closing;
};

/* fsm.c: install the FSM's callbacks in c->fsm. */
void p2praft__fsm_init(struct p2praft_consensus *c);

/* fsm.c: the type of what a commit of `kind` answers (the state, or the
 * op type's result). */
const struct p2praft_type *p2praft__answer_type(
    const struct p2praft_consensus *c, uint8_t kind);

/* consensus.c: may a blocking call run on this thread? 0, or an error. */
int p2praft__may_block(struct p2praft_consensus *c);

/* consensus_turn.c: the prepare handle's callback, once per loop turn. */
void p2praft__turn_cb(uv_prepare_t *h);

/* consensus_turn.c: complete the snapshot requests (every one, or those a
 * snapshot at `index` covers) with `status`. */
void p2praft__snaps_complete(struct p2praft_consensus *c, int status,
                             uint64_t index, bool all);

/* consensus_turn.c: raft stored a snapshot taken by this node. */
void p2praft__snaps_stored(struct p2praft_consensus *c);

/* consensus_turn.c: 0 if `a` can take a commit or a snapshot request. */
int p2praft__usable_actor(struct p2praft_consensus *c,
                          struct p2praft_actor *a);

#endif /* P2PRAFT_RAFT_CONSENSUS_INT_H */
