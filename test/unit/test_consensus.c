/*
 * The consensus FSM (src/raft/consensus.c), deterministically, on libraft's
 * in-memory fixture (virtual time, no sockets, no disk): group commit with
 * exact per-op results, and snapshot install on a lagging follower. The
 * consensus objects still need a libuv loop for their idle/timer/async
 * handles; it is run with NOWAIT.
 */
#include <raft.h>
#include <raft/fixture.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "p2praft.h"
#include "test.h"

struct fstate {
    char *Msg;
};
static const struct p2praft_field fstate_fields[] = {
    {"Msg", offsetof(struct fstate, Msg), {P2PRAFT_KIND_STRING, 0, 0}}};
static const struct p2praft_type fstate_type = {
    "state", sizeof(struct fstate), fstate_fields, 1, NULL, NULL, NULL, NULL};

struct fop {
    char *Append;
    bool Fail;
};
static const struct p2praft_field fop_fields[] = {
    {"Append", offsetof(struct fop, Append), {P2PRAFT_KIND_STRING, 0, 0}},
    {"Fail", offsetof(struct fop, Fail), {P2PRAFT_KIND_BOOL, 0, 0}}};
static const struct p2praft_type fop_type = {
    "op", sizeof(struct fop), fop_fields, 2, NULL, NULL, NULL, NULL};

static int fop_apply(const void *op, const void *state, void *new_state,
                     void *ctx)
{
    const struct fop *o = op;
    const struct fstate *s = state;
    struct fstate *ns = new_state;
    const char *a = s->Msg ? s->Msg : "", *b = o->Append ? o->Append : "";
    (void)ctx;
    if (o->Fail) {
        return -1;
    }
    ns->Msg = p2praft_malloc(strlen(a) + strlen(b) + 1);
    if (ns->Msg == NULL) {
        return P2PRAFT_ENOMEM;
    }
    strcpy(ns->Msg, a);
    strcat(ns->Msg, b);
    return 0;
}
static const struct p2praft_op_type fop_optype = {
    .type = &fop_type, .apply_to = fop_apply, .ctx = NULL};

#define N 3

/* Records the entries node 0's FSM applies (seed format tests). */
#define REC_MAX 16
struct rec {
    struct raft_fsm fsm;
    struct raft_fsm *inner;
    unsigned n;
    uint8_t *buf[REC_MAX];
    size_t len[REC_MAX];
};

static int rec_apply(struct raft_fsm *fsm, const struct raft_buffer *b,
                     void **result)
{
    struct rec *r = fsm->data;
    if (r->n < REC_MAX) {
        r->buf[r->n] = malloc(b->len > 0 ? b->len : 1);
        memcpy(r->buf[r->n], b->base, b->len);
        r->len[r->n++] = b->len;
    }
    return r->inner->apply(r->inner, b, result);
}

static int rec_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[],
                        unsigned *n)
{
    struct rec *r = fsm->data;
    return r->inner->snapshot(r->inner, bufs, n);
}

static int rec_finalize(struct raft_fsm *fsm, struct raft_buffer *bufs[],
                        unsigned *n)
{
    struct rec *r = fsm->data;
    return r->inner->snapshot_finalize(r->inner, bufs, n);
}

static int rec_restore(struct raft_fsm *fsm, struct raft_buffer *b)
{
    struct rec *r = fsm->data;
    return r->inner->restore(r->inner, b);
}

struct fx {
    uv_loop_t loop;
    struct raft_fixture f;
    struct p2praft_consensus *c[N];
    struct p2praft_actor *a[N];
    unsigned leader;
    bool seed;       /* the seed's log format on every node */
    struct rec *rec; /* wraps node 0's FSM when set */
};

