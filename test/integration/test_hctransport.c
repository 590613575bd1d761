/*
 * The raft I/O's hashicorp wire mode (src/raft/hctransport.c): p2praft
 * nodes speaking go-libp2p-raft's /raft/1.0.0/rpc among themselves (the
 * mixed Go/C clusters are interop/go/raftnode/mixed-test.sh, in `make
 * interop`): a cluster elects, commits, survives the loss of its leader
 * and brings a node that lagged past the leader's compaction back with
 * InstallSnapshot; libraft's TimeoutNow transfers leadership; and a node of
 * one wire refuses raft streams of the other.
 */
#include <stdio.h>
#include <string.h>

#include "netcluster.h"
#include "p2praft.h"
#include "raft/io.h"
#include "test.h"

#define WAIT_MS (nc_slow() ? 60000u : 10000u)

static const struct p2praft_field mstate_fields[] = {
    {"Msg", offsetof(struct harness_msg_state, Msg),
     {P2PRAFT_KIND_STRING, 0, 0}}};
static const struct p2praft_type mstate_type = {
    "raftState", sizeof(struct harness_msg_state), mstate_fields, 1,
    NULL, NULL, NULL, NULL};

struct seq {
    int done, failed, total;
    struct p2praft_consensus *c;
    char last[32];
};

static void seq_cb(void *ctx, int status, void *state, const char *errmsg);

static void seq_next(struct seq *q)
{
    struct harness_msg_state st;
    snprintf(q->last, sizeof(q->last), "n=%d", q->done);
    st.Msg = q->last;
    if (p2praft_consensus_commit_state(q->c, &st, seq_cb, q) != 0) {
        q->failed++;
    }
}

static void seq_cb(void *ctx, int status, void *state, const char *errmsg)
{
    struct seq *q = ctx;
    p2praft_value_destroy(&mstate_type, state);
    if (status != 0) {
        fprintf(stderr, "  commit %d: %s: %s\n", q->done,
                p2praft_strerror(status), errmsg != NULL ? errmsg : "");
        q->failed++;
        return;
    }
    if (++q->done < q->total) {
        seq_next(q);
    }
}

static bool seq_over(void *ctx)
{
    struct seq *q = ctx;
    return q->failed > 0 || q->done >= q->total;
}

static bool commit_n(struct nc *nc, int leader, int n)
{
    struct seq q;
    memset(&q, 0, sizeof(q));
    q.c = nc->nodes[leader].c;
    q.total = n;
    seq_next(&q);
    return nc_run_until(nc, seq_over, &q, WAIT_MS * 3) && q.failed == 0 &&
           q.done == n;
}

struct state_ctx {
    struct nc_node *nd;
    const char *want;
};

static bool has_state(void *ctx)
{
    struct state_ctx *s = ctx;
    void *st = NULL;
    bool ok;
    if (!s->nd->running ||
        p2praft_consensus_get_current_state(s->nd->c, &st) != 0) {
        return false;
    }
    ok = strcmp(((struct harness_msg_state *)st)->Msg, s->want) == 0;
    p2praft_value_destroy(&mstate_type, st);
    return ok;
}

TEST(hctransport, cluster_commits_fails_over_and_installs)
{
    static struct nc nc;
    struct state_ctx sc;
    struct p2praft_io_stats st;
    int leader, next;
    unsigned i, lag;
    memset(&nc, 0, sizeof(nc));
    nc.store = P2PRAFT_STORE_MEM;
    nc.wire = P2PRAFT_WIRE_HASHICORP;
    nc.snapshot_threshold = 16;
    nc.snapshot_trailing = 4;
    ASSERT_OK(nc_init(&nc, 3, &mstate_type, NULL, NULL));
    leader = nc_wait_leader(&nc, WAIT_MS);
    ASSERT(leader >= 0);
    ASSERT(commit_n(&nc, leader, 20));
    for (i = 0; i < 3; i++) {
        sc.nd = &nc.nodes[i];
        sc.want = "n=19";
        ASSERT(nc_run_until(&nc, has_state, &sc, WAIT_MS));
    }
    /* The leader goes away; the other two elect one of them. */
    nc_kill(&nc, (unsigned)leader);
    next = nc_wait_leader(&nc, WAIT_MS);
    ASSERT(next >= 0 && next != leader);
    ASSERT(commit_n(&nc, next, 40)); /* past the snapshot threshold */
    /* The old leader comes back empty-handed for what it missed: the
     * entries were compacted, so it gets the snapshot. */
    lag = (unsigned)leader;
    ASSERT_OK(nc_start(&nc, lag, false));
    sc.nd = &nc.nodes[lag];
    sc.want = "n=39";
    ASSERT(nc_run_until(&nc, has_state, &sc, WAIT_MS));
    p2praft_io_stats(&nc.nodes[lag].io, &st);
    ASSERT(st.installs > 0);
    ASSERT(p2praft_consensus_restored(nc.nodes[lag].c) > 0);
    nc_close(&nc);
}

struct xfer {
    struct raft_transfer req;
    int done;
};

static void xfer_cb(struct raft_transfer *req)
{
    struct xfer *x = req->data;
    x->done++;
}

struct leader_ctx {
    struct nc *nc;
    unsigned want;
    struct xfer *x;
};

