/*
 * What a consensus does once per loop turn (a prepare handle): record the
 * thread running the loop, report leader changes (on_leader,
 * wait_for_leader), and complete the snapshots asked for
 * (p2praft_consensus_snapshot()).
 */
#include <string.h>

#include "raft/consensus.h"
#include "raft/consensus_int.h"
#include "util/heap.h"

/* ---- every loop turn: loop thread, leader, snapshots --------------------- */

/* Complete the snapshot requests whose target `index` covers (all of them
 * when `all`), then put the threshold back once none waits. */
void p2praft__snaps_complete(struct p2praft_consensus *c, int status,
                           uint64_t index, bool all)
{
    struct lp2p__list *q, *next;
    struct lp2p__list done;
    lp2p__list_init(&done);
    LP2P__LIST_FOREACH_SAFE(q, next, &c->snaps) {
        struct snapreq *sr = LP2P__CONTAINER_OF(q, struct snapreq, link);
        if (all || sr->target <= index) {
            lp2p__list_remove(q);
            lp2p__list_insert_tail(&done, q);
        }
    }
    if (lp2p__list_first(&c->snaps) == NULL && c->snap_raft != NULL) {
        raft_set_snapshot_threshold(c->snap_raft, c->snap_threshold);
        c->snap_raft = NULL;
    }
    while ((q = lp2p__list_first(&done)) != NULL) {
        struct snapreq *sr = LP2P__CONTAINER_OF(q, struct snapreq, link);
        lp2p__list_remove(q);
        if (sr->cb != NULL) {
            sr->cb(sr->ctx, status, index);
        }
        lp2p__free(sr);
    }
}

/* The snapshot raft took was stored (or failed: raft calls the FSM's
 * finalize either way). Put the threshold back now if it covers every
 * request: else raft, still at 1, takes another one at its next event,
 * before the next turn completes the requests. */
void p2praft__snaps_stored(struct p2praft_consensus *c)
{
    struct lp2p__list *q, *next;
    if (c->snap_raft == NULL) {
        return;
    }
    LP2P__LIST_FOREACH_SAFE(q, next, &c->snaps) {
        if (LP2P__CONTAINER_OF(q, struct snapreq, link)->target >
            c->snap_taking) {
            return;
        }
    }
    raft_set_snapshot_threshold(c->snap_raft, c->snap_threshold);
    c->snap_early = true;
}

/* The index of raft's latest snapshot (0: none). */
static uint64_t raft_snapshot_index(struct raft *r)
{
    /* libraft 0.22 keeps it in the public trail, which both a snapshot
     * taken and one installed update. */
    return r->trail.snapshot.index;
}

/* Snapshot requests: done once raft's latest snapshot covers them; until
 * then raft's threshold stays at 1 (raft takes a snapshot after the next
 * event it handles once commit_index - snapshot index >= threshold). */
static void check_snapshots(struct p2praft_consensus *c)
{
    struct raft *r = c->snap_raft;
    if (r == NULL) {
        return;
    }
    if (r->legacy.closing) {
        c->snap_raft = NULL; /* closing: its threshold no longer matters */
        p2praft__snaps_complete(c, LP2P_ESHUTDOWN, 0, true);
        return;
    }
    if (c->inconsistent) {
        /* fsm_snapshot() refuses now: do not make raft ask at every event. */
        p2praft__snaps_complete(c, LP2P_EINCONSISTENT, 0, true);
        return;
    }
    p2praft__snaps_complete(c, 0, raft_snapshot_index(r), false);
    if (c->snap_raft == NULL) {
        c->snap_early = false;
        return; /* all done, threshold back */
    }
    if (r->legacy.snapshot_threshold != 1) {
        if (!c->snap_early) {
            /* Someone set another threshold meanwhile: that one goes
             * back. */
            c->snap_threshold = r->legacy.snapshot_threshold;
        }
        /* (Or the snapshot put it back early, then failed: again.) */
        c->snap_early = false;
        raft_set_snapshot_threshold(r, 1);
    }
}

/* Has the leader changed since the last turn? Tell the waiters and cb. */
static void check_leader(struct p2praft_consensus *c)
{
    struct raft *r = c->actor != NULL ? c->actor->raft : NULL;
    raft_id id = 0;
    const char *address = NULL;
    char peer[LP2P_PEER_ID_STRMAX];
    bool self, fresh = c->leader_fresh;
    c->leader_fresh = false;
    if (r != NULL && !r->legacy.closing) {
        raft_leader(r, &id, &address);
        if (address == NULL) {
            id = 0;
        }
    }
    if (id == c->leader_id && !(fresh && id != 0)) {
        return;
    }
    peer[0] = '\0';
    if (id != 0 && p2praft_actor_leader(c->actor, peer, sizeof(peer)) != 0) {
        peer[0] = '\0';
    }
    self = id != 0 && id == r->id;
    pthread_mutex_lock(&c->mu);
    c->leader_id = id;
    c->leader_self = self;
    memcpy(c->leader, peer, sizeof(peer));
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (c->leader_cb != NULL) {
        c->leader_cb(c->leader_ctx, id != 0 ? peer : NULL, self);
    }
}