static void fx_setup_ops(struct fx *x, const struct p2praft_op_type *ot)
{
    struct raft_configuration conf;
    unsigned i;
    ASSERT_OK(uv_loop_init(&x->loop));
    ASSERT_OK(raft_fixture_init(&x->f));
    for (i = 0; i < N; i++) {
        struct raft_fsm *fsm;
        ASSERT_OK(p2praft_oplog_new(&x->c[i], &x->loop, &fstate_type, ot,
                                    NULL));
        if (x->seed) {
            ASSERT_OK(p2praft_consensus_set_seed_format(x->c[i], true));
        }
        fsm = p2praft_consensus_fsm(x->c[i]);
        if (i == 0 && x->rec != NULL) {
            x->rec->inner = fsm;
            x->rec->fsm = *fsm;
            x->rec->fsm.data = x->rec;
            x->rec->fsm.apply = rec_apply;
            x->rec->fsm.snapshot = rec_snapshot;
            x->rec->fsm.snapshot_finalize = rec_finalize;
            x->rec->fsm.restore = rec_restore;
            fsm = &x->rec->fsm;
        }
        ASSERT_OK(raft_fixture_grow(&x->f, fsm));
        p2praft_raft_trace(raft_fixture_get(&x->f, i));
    }
    ASSERT_OK(raft_fixture_configuration(&x->f, N, &conf));
    ASSERT_OK(raft_fixture_bootstrap(&x->f, &conf));
    raft_configuration_close(&conf);
    ASSERT_OK(raft_fixture_start(&x->f));
    for (i = 0; i < N; i++) {
        struct raft *r = raft_fixture_get(&x->f, i);
        ASSERT_OK(p2praft_actor_new(&x->a[i], r));
        p2praft_consensus_set_actor(x->c[i], x->a[i]);
    }
    ASSERT(raft_fixture_step_until_has_leader(&x->f, 10000));
    x->leader = raft_fixture_leader_index(&x->f);
    /* let the leader's no-op barrier commit everywhere */
    ASSERT(raft_fixture_step_until_applied(
        &x->f, N, raft_last_index(raft_fixture_get(&x->f, x->leader)),
        10000));
}

static void fx_setup(struct fx *x)
{
    fx_setup_ops(x, &fop_optype);
}

static void fx_teardown(struct fx *x)
{
    unsigned i;
    raft_fixture_close(&x->f);
    for (i = 0; i < N; i++) {
        p2praft_consensus_free(x->c[i]);
        p2praft_actor_free(x->a[i]);
    }
    uv_run(&x->loop, UV_RUN_DEFAULT);
    ASSERT_OK(uv_loop_close(&x->loop));
}

struct res {
    int done;
    int status;
    char msg[64];
};

static void res_cb(void *ctx, int status, void *state, const char *errmsg)
{
    struct res *r = ctx;
    (void)errmsg;
    r->done++;
    r->status = status;
    if (state != NULL) {
        snprintf(r->msg, sizeof(r->msg), "%s",
                 ((struct fstate *)state)->Msg ? ((struct fstate *)state)->Msg
                                               : "");
        p2praft_value_destroy(&fstate_type, state);
    }
}

struct all_ctx {
    struct fx *x;
    uint64_t want;
    struct res *res;
    int nres;
};

static bool all_done(struct raft_fixture *f, void *arg)
{
    struct all_ctx *a = arg;
    unsigned i;
    int k;
    (void)f;
    for (i = 0; i < N; i++) {
        if (p2praft_consensus_applied(a->x->c[i]) < a->want) {
            return false;
        }
    }
    for (k = 0; k < a->nres; k++) {
        if (a->res[k].done == 0) {
            return false;
        }
    }
    return true;
}

static char *head_msg(struct p2praft_consensus *c, int *rv)
{
    void *st;
    char *m;
    *rv = p2praft_consensus_get_log_head(c, &st);
    if (*rv != 0) {
        return NULL;
    }
    m = strdup(((struct fstate *)st)->Msg ? ((struct fstate *)st)->Msg : "");
    p2praft_value_destroy(&fstate_type, st);
    return m;
}