static bool leader_is(void *ctx)
{
    struct leader_ctx *l = ctx;
    return l->x->done > 0 &&
           raft_state(&l->nc->nodes[l->want].raft) == RAFT_LEADER;
}

TEST(hctransport, leadership_transfer_by_timeout_now)
{
    static struct nc nc;
    struct xfer x;
    struct leader_ctx lc;
    int leader;
    unsigned target;
    memset(&nc, 0, sizeof(nc));
    memset(&x, 0, sizeof(x));
    nc.store = P2PRAFT_STORE_MEM;
    nc.wire = P2PRAFT_WIRE_HASHICORP;
    ASSERT_OK(nc_init(&nc, 3, &mstate_type, NULL, NULL));
    leader = nc_wait_leader(&nc, WAIT_MS);
    ASSERT(leader >= 0);
    ASSERT(commit_n(&nc, leader, 5));
    target = ((unsigned)leader + 1) % 3;
    x.req.data = &x;
    ASSERT_OK(raft_transfer(&nc.nodes[leader].raft, &x.req,
                            nc.nodes[target].id, xfer_cb));
    lc.nc = &nc;
    lc.want = target;
    lc.x = &x;
    ASSERT(nc_run_until(&nc, leader_is, &lc, WAIT_MS));
    ASSERT(commit_n(&nc, (int)target, 5));
    nc_close(&nc);
}

/* ---- a node of one wire refuses raft streams of the other ---- */

struct open_res {
    int done;
    int status;
};

static void open_cb(struct lp2p_stream *s, int status, void *data)
{
    struct open_res *r = data;
    r->done = 1;
    r->status = status;
    if (s != NULL) {
        lp2p_stream_reset(s);
        lp2p_stream_close(s, NULL, NULL);
    }
}

static bool opened(void *ctx)
{
    return ((struct open_res *)ctx)->done != 0;
}

static int open_status(struct nc *nc, unsigned from, unsigned to,
                       const char *proto)
{
    struct open_res r = {0, 0};
    const char *const protos[] = {proto};
    ASSERT_OK(lp2p_stream_open(nc->nodes[from].host, &nc->nodes[to].pid,
                               protos, 1, open_cb, &r));
    ASSERT(nc_run_until(nc, opened, &r, WAIT_MS));
    return r.status;
}

TEST(hctransport, each_wire_refuses_the_other)
{
    static struct nc hc, pc;
    int leader;
    memset(&hc, 0, sizeof(hc));
    memset(&pc, 0, sizeof(pc));
    hc.store = pc.store = P2PRAFT_STORE_MEM;
    hc.wire = P2PRAFT_WIRE_HASHICORP;
    ASSERT_OK(nc_init(&hc, 2, &mstate_type, NULL, NULL));
    leader = nc_wait_leader(&hc, WAIT_MS);
    ASSERT(leader >= 0);
    /* A hashicorp-wire node serves /raft/1.0.0/rpc and not p2praft's
     * protocol; its peer may open the former only. */
    ASSERT_EQ(open_status(&hc, 0, 1, P2PRAFT_PROTOCOL), LP2P_ENOPROTO);
    ASSERT_OK(open_status(&hc, 0, 1, P2PRAFT_HC_PROTOCOL));
    nc_close(&hc);
    ASSERT_OK(nc_init(&pc, 2, &mstate_type, NULL, NULL));
    leader = nc_wait_leader(&pc, WAIT_MS);
    ASSERT(leader >= 0);
    ASSERT_EQ(open_status(&pc, 0, 1, P2PRAFT_HC_PROTOCOL), LP2P_ENOPROTO);
    ASSERT_OK(open_status(&pc, 0, 1, P2PRAFT_PROTOCOL));
    nc_close(&pc);
}

/* The seed's bare entries have any length, and raft_uv takes multiples of
 * 8 bytes only (the default format pads its own): a disk cluster stores
 * and applies them, snapshots bare bytes, and a restarted node loads its
 * snapshot and the entries after it back exactly. */
TEST(hctransport, disk_store_keeps_bare_entries)
{
    static struct nc nc;
    struct state_ctx sc;
    int leader;
    unsigned i, other;
    memset(&nc, 0, sizeof(nc));
    nc.store = P2PRAFT_STORE_DISK;
    nc.wire = P2PRAFT_WIRE_HASHICORP;
    nc.snapshot_threshold = 8; /* bare snapshots on disk too */
    nc.snapshot_trailing = 2;
    ASSERT_OK(nc_init(&nc, 3, &mstate_type, NULL, NULL));
    leader = nc_wait_leader(&nc, WAIT_MS);
    ASSERT(leader >= 0);
    ASSERT(commit_n(&nc, leader, 13)); /* "n=0".."n=12": 3- and 4-byte strings */
    for (i = 0; i < 3; i++) {
        sc.nd = &nc.nodes[i];
        sc.want = "n=12";
        ASSERT(nc_run_until(&nc, has_state, &sc, WAIT_MS));
    }
    other = ((unsigned)leader + 1) % 3;
    ASSERT(p2praft_consensus_snapshots(nc.nodes[other].c) > 0);
    nc_stop(&nc, other);
    ASSERT_OK(nc_start(&nc, other, false));
    sc.nd = &nc.nodes[other];
    sc.want = "n=12";
    ASSERT(nc_run_until(&nc, has_state, &sc, WAIT_MS));
    nc_close(&nc);
}