/* Prepare phase of every loop turn, after the turn's callbacks: record
 * which thread runs the loop (for the blocking calls), notice a leader
 * change, finish snapshot requests. */
void p2praft__turn_cb(uv_prepare_t *h)
{
    struct p2praft_consensus *c = h->data;
    pthread_t self = pthread_self();
    if (!c->loop_known || !pthread_equal(self, c->loop_thread)) {
        pthread_mutex_lock(&c->mu);
        c->loop_thread = self;
        c->loop_known = true;
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
    }
    if (c->closing) {
        return;
    }
    check_leader(c);
    check_snapshots(c);
}

void p2praft_consensus_on_leader(struct p2praft_consensus *c,
                                 p2praft_leader_cb cb, void *ctx)
{
    if (c != NULL) {
        c->leader_cb = cb;
        c->leader_ctx = ctx;
        c->leader_fresh = cb != NULL;
    }
}

int p2praft_consensus_wait_for_leader(struct p2praft_consensus *c,
                                      unsigned timeout_ms, char *out,
                                      size_t len, bool *self)
{
    struct timespec ts;
    int rv;
    if (out != NULL && len > 0) {
        out[0] = '\0';
    }
    if (self != NULL) {
        *self = false;
    }
    if (c == NULL || (out != NULL && len == 0)) {
        return LP2P_EINVAL;
    }
    rv = p2praft__may_block(c);
    if (rv != 0) {
        return rv;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&c->mu);
    while (c->leader_id == 0 && !c->closing && rv == 0) {
        if (pthread_cond_timedwait(&c->cv, &c->mu, &ts) == ETIMEDOUT) {
            rv = LP2P_ETIMEDOUT;
        }
    }
    if (c->leader_id != 0) {
        rv = 0;
        if (out != NULL) {
            if (strlen(c->leader) >= len) {
                rv = LP2P_EOVERFLOW;
            } else {
                memcpy(out, c->leader, strlen(c->leader) + 1);
            }
        }
        if (self != NULL) {
            *self = c->leader_self;
        }
    } else if (c->closing) {
        rv = LP2P_ESHUTDOWN;
    }
    pthread_mutex_unlock(&c->mu);
    return rv;
}

/* The actor that may act for `c` now: 0, or the error it returns. */
int p2praft__usable_actor(struct p2praft_consensus *c, struct p2praft_actor *a)
{
    if (a == NULL) {
        return LP2P_ENOACTOR;
    }
    if (a->raft == NULL) {
        return LP2P_ENORAFT;
    }
    if (p2praft__fsm_consensus(a->raft->fsm) != c) {
        return LP2P_EINVAL;
    }
    return 0;
}

int p2praft_consensus_snapshot(struct p2praft_consensus *c,
                               p2praft_snapshot_cb cb, void *ctx)
{
    struct snapreq *sr;
    struct raft *r;
    int rv;
    if (c == NULL) {
        return LP2P_EINVAL;
    }
    if (c->closing) {
        return LP2P_ESHUTDOWN;
    }
    rv = p2praft__usable_actor(c, c->actor);
    if (rv != 0) {
        return rv;
    }
    r = c->actor->raft;
    if (r->legacy.closing) {
        return LP2P_ESHUTDOWN;
    }
    if (c->snap_raft != NULL && c->snap_raft != r) {
        /* The actor changed under waiting requests: not worth a second
         * lowered threshold. */
        return LP2P_EBUSY;
    }
    pthread_mutex_lock(&c->mu);
    rv = !c->initialized ? LP2P_ENOSTATE
                         : c->inconsistent ? LP2P_EINCONSISTENT : 0;
    pthread_mutex_unlock(&c->mu);
    if (rv != 0) {
        /* fsm_snapshot() would refuse, at every event raft handles. */
        return rv;
    }
    sr = lp2p__calloc(1, sizeof(*sr));
    if (sr == NULL) {
        return LP2P_ENOMEM;
    }
    sr->target = raft_last_applied(r);
    sr->cb = cb;
    sr->ctx = ctx;
    lp2p__list_insert_tail(&c->snaps, &sr->link);
    if (c->snap_raft == NULL) {
        c->snap_raft = r;
        c->snap_threshold = r->legacy.snapshot_threshold;
        raft_set_snapshot_threshold(r, 1);
    }
    /* Answered on a later turn (p2praft__turn_cb()). */
    return 0;
}

int p2praft_consensus_snapshot_wait(struct p2praft_consensus *c,
                                    uint64_t *index)
{
    struct xcall x;
    int rv;
    if (index != NULL) {
        *index = 0;
    }
    if (c == NULL) {
        return LP2P_EINVAL;
    }
    rv = p2praft__may_block(c);
    if (rv != 0) {
        return rv;
    }
    memset(&x, 0, sizeof(x));
    x.kind = XCALL_SNAPSHOT;
    rv = lp2p__bridge_call(&c->calls, &x.lc);
    if (index != NULL) {
        *index = x.index;
    }
    return rv;
}