TEST(fixture, group_commit_per_op_results)
{
    struct fx x;
    struct res r[5];
    struct fop ops[4] = {{"a", false}, {"b", false}, {"x", true}, {"c", false}};
    struct fstate rb = {"R"};
    struct all_ctx ac;
    raft_index before;
    unsigned i;
    int rv;
    char *m;
    memset(&x, 0, sizeof(x));
    memset(r, 0, sizeof(r));
    fx_setup(&x);
    before = raft_last_index(raft_fixture_get(&x.f, x.leader));
    for (i = 0; i < 4; i++) {
        ASSERT_OK(p2praft_consensus_commit_op(x.c[x.leader], &ops[i], res_cb,
                                              &r[i]));
    }
    /* all five in the same loop turn */
    ASSERT_OK(p2praft_consensus_rollback(x.c[x.leader], &rb, res_cb, &r[4]));
    uv_run(&x.loop, UV_RUN_NOWAIT); /* idle phase: one flush */
    /* Group commit: the five commits became ONE raft entry. */
    ASSERT_EQ(raft_last_index(raft_fixture_get(&x.f, x.leader)), before + 1);
    ac.x = &x;
    ac.want = 5;
    ac.res = r;
    ac.nres = 5;
    ASSERT(raft_fixture_step_until(&x.f, all_done, &ac, 10000));
    /* Exact per-op apply semantics inside the batch. */
    ASSERT_OK(r[0].status);
    ASSERT_STR_EQ(r[0].msg, "a");
    ASSERT_OK(r[1].status);
    ASSERT_STR_EQ(r[1].msg, "ab");
    ASSERT_EQ(r[2].status, P2PRAFT_EAPPLY);
    ASSERT_OK(r[3].status); /* applies to "ab", node stays inconsistent */
    ASSERT_STR_EQ(r[3].msg, "abc");
    ASSERT_OK(r[4].status);
    ASSERT_STR_EQ(r[4].msg, "R");
    for (i = 0; i < N; i++) {
        m = head_msg(x.c[i], &rv);
        ASSERT_OK(rv);
        ASSERT_STR_EQ(m, "R");
        free(m);
    }
    fx_teardown(&x);
}

/* The seed's log format: one bare entry per commit (no envelope, no group
 * commit), a rollback that is just the encoded state, and the same per-op
 * results as the default format. */
TEST(fixture, seed_format_bare_entries)
{
    struct fx x;
    struct rec rec;
    struct res r[4];
    struct fop ops[3] = {{"a", false}, {"x", true}, {"b", false}};
    struct fstate rb = {"R"};
    struct all_ctx ac;
    raft_index before;
    unsigned i, first;
    uint8_t *enc;
    size_t len;
    char *m;
    int rv;
    memset(&x, 0, sizeof(x));
    memset(&rec, 0, sizeof(rec));
    memset(r, 0, sizeof(r));
    x.seed = true;
    x.rec = &rec;
    fx_setup(&x);
    ASSERT(p2praft_consensus_seed_format(x.c[0]));
    if (x.leader == 0) {
        /* node 0's FSM is wrapped, so its actor would not commit: lead
         * elsewhere */
        raft_fixture_depose(&x.f);
        raft_fixture_elect(&x.f, 1);
        x.leader = 1;
        ASSERT(raft_fixture_step_until_applied(
            &x.f, N, raft_last_index(raft_fixture_get(&x.f, 1)), 10000));
    }
    first = rec.n; /* the leader's no-op barrier is not an FSM entry */
    before = raft_last_index(raft_fixture_get(&x.f, x.leader));
    for (i = 0; i < 3; i++) {
        ASSERT_OK(p2praft_consensus_commit_op(x.c[x.leader], &ops[i], res_cb,
                                              &r[i]));
    }
    ASSERT_OK(p2praft_consensus_rollback(x.c[x.leader], &rb, res_cb, &r[3]));
    uv_run(&x.loop, UV_RUN_NOWAIT);
    /* No group commit: four commits in one loop turn, four entries. */
    ASSERT_EQ(raft_last_index(raft_fixture_get(&x.f, x.leader)), before + 4);
    ac.x = &x;
    ac.want = 4;
    ac.res = r;
    ac.nres = 4;
    ASSERT(raft_fixture_step_until(&x.f, all_done, &ac, 10000));
    ASSERT_OK(r[0].status);
    ASSERT_STR_EQ(r[0].msg, "a");
    ASSERT_EQ(r[1].status, P2PRAFT_EAPPLY);
    ASSERT_OK(r[2].status);
    ASSERT_STR_EQ(r[2].msg, "ab");
    ASSERT_OK(r[3].status);
    ASSERT_STR_EQ(r[3].msg, "R");
    /* Each entry is exactly the encoded op, and the rollback the encoded
     * state, as go-libp2p-raft writes them. */
    ASSERT_EQ(rec.n - first, 4);
    for (i = 0; i < 4; i++) {
        if (i < 3) {
            ASSERT_OK(p2praft_encode(&fop_type, &ops[i], &enc, &len));
        } else {
            ASSERT_OK(p2praft_encode(&fstate_type, &rb, &enc, &len));
        }
        ASSERT_EQ(rec.len[first + i], len);
        ASSERT_MEM_EQ(rec.buf[first + i], enc, len);
        p2praft_free(enc);
    }
    for (i = 0; i < N; i++) {
        m = head_msg(x.c[i], &rv);
        ASSERT_OK(rv);
        ASSERT_STR_EQ(m, "R");
        free(m);
    }
    /* Too late to switch formats once entries were applied. */
    ASSERT_ERR(p2praft_consensus_set_seed_format(x.c[0], false),
               P2PRAFT_EINVAL);
    fx_teardown(&x);
    for (i = 0; i < rec.n; i++) {
        free(rec.buf[i]);
    }
}

