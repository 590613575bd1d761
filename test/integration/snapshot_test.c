/* See snapshot_test.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot_test.h"
#include "test.h"

struct snap_result {
    const struct p2praft_type *type;
    int done;
    int status;
    char *state_msg;
};

static void snap_result_cb(void *ctx, int status, void *state,
                           const char *errmsg)
{
    struct snap_result *r = ctx;
    (void)errmsg;
    r->done++;
    r->status = status;
    if (state != NULL) {
        struct harness_msg_state *s = state;
        free(r->state_msg);
        r->state_msg = strdup(s->Msg != NULL ? s->Msg : "");
        p2praft_value_destroy(r->type, state);
    }
}

static bool snap_result_done(void *ctx)
{
    return ((struct snap_result *)ctx)->done > 0;
}

static char *snap_node_msg(const struct snapshot_harness *h, unsigned i,
                           int *rv)
{
    void *st;
    char *m;
    *rv = p2praft_consensus_get_current_state(h->consensus(h->cl, i), &st);
    if (*rv != 0) {
        return NULL;
    }
    m = strdup(((struct harness_msg_state *)st)->Msg
                   ? ((struct harness_msg_state *)st)->Msg
                   : "");
    p2praft_value_destroy(h->type, st);
    return m;
}

struct snap_msg_ctx {
    const struct snapshot_harness *h;
    const char *want;
};

struct snap_persisted_ctx {
    const struct snapshot_harness *h;
    struct harness_snap sc;
};

static bool snap_persisted(void *ctx)
{
    struct snap_persisted_ctx *p = ctx;
    if (p->h->persisted == NULL) {
        return harness_snapshot_persisted(&p->sc);
    }
    return !p->sc.r->legacy.snapshot_taking &&
           p2praft_consensus_snapshots(p->sc.c) > p->sc.before &&
           p->h->persisted(p->h->cl, 0);
}

static bool snap_all_have_msg(void *ctx)
{
    struct snap_msg_ctx *m = ctx;
    unsigned i;
    for (i = 0; i < 2; i++) {
        int rv;
        char *got = snap_node_msg(m->h, i, &rv);
        bool same = got != NULL && strcmp(got, m->want) == 0;
        free(got);
        if (!same) {
            return false;
        }
    }
    return true;
}

struct snap_now {
    int done;
    int status;
    uint64_t index;
};

static void snap_now_cb(void *ctx, int status, uint64_t index)
{
    struct snap_now *s = ctx;
    s->done++;
    s->status = status;
    s->index = index;
}

static bool snap_now_done(void *ctx)
{
    return ((struct snap_now *)ctx)->done > 0;
}

void snapshot_test_run(const struct snapshot_harness *h, int leader)
{
    struct snap_now sn = {0, 0, 0};
    struct harness_pump p;
    struct snap_persisted_ctx pc;
    struct snap_result r;
    struct snap_msg_ctx mc;
    struct harness_msg_state last;
    int rv, n;
    char want[32], *msg;
    memset(&p, 0, sizeof(p));
    memset(&r, 0, sizeof(r));
    r.type = h->type;

    /* 5000 commits (fewer under valgrind), 64 in flight at a time; the
     * last one alone, then node 0 snapshots the final state (snapshot
     * now). */
    n = harness_slow() ? 600 : 5000;
    p.c = h->consensus(h->cl, (unsigned)leader);
    p.type = h->type;
    p.total = n - 1;
    harness_pump_start(&p);
    ASSERT(harness_run_until(h->loop, harness_pump_done, &p, h->wait_ms * 6));
    if (p.failures != 0) {
        test__fail(__FILE__, __LINE__, "%d commits failed, first: %s",
                   p.failures, lp2p_errname(p.first_error));
    }
    /* Node 0 snapshots after the final entry; wait until a snapshot on
     * its disk covers its last applied index. */
    mc.h = h;
    mc.want = want;
    pc.h = h;
    pc.sc.r = h->raft(h->cl, 0);
    pc.sc.c = h->consensus(h->cl, 0);
    pc.sc.dir = h->dir(h->cl, 0);
    pc.sc.before = p2praft_consensus_snapshots(pc.sc.c);
    snprintf(want, sizeof(want), "count: %d", n - 1);
    last.Msg = want;
    ASSERT_OK(p2praft_consensus_commit_state(
        h->consensus(h->cl, (unsigned)leader), &last, snap_result_cb, &r));
    ASSERT(harness_run_until(h->loop, snap_result_done, &r, h->wait_ms));
    ASSERT_OK(r.status);
    ASSERT_STR_EQ(r.state_msg, want);
    free(r.state_msg);
    ASSERT(harness_run_until(h->loop, snap_all_have_msg, &mc, h->wait_ms));
    ASSERT_OK(p2praft_consensus_snapshot(pc.sc.c, snap_now_cb, &sn));
    ASSERT(harness_run_until(h->loop, snap_now_done, &sn, h->wait_ms));
    ASSERT_OK(sn.status);
    ASSERT(sn.index >= raft_last_applied(pc.sc.r));
    ASSERT(harness_run_until(h->loop, snap_persisted, &pc, h->wait_ms));

    h->stop(h->cl, 0);
    h->stop(h->cl, 1);
    if (h->drop_log != NULL) {
        ASSERT(h->drop_log(h->cl, 0) >= 1);
    } else {
        ASSERT(harness_drop_segments(h->dir(h->cl, 0)) >= 2);
    }

    /* Restart node 0 from its snapshot alone. */
    ASSERT_OK(h->start(h->cl, 0, false));
    ASSERT_EQ_U64(p2praft_consensus_restored(h->consensus(h->cl, 0)), 1);
    msg = snap_node_msg(h, 0, &rv);
    ASSERT_OK(rv);
    ASSERT_STR_EQ(msg, want); /* "count: 4999" outside valgrind */
    free(msg);
}
