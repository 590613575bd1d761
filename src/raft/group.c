/*
 * Teardown of a consensus group set up with the public API: raft, its io,
 * the consensus (FSM), the actor and the host, each closed only once
 * nothing closed before it still uses it (order and reasons: the comment
 * of p2praft_group_close() in p2praft.h).
 *
 * raft_close() is asynchronous and its callback gets only the raft, so the
 * group rides on raft->data for the duration (the caller's value is put
 * back before anything else runs).
 */
#include <raft.h>

#include "p2praft.h"
#include "util/heap.h"
#include "util/log.h"

#define MODULE "consensus"

struct closer {
    struct p2praft_group g;
    void *raft_data; /* the caller's raft->data */
    void (*done)(void *ctx);
    void *ctx;
};

static void host_closed(struct lp2p_host *host, void *data)
{
    struct closer *cl = data;
    void (*done)(void *ctx) = cl->done;
    void *ctx = cl->ctx;
    (void)host;
    lp2p__free(cl);
    if (done != NULL) {
        done(ctx);
    }
}

/* raft no longer uses its io, its FSM or the actor. */
static void after_raft(struct closer *cl)
{
    p2praft_consensus_free(cl->g.consensus);
    p2praft_actor_free(cl->g.actor);
    p2praft_io_close(cl->g.io);
    if (cl->g.host != NULL) {
        lp2p_host_close(cl->g.host, host_closed, cl);
        return;
    }
    host_closed(NULL, cl);
}

static void raft_closed(struct raft *r)
{
    struct closer *cl = r->data;
    r->data = cl->raft_data;
    after_raft(cl);
}

int p2praft_group_close(const struct p2praft_group *g, void (*done)(void *ctx),
                        void *ctx)
{
    struct closer *cl;
    if (g == NULL) {
        return LP2P_EINVAL;
    }
    if (g->raft != NULL && g->raft->legacy.closing) {
        return LP2P_ESTATE;
    }
    cl = lp2p__calloc(1, sizeof(*cl));
    if (cl == NULL) {
        return LP2P_ENOMEM;
    }
    cl->g = *g;
    cl->done = done;
    cl->ctx = ctx;
    if (g->raft == NULL) {
        after_raft(cl);
        return 0;
    }
    LOG_DEBUG(MODULE, "closing raft before its io, FSM, actor and host");
    cl->raft_data = g->raft->data;
    g->raft->data = cl;
    raft_close(g->raft, raft_closed);
    return 0;
}