/* The seed's rules on entries from elsewhere (a Go leader): an op; a state
 * that is not an op is a rollback (heals); bytes that are neither make the
 * node inconsistent; snapshots are the bare EncodeSnapshot bytes. */
TEST(seed_format, apply_rules_and_bare_snapshots)
{
    uv_loop_t loop;
    struct p2praft_consensus *c;
    struct raft_fsm *fsm;
    struct fop op = {"x", false};
    struct fstate st = {"S"};
    struct raft_buffer b, *bufs = NULL;
    unsigned n = 0;
    uint8_t *enc, *snap;
    size_t len, slen;
    void *result = NULL;
    const uint8_t junk[] = {0xc1, 0x00};
    char *m;
    int rv;
    ASSERT_OK(uv_loop_init(&loop));
    ASSERT_OK(p2praft_oplog_new(&c, &loop, &fstate_type, &fop_optype, NULL));
    ASSERT_OK(p2praft_consensus_set_seed_format(c, true));
    fsm = p2praft_consensus_fsm(c);
    /* op on the zero state */
    ASSERT_OK(p2praft_encode(&fop_type, &op, &enc, &len));
    b.base = enc;
    b.len = len;
    ASSERT_OK(fsm->apply(fsm, &b, &result));
    p2praft_free(enc);
    m = head_msg(c, &rv);
    ASSERT_OK(rv);
    ASSERT_STR_EQ(m, "x");
    free(m);
    /* neither op nor state: inconsistent */
    b.base = (void *)junk;
    b.len = sizeof(junk);
    ASSERT_OK(fsm->apply(fsm, &b, &result));
    m = head_msg(c, &rv);
    ASSERT_EQ(rv, P2PRAFT_EINCONSISTENT);
    ASSERT(m == NULL);
    /* a snapshot is refused while inconsistent */
    ASSERT(fsm->snapshot(fsm, &bufs, &n) != 0);
    /* a state (not an op: unknown field "Msg"): a rollback, which heals */
    ASSERT_OK(p2praft_encode(&fstate_type, &st, &enc, &len));
    b.base = enc;
    b.len = len;
    ASSERT_OK(fsm->apply(fsm, &b, &result));
    p2praft_free(enc);
    m = head_msg(c, &rv);
    ASSERT_OK(rv);
    ASSERT_STR_EQ(m, "S");
    free(m);
    /* the snapshot: exactly EncodeSnapshot's bytes, one buffer */
    ASSERT_OK(fsm->snapshot(fsm, &bufs, &n));
    ASSERT_EQ(n, 1);
    ASSERT_OK(p2praft_encode_snapshot(&fstate_type, &st, &snap, &slen));
    ASSERT_EQ(bufs[0].len, slen);
    ASSERT_MEM_EQ(bufs[0].base, snap, slen);
    ASSERT_OK(fsm->snapshot_finalize(fsm, &bufs, &n));
    /* and bare bytes restore (raft hands over a raft_malloc'd buffer) */
    b.base = raft_malloc(slen);
    memcpy(b.base, snap, slen);
    b.len = slen;
    ASSERT_OK(fsm->restore(fsm, &b));
    p2praft_free(snap);
    ASSERT_EQ_U64(p2praft_consensus_restored(c), 1);
    p2praft_consensus_free(c);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_OK(uv_loop_close(&loop));
}

TEST(fixture, inconsistent_until_rollback)
{
    struct fx x;
    struct res r[3];
    struct fop bad = {"x", true}, good = {"g", false};
    struct fstate rb = {"healed"};
    struct all_ctx ac;
    unsigned i;
    int rv;
    char *m;
    memset(&x, 0, sizeof(x));
    memset(r, 0, sizeof(r));
    fx_setup(&x);
    m = head_msg(x.c[0], &rv);
    ASSERT_EQ(rv, P2PRAFT_ENOSTATE);
    ASSERT_OK(p2praft_consensus_commit_op(x.c[x.leader], &bad, res_cb, &r[0]));
    uv_run(&x.loop, UV_RUN_NOWAIT);
    ac.x = &x;
    ac.want = 1;
    ac.res = r;
    ac.nres = 1;
    ASSERT(raft_fixture_step_until(&x.f, all_done, &ac, 10000));
    ASSERT_EQ(r[0].status, P2PRAFT_EAPPLY);
    /* a later good op does not heal (seed semantics) */
    ASSERT_OK(p2praft_consensus_commit_op(x.c[x.leader], &good, res_cb,
                                          &r[1]));
    uv_run(&x.loop, UV_RUN_NOWAIT);
    ac.want = 2;
    ac.nres = 2;
    ASSERT(raft_fixture_step_until(&x.f, all_done, &ac, 10000));
    for (i = 0; i < N; i++) {
        m = head_msg(x.c[i], &rv);
        ASSERT_EQ(rv, P2PRAFT_EINCONSISTENT);
        ASSERT(m == NULL);
    }
    ASSERT_OK(p2praft_consensus_rollback(x.c[x.leader], &rb, res_cb, &r[2]));
    uv_run(&x.loop, UV_RUN_NOWAIT);
    ac.want = 3;
    ac.nres = 3;
    ASSERT(raft_fixture_step_until(&x.f, all_done, &ac, 10000));
    for (i = 0; i < N; i++) {
        m = head_msg(x.c[i], &rv);
        ASSERT_OK(rv);
        ASSERT_STR_EQ(m, "healed");
        free(m);
    }
    fx_teardown(&x);
}

struct restored_ctx {
    struct fx *x;
    unsigned i;
    const char *want;
};

static bool follower_restored(struct raft_fixture *f, void *arg)
{
    struct restored_ctx *rc = arg;
    int rv;
    char *m;
    bool ok;
    (void)f;
    if (p2praft_consensus_restored(rc->x->c[rc->i]) == 0) {
        return false;
    }
    m = head_msg(rc->x->c[rc->i], &rv);
    ok = m != NULL && strcmp(m, rc->want) == 0;
    free(m);
    return ok;
}

TEST(fixture, snapshot_install_on_lagging_follower)
{
    struct fx x;
    struct all_ctx ac;
    struct restored_ctx rc;
    unsigned i, lag, k;
    char want[512];
    memset(&x, 0, sizeof(x));
    fx_setup(&x);
    for (i = 0; i < N; i++) {
        raft_set_snapshot_threshold(raft_fixture_get(&x.f, i), 8);
        raft_set_snapshot_trailing(raft_fixture_get(&x.f, i), 2);
    }
    lag = (x.leader + 1) % N;
    for (i = 0; i < N; i++) {
        if (i != lag) {
            raft_fixture_disconnect(&x.f, lag, i);
            raft_fixture_disconnect(&x.f, i, lag);
        }
    }
    want[0] = '\0';
    for (k = 0; k < 40; k++) {
        struct fop op;
        char piece[8];
        snprintf(piece, sizeof(piece), "%u,", k);
        strcat(want, piece);
        op.Append = piece;
        op.Fail = false;
        ASSERT_OK(p2praft_consensus_commit_op(x.c[x.leader], &op, NULL, NULL));
        uv_run(&x.loop, UV_RUN_NOWAIT); /* one entry per op */
        raft_fixture_step_n(&x.f, 3);
    }
    ac.x = &x;
    ac.res = NULL;
    ac.nres = 0;
    ac.want = 40;
    /* the two connected nodes applied everything and snapshotted */
    {
        unsigned other = (lag + 1) % N == x.leader ? (lag + 2) % N
                                                   : (lag + 1) % N;
        struct p2praft_consensus *saved = x.c[lag];
        (void)other;
        x.c[lag] = x.c[x.leader]; /* exclude the lagging node from the wait */
        ASSERT(raft_fixture_step_until(&x.f, all_done, &ac, 20000));
        x.c[lag] = saved;
    }
    ASSERT(p2praft_consensus_snapshots(x.c[x.leader]) > 0);
    ASSERT_EQ_U64(p2praft_consensus_applied(x.c[lag]), 0);
    for (i = 0; i < N; i++) {
        if (i != lag) {
            raft_fixture_reconnect(&x.f, lag, i);
            raft_fixture_reconnect(&x.f, i, lag);
        }
    }
    /* The leader's log no longer has the early entries: it must send its
     * snapshot, whose content matches the index it is labelled with. */
    rc.x = &x;
    rc.i = lag;
    rc.want = want;
    ASSERT(raft_fixture_step_until(&x.f, follower_restored, &rc, 20000));
    fx_teardown(&x);
}

/* libraft's tracer output lands in the log hook, module "raft", mapped. */
struct logcap {
    int raft_info;
    int other;
};

static void logcap_cb(void *ctx, enum lp2p_log_level level,
                      const char *module, const char *msg)
{
    struct logcap *l = ctx;
    (void)msg;
    if (strcmp(module, "raft") == 0 && level == LP2P_LOG_INFO) {
        l->raft_info++;
    } else {
        l->other++;
    }
}

TEST(fixture, raft_tracer_into_log_hook)
{
    struct fx x;
    struct logcap l;
    memset(&x, 0, sizeof(x));
    memset(&l, 0, sizeof(l));
    lp2p_log_set(LP2P_LOG_INFO, logcap_cb, &l);
    fx_setup(&x); /* elections log at raft's info level (3) */
    lp2p_log_set(LP2P_LOG_OFF, NULL, NULL);
    fx_teardown(&x);
    ASSERT(l.raft_info > 0);
    /* with logging off, the tracer is removed (no formatting cost) */
    {
        static struct raft r;
        r.tracer = p2praft_raft_tracer();
        p2praft_raft_trace(&r);
        ASSERT(r.tracer == NULL);
        lp2p_log_set(LP2P_LOG_WARN, NULL, NULL);
        p2praft_raft_trace(&r);
        ASSERT(r.tracer == p2praft_raft_tracer());
        lp2p_log_set(LP2P_LOG_OFF, NULL, NULL);
    }
}

/* ---- OOM sweep over a whole fixture commit: setup, flush, apply on three
 * nodes, callback copies, teardown. Failed allocations must surface as
 * errors (or an inconsistent node) and never leak. ---- */

#include "oom.h"

/* Which op type the sweep commits with, and the callback that reads what
 * its commits hand back (NULL ctx: fop_optype, res_cb). */
struct oom_ops {
    const struct p2praft_op_type *ot;
    p2praft_commit_cb cb;
};

static int oom_fixture_body(void *ctx)
{
    static const struct oom_ops by_copy = {&fop_optype, res_cb};
    const struct oom_ops *ops = ctx != NULL ? ctx : &by_copy;
    struct fx x;
    struct raft_configuration conf;
    struct res r;
    struct fop op = {"a", false};
    unsigned i, n_c = 0, n_a = 0;
    int rv = 0;
    memset(&x, 0, sizeof(x));
    memset(&r, 0, sizeof(r));
    if (uv_loop_init(&x.loop) != 0) {
        return P2PRAFT_EIO;
    }
    for (i = 0; i < N && rv == 0; i++) {
        rv = p2praft_oplog_new(&x.c[i], &x.loop, &fstate_type, ops->ot,
                               NULL);
        n_c += rv == 0;
    }
    if (rv == 0) {
        raft_fixture_init(&x.f);
        for (i = 0; i < N; i++) {
            raft_fixture_grow(&x.f, p2praft_consensus_fsm(x.c[i]));
            raft_fixture_get(&x.f, i)->tracer = NULL;
        }
        for (i = 0; i < N && rv == 0; i++) {
            rv = p2praft_actor_new(&x.a[i], raft_fixture_get(&x.f, i));
            n_a += rv == 0;
            if (rv == 0) {
                p2praft_consensus_set_actor(x.c[i], x.a[i]);
            }
        }
    }
    if (rv == 0) {
        raft_fixture_configuration(&x.f, N, &conf);
        raft_fixture_bootstrap(&x.f, &conf);
        raft_configuration_close(&conf);
        raft_fixture_start(&x.f);
        raft_fixture_step_until_has_leader(&x.f, 10000);
        x.leader = raft_fixture_leader_index(&x.f);
        rv = p2praft_consensus_commit_op(x.c[x.leader], &op, ops->cb, &r);
        if (rv == 0) {
            struct all_ctx ac;
            ac.x = &x;
            ac.want = 1;
            ac.res = &r;
            ac.nres = 1;
            uv_run(&x.loop, UV_RUN_NOWAIT);
            raft_fixture_step_until(&x.f, all_done, &ac, 5000);
            rv = r.done ? r.status : P2PRAFT_ETIMEDOUT;
            if (rv == 0) {
                /* every node must either hold "a" or know it cannot */
                for (i = 0; i < N && rv == 0; i++) {
                    int hr;
                    char *m = head_msg(x.c[i], &hr);
                    if (hr == 0 && strcmp(m, "a") != 0) {
                        rv = P2PRAFT_EINVAL;
                    } else if (hr != 0 && hr != P2PRAFT_EINCONSISTENT &&
                               hr != P2PRAFT_ENOMEM) {
                        rv = hr;
                    } else if (hr != 0) {
                        rv = P2PRAFT_ENOMEM; /* degraded by the failure */
                    }
                    free(m);
                }
            }
        }
    }
    if (n_c == N) {
        raft_fixture_close(&x.f);
    }
    for (i = 0; i < n_c; i++) {
        p2praft_consensus_free(x.c[i]);
    }
    for (i = 0; i < n_a; i++) {
        p2praft_actor_free(x.a[i]);
    }
    uv_run(&x.loop, UV_RUN_DEFAULT);
    uv_loop_close(&x.loop);
    return rv;
}

TEST(fixture, oom_sweep_commit)
{
    long n = test__oom_sweep(oom_fixture_body, NULL);
    ASSERT(n > 10);
}

/* ---- ops applied in place (p2praft_op_type.apply_in_place) ---- */

/* The result of an in-place append: the message's new length. */
struct iresult {
    int64_t Len;
};
static const struct p2praft_field iresult_fields[] = {
    {"Len", offsetof(struct iresult, Len), {P2PRAFT_KIND_INT64, 0, 0}}};
static const struct p2praft_type iresult_type = {
    "result", sizeof(struct iresult), iresult_fields, 1, NULL, NULL, NULL,
    NULL};

static int fop_apply_in_place(const void *op, void *state, void *result,
                              void *ctx)
{
    const struct fop *o = op;
    struct fstate *s = state;
    struct iresult *r = result;
    const char *a = s->Msg ? s->Msg : "", *b = o->Append ? o->Append : "";
    char *m;
    (void)ctx;
    if (o->Fail) {
        return -1;
    }
    /* All or nothing: the new message first, then the swap. */
    m = p2praft_malloc(strlen(a) + strlen(b) + 1);
    if (m == NULL) {
        return P2PRAFT_ENOMEM;
    }
    strcpy(m, a);
    strcat(m, b);
    p2praft_free(s->Msg);
    s->Msg = m;
    r->Len = (int64_t)strlen(m);
    return 0;
}
static const struct p2praft_op_type fop_in_place = {
    .type = &fop_type,
    .apply_in_place = fop_apply_in_place,
    .result_type = &iresult_type};

/* The commit's answer is the op's result (msg: its Len). */
static void ires_cb(void *ctx, int status, void *result, const char *errmsg)
{
    struct res *r = ctx;
    (void)errmsg;
    r->done++;
    r->status = status;
    if (result != NULL) {
        snprintf(r->msg, sizeof(r->msg), "%lld",
                 (long long)((struct iresult *)result)->Len);
        p2praft_value_destroy(&iresult_type, result);
    }
}

/* What the update subscriber of one node saw. */
struct seen {
    unsigned n;
    char log[256];
};

static void seen_update(void *ctx, const struct p2praft_update *u)
{
    struct seen *s = ctx;
    const struct fstate *st = u->state;
    char line[64];
    s->n++;
    if (u->kind == P2PRAFT_UPDATE_OP) {
        const struct fop *o = u->op;
        /* in place: no state before, the state after, and the result */
        ASSERT(u->prev == NULL);
        ASSERT(u->result != NULL);
        snprintf(line, sizeof(line), "op %s=%lld:%s;", o->Append,
                 (long long)((const struct iresult *)u->result)->Len,
                 st->Msg);
    } else {
        ASSERT(u->result == NULL);
        snprintf(line, sizeof(line), "kind %d:%s;", (int)u->kind,
                 st->Msg != NULL ? st->Msg : "");
    }
    strncat(s->log, line, sizeof(s->log) - strlen(s->log) - 1);
}

TEST(fixture, in_place_results_updates_failures)
{
    struct fx x;
    struct res r[6];
    struct fop ops[4] = {{"a", false}, {"bc", false}, {"x", true},
                         {"d", false}};
    struct fstate rb = {"R"}, whole = {"W"};
    struct seen seen[N];
    struct p2praft_sub *subs[N];
    struct all_ctx ac;
    unsigned i;
    int rv;
    char *m;
    memset(&x, 0, sizeof(x));
    memset(r, 0, sizeof(r));
    memset(seen, 0, sizeof(seen));
    fx_setup_ops(&x, &fop_in_place);
    for (i = 0; i < N; i++) {
        subs[i] = p2praft_consensus_subscribe_updates(x.c[i], seen_update,
                                                      &seen[i]);
        ASSERT(subs[i] != NULL);
    }
    for (i = 0; i < 4; i++) {
        ASSERT_OK(p2praft_consensus_commit_op(x.c[x.leader], &ops[i],
                                              ires_cb, &r[i]));
    }
    uv_run(&x.loop, UV_RUN_NOWAIT);
    ac.x = &x;
    ac.want = 4;
    ac.res = r;
    ac.nres = 4;
    ASSERT(raft_fixture_step_until(&x.f, all_done, &ac, 10000));
    /* each committer gets its op's result, not a state */
    ASSERT_OK(r[0].status);
    ASSERT_STR_EQ(r[0].msg, "1");
    ASSERT_OK(r[1].status);
    ASSERT_STR_EQ(r[1].msg, "3");
    /* a failed apply: EAPPLY, the state untouched, no update */
    ASSERT_EQ(r[2].status, P2PRAFT_EAPPLY);
    ASSERT_STR_EQ(r[2].msg, "");
    /* later ops still apply (seed semantics), on the state as it was */
    ASSERT_OK(r[3].status);
    ASSERT_STR_EQ(r[3].msg, "4");
    for (i = 0; i < N; i++) {
        ASSERT_STR_EQ(seen[i].log, "op a=1:a;op bc=3:abc;op d=4:abcd;");
        m = head_msg(x.c[i], &rv);
        ASSERT_EQ(rv, P2PRAFT_EINCONSISTENT);
        ASSERT(m == NULL);
    }
    /* a rollback heals; a whole state still hands out a state copy */
    ASSERT_OK(p2praft_consensus_rollback(x.c[x.leader], &rb, res_cb, &r[4]));
    uv_run(&x.loop, UV_RUN_NOWAIT);
    ac.want = 5;
    ac.nres = 5;
    ASSERT(raft_fixture_step_until(&x.f, all_done, &ac, 10000));
    ASSERT_OK(r[4].status);
    ASSERT_STR_EQ(r[4].msg, "R");
    ASSERT_OK(p2praft_consensus_commit_state(x.c[x.leader], &whole, res_cb,
                                             &r[5]));
    uv_run(&x.loop, UV_RUN_NOWAIT);
    ac.want = 6;
    ac.nres = 6;
    ASSERT(raft_fixture_step_until(&x.f, all_done, &ac, 10000));
    ASSERT_OK(r[5].status);
    ASSERT_STR_EQ(r[5].msg, "W");
    for (i = 0; i < N; i++) {
        ASSERT_STR_EQ(seen[i].log, "op a=1:a;op bc=3:abc;op d=4:abcd;"
                                   "kind 3:R;kind 2:W;");
        m = head_msg(x.c[i], &rv); /* a copy, as ever */
        ASSERT_OK(rv);
        ASSERT_STR_EQ(m, "W");
        free(m);
        p2praft_consensus_unsubscribe(x.c[i], subs[i]);
    }
    fx_teardown(&x);
}

TEST(fixture, in_place_needs_a_hook)
{
    uv_loop_t loop;
    struct p2praft_consensus *c = NULL;
    static const struct p2praft_op_type none = {.type = &fop_type};
    ASSERT_OK(uv_loop_init(&loop));
    ASSERT_ERR(p2praft_oplog_new(&c, &loop, &fstate_type, &none, NULL),
               P2PRAFT_EINVAL);
    ASSERT(c == NULL);
    ASSERT_OK(uv_loop_close(&loop));
}

/* The whole commit path of an in-place op under the OOM sweep: the result
 * allocation, the hook's own, the copies; nothing leaks, and a node that
 * could not apply is marked inconsistent rather than serving a stale
 * state. */
TEST(fixture, oom_sweep_commit_in_place)
{
    static const struct oom_ops in_place = {&fop_in_place, ires_cb};
    long n = test__oom_sweep(oom_fixture_body, (void *)&in_place);
    ASSERT(n > 10);
}
