/*
 * The seed's test suite (go-libp2p-raft v0.5.0 consensus_test.go,
 * actor_test.go, transport_test.go) ported onto 2-3 raft nodes in one
 * process (raft_uv on disk + libraft's TCP transport on 127.0.0.1), plus
 * checks of the fixed quirks: P2PRAFT_EAPPLY, independent bounded
 * subscribers, commit timeout, blocking commits from another thread.
 * Every wait is on an event with a bounded timeout.
 *
 * test_consensus_mem.c and test_consensus_disk.c build this file again with
 * CONSENSUS_STORE set: the same suite over p2praft's raft I/O on libp2p
 * (netcluster.h), on that store, its suites suffixed _mem or _disk.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef CONSENSUS_STORE
#include "netcluster.h"
#include "raft/consensus.h"
#include "raft/io.h"
#define cluster nc
#define cluster_slow nc_slow
#define cluster_init(cl, ...)                                                 \
    ((cl)->store = CONSENSUS_STORE, nc_init((cl), __VA_ARGS__))
#define cluster_wait_leader nc_wait_leader
#define cluster_run_until nc_run_until
#define cluster_stop nc_stop
#define cluster_start nc_start
#define cluster_close nc_close
/* The raft address of node i: its peer ID string. */
#define NODE_ADDR(cl, i) ((cl).nodes[i].pidstr)
#else
#include "cluster.h"
#define NODE_ADDR(cl, i) ((cl).nodes[i].addr)
#define SUITE_CONSENSUS consensus
#define SUITE_ACTOR actor
#define SUITE_EXAMPLE example
#endif
#include "p2praft.h"
#include "snapshot_test.h"
#include "test.h"

#define WAIT_MS (cluster_slow() ? 60000u : 10000u)

/* ---- the seed's types ---- */

struct rstate {
    char *Msg;
};
static const struct p2praft_field rstate_fields[] = {
    {"Msg", offsetof(struct rstate, Msg), {P2PRAFT_KIND_STRING, 0, 0}}};
static const struct p2praft_type rstate_type = {
    "raftState", sizeof(struct rstate), rstate_fields, 1,
    NULL, NULL, NULL, NULL};

struct test_op {
    char *Append;
};
static const struct p2praft_field test_op_fields[] = {
    {"Append", offsetof(struct test_op, Append), {P2PRAFT_KIND_STRING, 0, 0}}};
static const struct p2praft_type test_op_type = {
    "testOperation", sizeof(struct test_op), test_op_fields, 1,
    NULL, NULL, NULL, NULL};

static int append_apply(const void *op, const void *state, void *new_state,
                        void *ctx)
{
    const struct test_op *o = op;
    const struct rstate *s = state;
    struct rstate *ns = new_state;
    const char *a = s->Msg != NULL ? s->Msg : "";
    const char *b = o->Append != NULL ? o->Append : "";
    (void)ctx;
    ns->Msg = p2praft_malloc(strlen(a) + strlen(b) + 1);
    if (ns->Msg == NULL) {
        return P2PRAFT_ENOMEM;
    }
    strcpy(ns->Msg, a);
    strcat(ns->Msg, b);
    return 0;
}

static const struct p2praft_op_type append_op = {
    .type = &test_op_type, .apply_to = append_apply, .ctx = NULL};

/* badOp: an empty struct whose ApplyTo always fails. */
struct bad_op {
    char unused;
};
static const struct p2praft_field no_fields[1] = {
    {"", 0, {P2PRAFT_KIND_NIL, 0, 0}}};
static const struct p2praft_type bad_op_type = {
    "badOp", sizeof(struct bad_op), no_fields, 0, NULL, NULL, NULL, NULL};

static int bad_apply(const void *op, const void *state, void *new_state,
                     void *ctx)
{
    (void)op;
    (void)state;
    (void)new_state;
    (void)ctx;
    return -1; /* "whops" */
}
static const struct p2praft_op_type bad_op = {
    .type = &bad_op_type, .apply_to = bad_apply, .ctx = NULL};

/* ---- helpers ---- */

struct result {
    int done;
    int status;
    char msg[256];
    char *state_msg;
};

static void result_cb(void *ctx, int status, void *state, const char *errmsg)
{
    struct result *r = ctx;
    r->done++;
    r->status = status;
    snprintf(r->msg, sizeof(r->msg), "%s", errmsg != NULL ? errmsg : "");
    if (state != NULL) {
        struct rstate *s = state;
        free(r->state_msg);
        r->state_msg = strdup(s->Msg != NULL ? s->Msg : "");
        p2praft_value_destroy(&rstate_type, state);
    }
}

static bool result_done(void *ctx)
{
    return ((struct result *)ctx)->done > 0;
}

struct counter_ctx {
    int *n;
    int want;
};

static bool counter_reached(void *ctx)
{
    struct counter_ctx *c = ctx;
    return *c->n >= c->want;
}

static void count_cb(void *ctx, int status, void *state, const char *errmsg)
{
    int *n = ctx;
    (void)status;
    (void)errmsg;
    p2praft_value_destroy(&rstate_type, state);
    (*n)++;
}

/* Current Msg of node i, or NULL (caller frees). */
static char *node_msg(struct cluster *cl, unsigned i, int *rv)
{
    void *st;
    char *m;
    *rv = p2praft_consensus_get_current_state(cl->nodes[i].c, &st);
    if (*rv != 0) {
        return NULL;
    }
    m = strdup(((struct rstate *)st)->Msg ? ((struct rstate *)st)->Msg
                                              : "");
    p2praft_value_destroy(&rstate_type, st);
    return m;
}

struct msg_ctx {
    struct cluster *cl;
    const char *want;
};

static bool all_have_msg(void *ctx)
{
    struct msg_ctx *m = ctx;
    unsigned i;
    for (i = 0; i < m->cl->n; i++) {
        int rv;
        char *got = node_msg(m->cl, i, &rv);
        bool same = got != NULL && strcmp(got, m->want) == 0;
        free(got);
        if (!same) {
            return false;
        }
    }
    return true;
}

struct applied_ctx {
    struct cluster *cl;
    uint64_t want;
};

static bool all_applied(void *ctx)
{
    struct applied_ctx *a = ctx;
    unsigned i;
    for (i = 0; i < a->cl->n; i++) {
        if (p2praft_consensus_applied(a->cl->nodes[i].c) < a->want) {
            return false;
        }
    }
    return true;
}

static struct rstate mkstate(const char *msg)
{
    struct rstate s;
    s.Msg = (char *)msg;
    return s;
}

/* ---- TestNewConsensus ---- */

TEST(SUITE_CONSENSUS, new_consensus)
{
    uv_loop_t loop;
    struct p2praft_consensus *c;
    struct rstate st = mkstate("we are testing");
    struct result r;
    void *out = (void *)1;
    memset(&r, 0, sizeof(r));
    ASSERT_OK(uv_loop_init(&loop));
    ASSERT_OK(p2praft_consensus_new(&c, &loop, &rstate_type, &st));
    ASSERT_ERR(p2praft_consensus_get_current_state(c, &out), P2PRAFT_ENOSTATE);
    ASSERT(out == NULL);
    ASSERT_ERR(p2praft_consensus_commit_op(c, &st, NULL, NULL),
               P2PRAFT_EINVAL); /* state mode */
    /* No actor: returned by the call (ErrNoActor), the callback never
     * runs. */
    ASSERT_ERR(p2praft_consensus_commit_state(c, &st, result_cb, &r),
               P2PRAFT_ENOACTOR);
    uv_run(&loop, UV_RUN_NOWAIT); /* the loop turned on this thread */
    ASSERT_EQ(r.done, 0);
    /* The blocking form on the loop thread would deadlock: refused. */
    ASSERT_ERR(p2praft_consensus_commit_state_wait(c, &st, NULL, NULL, 0),
               P2PRAFT_ESTATE);
    p2praft_consensus_free(c);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_OK(uv_loop_close(&loop));
}

/* ---- TestNewActor ---- */

TEST(SUITE_ACTOR, new_actor)
{
    struct p2praft_actor *a;
    struct rstate st = mkstate("testing");
    char buf[64];
    ASSERT_OK(p2praft_actor_new(&a, NULL));
    ASSERT_ERR(p2praft_actor_set_state(a, &st, NULL, NULL), P2PRAFT_ENORAFT);
    ASSERT(!p2praft_actor_is_leader(a));
    ASSERT_ERR(p2praft_actor_leader(a, buf, sizeof(buf)), P2PRAFT_ENORAFT);
    p2praft_actor_free(a);
}

/* ---- TestSetState ---- */

TEST(SUITE_ACTOR, set_state)
{
    struct cluster cl;
    int leader;
    unsigned i;
    memset(&cl, 0, sizeof(cl));
    ASSERT_OK(cluster_init(&cl, 2, &rstate_type, NULL, NULL));
    leader = cluster_wait_leader(&cl, WAIT_MS);
    ASSERT(leader >= 0);
    for (i = 0; i < 2; i++) {
        struct result r;
        struct rstate st;
        memset(&r, 0, sizeof(r));
        if (p2praft_actor_is_leader(cl.nodes[i].actor)) {
            st = mkstate("testingLeader");
            ASSERT_OK(p2praft_actor_set_state(cl.nodes[i].actor, &st,
                                              result_cb, &r));
            ASSERT(cluster_run_until(&cl, result_done, &r, WAIT_MS));
            ASSERT_OK(r.status);
            ASSERT_STR_EQ(r.state_msg, "testingLeader");
        } else {
            st = mkstate("testingFollower");
            ASSERT_OK(p2praft_actor_set_state(cl.nodes[i].actor, &st,
                                              result_cb, &r));
            ASSERT(cluster_run_until(&cl, result_done, &r, WAIT_MS));
            ASSERT_EQ(r.status, P2PRAFT_ENOTLEADER);
            ASSERT(r.state_msg == NULL);
            /* names the leader */
            ASSERT(strstr(r.msg, NODE_ADDR(cl, leader)) != NULL);
        }
        free(r.state_msg);
    }
    cluster_close(&cl);
}

/* ---- TestActorLeader ---- */

static int resolve_peer(void *ctx, uint64_t id, const char *address,
                        char *out, size_t len)
{
    (void)ctx;
    (void)address;
    snprintf(out, len, "peer-%llu", (unsigned long long)id);
    return 0;
}

TEST(SUITE_ACTOR, leader)
{
    struct cluster cl;
    int leader;
    char buf[64], want[64];
    memset(&cl, 0, sizeof(cl));
    ASSERT_OK(cluster_init(&cl, 2, &rstate_type, NULL, NULL));
    /* Right after start, before any election timeout: no leader yet. */
    ASSERT_ERR(p2praft_actor_leader(cl.nodes[0].actor, buf, sizeof(buf)),
               P2PRAFT_ENOLEADER);
    leader = cluster_wait_leader(&cl, WAIT_MS);
    ASSERT(leader >= 0);
    /* Without a resolver the raft address is the peer ID string. */
    ASSERT_OK(p2praft_actor_leader(cl.nodes[0].actor, buf, sizeof(buf)));
    ASSERT_STR_EQ(buf, NODE_ADDR(cl, leader));
    ASSERT_ERR(p2praft_actor_leader(cl.nodes[0].actor, buf, 4),
               P2PRAFT_EOVERFLOW);
    p2praft_actor_set_resolver(cl.nodes[1].actor, resolve_peer, NULL);
    ASSERT_OK(p2praft_actor_leader(cl.nodes[1].actor, buf, sizeof(buf)));
    snprintf(want, sizeof(want), "peer-%llu",
             (unsigned long long)cl.nodes[leader].id);
    ASSERT_STR_EQ(buf, want);
    ASSERT(p2praft_actor_is_leader(cl.nodes[leader].actor));
    ASSERT(!p2praft_actor_is_leader(cl.nodes[1 - leader].actor));
    cluster_close(&cl);
}

/* ---- TestSubscribe ---- */

struct notified {
    int n;
};

static void on_notify(void *ctx, struct p2praft_sub *sub)
{
    (void)sub;
    ((struct notified *)ctx)->n++;
}

TEST(SUITE_CONSENSUS, subscribe)
{
    struct cluster cl;
    struct p2praft_sub *s1, *s2, *s1b, *s2b, *small;
    struct notified nt = {0};
    struct applied_ctx ac;
    int leader, i, done = 0, failed = 0;
    struct counter_ctx cc;
    memset(&cl, 0, sizeof(cl));
    ASSERT_OK(cluster_init(&cl, 2, &rstate_type, NULL, NULL));
    s1 = p2praft_consensus_subscribe(cl.nodes[0].c, 0, on_notify, &nt);
    s2 = p2praft_consensus_subscribe(cl.nodes[1].c, 0, NULL, NULL);
    s1b = p2praft_consensus_subscribe(cl.nodes[0].c, 0, NULL, NULL);
    s2b = p2praft_consensus_subscribe(cl.nodes[1].c, 0, NULL, NULL);
    small = p2praft_consensus_subscribe(cl.nodes[1].c, 2, NULL, NULL);
    ASSERT(s1 && s2 && s1b && s2b && small);
    leader = cluster_wait_leader(&cl, WAIT_MS);
    ASSERT(leader >= 0);
    /* 5 commits on each node: only the leader's succeed. */
    for (i = 0; i < 5; i++) {
        char m[16];
        struct rstate st;
        snprintf(m, sizeof(m), "%d", i);
        st = mkstate(m);
        ASSERT_OK(p2praft_consensus_commit_state(cl.nodes[0].c, &st, count_cb,
                                                 &done));
        ASSERT_OK(p2praft_consensus_commit_state(cl.nodes[1].c, &st, count_cb,
                                                 &done));
    }
    cc.n = &done;
    cc.want = 10;
    ASSERT(cluster_run_until(&cl, counter_reached, &cc, WAIT_MS));
    ac.cl = &cl;
    ac.want = 5;
    ASSERT(cluster_run_until(&cl, all_applied, &ac, WAIT_MS));
    ASSERT_EQ(p2praft_consensus_applied(cl.nodes[0].c), 5);
    ASSERT_EQ(p2praft_consensus_applied(cl.nodes[1].c), 5);
    /* Every subscriber got all 5 updates and not more, independently. */
    ASSERT_EQ(p2praft_sub_pending(s1), 5);
    ASSERT_EQ(p2praft_sub_pending(s1b), 5);
    ASSERT_EQ(p2praft_sub_pending(s2), 5);
    ASSERT_EQ(p2praft_sub_pending(s2b), 5);
    ASSERT_EQ(nt.n, 5);
    for (i = 0; i < 5; i++) {
        ASSERT_EQ(p2praft_sub_poll(s1), 1);
    }
    ASSERT_EQ(p2praft_sub_poll(s1), 0);
    ASSERT_EQ(p2praft_sub_pending(s1b), 5); /* unaffected by s1 */
    /* The bounded one kept 2 and counted 3 drops. */
    ASSERT_EQ(p2praft_sub_pending(small), 2);
    ASSERT_EQ_U64(p2praft_sub_dropped(small), 3);
    ASSERT_EQ_U64(p2praft_sub_dropped(s2), 0);
    (void)failed;
    p2praft_consensus_unsubscribe(cl.nodes[0].c, s1);
    p2praft_consensus_unsubscribe(cl.nodes[1].c, s2);
    p2praft_consensus_unsubscribe(cl.nodes[1].c, small);
    /* s1b and s2b are freed with their consensus */
    cluster_close(&cl);
}

/* ---- TestOpLog ---- */

static const char *const sentence[] = {"I have ", "appended ",
                                       "this sentence ", "to the state Msg."};

TEST(SUITE_CONSENSUS, oplog)
{
    struct cluster cl;
    struct msg_ctx mc;
    struct result r[4], rb;
    int leader, follower, i;
    unsigned n;
    memset(&cl, 0, sizeof(cl));
    memset(r, 0, sizeof(r));
    memset(&rb, 0, sizeof(rb));
    ASSERT_OK(cluster_init(&cl, 2, &rstate_type, &append_op, NULL));
    leader = cluster_wait_leader(&cl, WAIT_MS);
    ASSERT(leader >= 0);
    follower = 1 - leader;
    for (n = 0; n < 2; n++) {
        for (i = 0; i < 4; i++) {
            struct test_op op;
            op.Append = (char *)sentence[i];
            ASSERT_OK(p2praft_consensus_commit_op(cl.nodes[n].c, &op,
                                                  (int)n == leader ? result_cb
                                                                   : NULL,
                                                  &r[i]));
        }
    }
    mc.cl = &cl;
    mc.want = "I have appended this sentence to the state Msg.";
    ASSERT(cluster_run_until(&cl, all_have_msg, &mc, WAIT_MS));
    for (i = 0; i < 4; i++) {
        ASSERT(cluster_run_until(&cl, result_done, &r[i], WAIT_MS));
        ASSERT_OK(r[i].status);
    }
    /* Each committer sees the state right after its own op. */
    ASSERT_STR_EQ(r[0].state_msg, "I have ");
    ASSERT_STR_EQ(r[3].state_msg, mc.want);
    /* get_log_head returns a copy */
    {
        void *h;
        ASSERT_OK(p2praft_consensus_get_log_head(cl.nodes[follower].c, &h));
        ASSERT_STR_EQ(((struct rstate *)h)->Msg, mc.want);
        p2praft_value_destroy(&rstate_type, h);
    }
    /* Rollback, only the leader's goes through. */
    {
        struct rstate st = mkstate("Good as new");
        struct result rf;
        memset(&rf, 0, sizeof(rf));
        ASSERT_OK(p2praft_consensus_rollback(cl.nodes[leader].c, &st,
                                             result_cb, &rb));
        ASSERT_OK(p2praft_consensus_rollback(cl.nodes[follower].c, &st,
                                             result_cb, &rf));
        mc.want = "Good as new";
        ASSERT(cluster_run_until(&cl, all_have_msg, &mc, WAIT_MS));
        ASSERT(cluster_run_until(&cl, result_done, &rb, WAIT_MS));
        ASSERT(cluster_run_until(&cl, result_done, &rf, WAIT_MS));
        ASSERT_OK(rb.status);
        ASSERT_EQ(rf.status, P2PRAFT_ENOTLEADER);
        free(rb.state_msg);
    }
    for (i = 0; i < 4; i++) {
        free(r[i].state_msg);
    }
    cluster_close(&cl);
}

/* ---- TestBadApplyAt ---- */

struct incons_ctx {
    struct cluster *cl;
};

static bool all_inconsistent(void *ctx)
{
    struct incons_ctx *ic = ctx;
    unsigned i;
    for (i = 0; i < ic->cl->n; i++) {
        void *st;
        int rv = p2praft_consensus_get_log_head(ic->cl->nodes[i].c, &st);
        p2praft_value_destroy(&rstate_type, st);
        if (rv != P2PRAFT_EINCONSISTENT) {
            return false;
        }
    }
    return true;
}

TEST(SUITE_CONSENSUS, bad_apply_at)
{
    struct cluster cl;
    struct incons_ctx ic;
    struct msg_ctx mc;
    struct result r, rf, rb;
    int leader;
    struct bad_op op = {0};
    struct rstate st = mkstate("Good as new");
    memset(&cl, 0, sizeof(cl));
    memset(&r, 0, sizeof(r));
    memset(&rf, 0, sizeof(rf));
    memset(&rb, 0, sizeof(rb));
    ASSERT_OK(cluster_init(&cl, 2, &rstate_type, &bad_op, NULL));
    leader = cluster_wait_leader(&cl, WAIT_MS);
    ASSERT(leader >= 0);
    ASSERT_OK(p2praft_consensus_commit_op(cl.nodes[leader].c, &op, result_cb,
                                          &r));
    ASSERT_OK(p2praft_consensus_commit_op(cl.nodes[1 - leader].c, &op,
                                          result_cb, &rf));
    ASSERT(cluster_run_until(&cl, result_done, &r, WAIT_MS));
    ASSERT(cluster_run_until(&cl, result_done, &rf, WAIT_MS));
    /* Seed fix: the committer learns that apply failed. */
    ASSERT_EQ(r.status, P2PRAFT_EAPPLY);
    ASSERT(r.state_msg == NULL);
    ASSERT_EQ(rf.status, P2PRAFT_ENOTLEADER);
    ic.cl = &cl;
    ASSERT(cluster_run_until(&cl, all_inconsistent, &ic, WAIT_MS));
    /* Rollback heals both. */
    ASSERT_OK(p2praft_consensus_rollback(cl.nodes[leader].c, &st, result_cb,
                                         &rb));
    mc.cl = &cl;
    mc.want = "Good as new";
    ASSERT(cluster_run_until(&cl, all_have_msg, &mc, WAIT_MS));
    ASSERT(cluster_run_until(&cl, result_done, &rb, WAIT_MS));
    ASSERT_OK(rb.status);
    free(rb.state_msg);
    cluster_close(&cl);
}

/* ---- Commit timeout: no quorum -> ETIMEDOUT, outcome unknown ---- */

TEST(SUITE_CONSENSUS, commit_timeout)
{
    struct cluster cl;
    struct result r;
    int leader;
    struct rstate st = mkstate("lost?");
    memset(&cl, 0, sizeof(cl));
    memset(&r, 0, sizeof(r));
    /* Long election timeout: the lone leader keeps its role long enough. */
    cl.election_ms = cluster_slow() ? 10000 : 1500;
    cl.heartbeat_ms = cluster_slow() ? 500 : 50;
    ASSERT_OK(cluster_init(&cl, 2, &rstate_type, NULL, NULL));
    leader = cluster_wait_leader(&cl, cl.election_ms * 4);
    ASSERT(leader >= 0);
    cluster_stop(&cl, (unsigned)(1 - leader));
    p2praft_consensus_set_timeout(cl.nodes[leader].c, 200);
    ASSERT_OK(p2praft_consensus_commit_state(cl.nodes[leader].c, &st,
                                             result_cb, &r));
    ASSERT(cluster_run_until(&cl, result_done, &r, WAIT_MS));
    ASSERT_EQ(r.status, P2PRAFT_ETIMEDOUT);
    ASSERT(strstr(r.msg, "unknown") != NULL);
    cluster_close(&cl);
}

/* ---- Blocking commits from another thread ---- */

struct thread_ctx {
    struct cluster *cl;
    int leader;
    int n;
    int failures;
    int follower_status;
    char follower_msg[256];
    int rollback_status;
    bool done;
    uv_async_t wake;
};

/* A leader that cannot reach a majority steps down with a commit pending:
 * raft took the entry, which the next leader may still commit, so the
 * status must say "unknown", never ENOTLEADER ("not submitted"). */
TEST(SUITE_CONSENSUS, leadership_lost_is_unknown)
{
    struct cluster cl;
    struct result r;
    int leader;
    struct rstate st = mkstate("maybe");
    memset(&cl, 0, sizeof(cl));
    memset(&r, 0, sizeof(r));
    ASSERT_OK(cluster_init(&cl, 2, &rstate_type, NULL, NULL));
    leader = cluster_wait_leader(&cl, WAIT_MS);
    ASSERT(leader >= 0);
    cluster_stop(&cl, (unsigned)(1 - leader));
    /* The commit must not time out first: leadership is lost after one
     * election timeout without contact. */
    p2praft_consensus_set_timeout(cl.nodes[leader].c, WAIT_MS * 2);
    ASSERT_OK(p2praft_consensus_commit_state(cl.nodes[leader].c, &st,
                                             result_cb, &r));
    ASSERT(cluster_run_until(&cl, result_done, &r, WAIT_MS));
    ASSERT_EQ(r.done, 1);
    ASSERT_ERR(r.status, P2PRAFT_EUNKNOWN);
    ASSERT(p2praft_outcome_unknown(r.status));
    ASSERT(raft_state(&cl.nodes[leader].raft) != RAFT_LEADER);
    /* Now a follower: a new commit is surely not submitted. */
    memset(&r, 0, sizeof(r));
    ASSERT_OK(p2praft_consensus_commit_state(cl.nodes[leader].c, &st,
                                             result_cb, &r));
    ASSERT(cluster_run_until(&cl, result_done, &r, WAIT_MS));
    ASSERT_ERR(r.status, P2PRAFT_ENOTLEADER);
    ASSERT(!p2praft_outcome_unknown(r.status));
    free(r.state_msg);
    cluster_close(&cl);
}

/* Raft closed under a pending commit, then the consensus freed with one
 * queued: both complete with ESHUTDOWN (as p2praft_consensus_free()
 * documents), an outcome-unknown code. */
TEST(SUITE_CONSENSUS, shutdown_pending_is_unknown)
{
    struct cluster cl;
    struct result submitted, queued;
    int leader;
    struct rstate st = mkstate("maybe");
    memset(&cl, 0, sizeof(cl));
    memset(&submitted, 0, sizeof(submitted));
    memset(&queued, 0, sizeof(queued));
    ASSERT_OK(cluster_init(&cl, 2, &rstate_type, NULL, NULL));
    leader = cluster_wait_leader(&cl, WAIT_MS);
    ASSERT(leader >= 0);
    cluster_stop(&cl, (unsigned)(1 - leader));
    p2praft_consensus_set_timeout(cl.nodes[leader].c, WAIT_MS * 2);
    ASSERT_OK(p2praft_consensus_commit_state(cl.nodes[leader].c, &st,
                                             result_cb, &submitted));
    uv_run(&cl.loop, UV_RUN_NOWAIT); /* flushed: raft holds the entry */
    ASSERT_EQ(submitted.done, 0);
    ASSERT(raft_state(&cl.nodes[leader].raft) == RAFT_LEADER);
    ASSERT_OK(p2praft_consensus_commit_state(cl.nodes[leader].c, &st,
                                             result_cb, &queued));
    cluster_stop(&cl, (unsigned)leader);
    ASSERT_EQ(submitted.done, 1);
    ASSERT_ERR(submitted.status, P2PRAFT_ESHUTDOWN);
    ASSERT(p2praft_outcome_unknown(submitted.status));
    ASSERT_EQ(queued.done, 1);
    ASSERT_ERR(queued.status, P2PRAFT_ESHUTDOWN);
    cluster_close(&cl);
}

static void *committer(void *arg)
{
    struct thread_ctx *t = arg;
    int i;
    for (i = 0; i < t->n; i++) {
        char m[32];
        struct rstate st;
        void *agreed = NULL;
        int rv;
        snprintf(m, sizeof(m), "blocking %d", i);
        st = mkstate(m);
        rv = p2praft_consensus_commit_state_wait(t->cl->nodes[t->leader].c,
                                                 &st, &agreed, NULL, 0);
        if (rv != 0 || agreed == NULL ||
            strcmp(((struct rstate *)agreed)->Msg, m) != 0) {
            t->failures++;
        }
        p2praft_value_destroy(&rstate_type, agreed);
    }
    {
        struct rstate st = mkstate("nope");
        t->follower_status = p2praft_consensus_commit_state_wait(
            t->cl->nodes[1 - t->leader].c, &st, NULL, t->follower_msg,
            sizeof(t->follower_msg));
        st = mkstate("rolled back");
        t->rollback_status = p2praft_consensus_rollback_wait(
            t->cl->nodes[t->leader].c, &st, NULL, 0);
    }
    t->done = true;
    uv_async_send(&t->wake);
    return NULL;
}

static void wake_cb(uv_async_t *h)
{
    (void)h;
}

static bool thread_done(void *ctx)
{
    return ((struct thread_ctx *)ctx)->done;
}

TEST(SUITE_CONSENSUS, blocking_from_thread)
{
    struct cluster cl;
    struct thread_ctx t;
    struct msg_ctx mc;
    pthread_t th;
    memset(&cl, 0, sizeof(cl));
    memset(&t, 0, sizeof(t));
    ASSERT_OK(cluster_init(&cl, 2, &rstate_type, NULL, NULL));
    t.cl = &cl;
    t.leader = cluster_wait_leader(&cl, WAIT_MS);
    ASSERT(t.leader >= 0);
    t.n = cluster_slow() ? 20 : 200;
    uv_async_init(&cl.loop, &t.wake, wake_cb);
    ASSERT_OK(pthread_create(&th, NULL, committer, &t));
    /* The loop runs here while the other thread blocks on its commits. */
    ASSERT(cluster_run_until(&cl, thread_done, &t, WAIT_MS * 3));
    pthread_join(th, NULL);
    uv_close((uv_handle_t *)&t.wake, NULL);
    ASSERT_EQ(t.failures, 0);
    ASSERT_EQ(t.follower_status, P2PRAFT_ENOTLEADER);
    ASSERT(strstr(t.follower_msg, NODE_ADDR(cl, t.leader)) != NULL);
    ASSERT_OK(t.rollback_status);
    mc.cl = &cl;
    mc.want = "rolled back";
    ASSERT(cluster_run_until(&cl, all_have_msg, &mc, WAIT_MS));
    cluster_close(&cl);
}

/* ---- an op type that applies in place, committed from another thread:
 * commit_op_wait() hands back the op's result, never a state copy; the
 * state moves on disk-backed raft and survives a snapshot ---- */

struct iresult {
    int64_t Len;
};
static const struct p2praft_field iresult_fields[] = {
    {"Len", offsetof(struct iresult, Len), {P2PRAFT_KIND_INT64, 0, 0}}};
static const struct p2praft_type iresult_type = {
    "result", sizeof(struct iresult), iresult_fields, 1, NULL, NULL, NULL,
    NULL};

static int append_in_place(const void *op, void *state, void *result,
                           void *ctx)
{
    const struct test_op *o = op;
    struct rstate *s = state;
    struct iresult *r = result;
    const char *a = s->Msg != NULL ? s->Msg : "";
    const char *b = o->Append != NULL ? o->Append : "";
    char *m = p2praft_malloc(strlen(a) + strlen(b) + 1);
    (void)ctx;
    if (m == NULL) {
        return P2PRAFT_ENOMEM; /* nothing changed yet */
    }
    strcpy(m, a);
    strcat(m, b);
    p2praft_free(s->Msg);
    s->Msg = m;
    r->Len = (int64_t)strlen(m);
    return 0;
}

static const struct p2praft_op_type append_in_place_op = {
    .type = &test_op_type,
    .apply_in_place = append_in_place,
    .result_type = &iresult_type};

struct ip_thread {
    struct cluster *cl;
    int leader;
    int n;
    int failures;
    bool done;
    uv_async_t wake;
};

static void *ip_committer(void *arg)
{
    struct ip_thread *t = arg;
    int i;
    for (i = 0; i < t->n; i++) {
        struct test_op op = {"x"};
        void *agreed = NULL;
        int rv = p2praft_consensus_commit_op_wait(t->cl->nodes[t->leader].c,
                                                  &op, &agreed, NULL, 0);
        /* the result: the message's length after this op */
        if (rv != 0 || agreed == NULL ||
            ((struct iresult *)agreed)->Len != i + 1) {
            t->failures++;
        }
        p2praft_value_destroy(&iresult_type, agreed);
        /* without `agreed`, the result is freed for us */
        if (i == 0) {
            rv = p2praft_consensus_commit_op_wait(
                t->cl->nodes[t->leader].c, &(struct test_op){""}, NULL,
                NULL, 0);
            t->failures += rv != 0;
        }
    }
    t->done = true;
    uv_async_send(&t->wake);
    return NULL;
}

static bool ip_done(void *ctx)
{
    return ((struct ip_thread *)ctx)->done;
}

TEST(consensus, in_place_blocking_from_thread)
{
    struct cluster cl;
    struct ip_thread t;
    struct msg_ctx mc;
    pthread_t th;
    char want[256];
    memset(&cl, 0, sizeof(cl));
    memset(&t, 0, sizeof(t));
    cl.snapshot_threshold = 16;
    cl.snapshot_trailing = 4;
    ASSERT_OK(cluster_init(&cl, 2, &rstate_type, &append_in_place_op, NULL));
    t.cl = &cl;
    t.leader = cluster_wait_leader(&cl, WAIT_MS);
    ASSERT(t.leader >= 0);
    t.n = cluster_slow() ? 20 : 100;
    uv_async_init(&cl.loop, &t.wake, wake_cb);
    ASSERT_OK(pthread_create(&th, NULL, ip_committer, &t));
    ASSERT(cluster_run_until(&cl, ip_done, &t, WAIT_MS * 3));
    pthread_join(th, NULL);
    uv_close((uv_handle_t *)&t.wake, NULL);
    ASSERT_EQ(t.failures, 0);
    /* both nodes hold the same state, snapshots taken meanwhile */
    memset(want, 'x', (size_t)t.n);
    want[t.n] = '\0';
    mc.cl = &cl;
    mc.want = want;
    ASSERT(cluster_run_until(&cl, all_have_msg, &mc, WAIT_MS));
    ASSERT(p2praft_consensus_snapshots(cl.nodes[t.leader].c) > 0);
    cluster_close(&cl);
}

/* ---- TestTransportSnapshots ---- */

/* ---- TestTransportSnapshots (over libp2p: test_transport.c, both
 * stores) ---- */

#ifndef CONSENSUS_STORE
static struct raft *snap_raft(void *cl, unsigned i)
{
    return &((struct cluster *)cl)->nodes[i].raft;
}

static struct p2praft_consensus *snap_consensus(void *cl, unsigned i)
{
    return ((struct cluster *)cl)->nodes[i].c;
}

static const char *snap_dir(void *cl, unsigned i)
{
    return ((struct cluster *)cl)->nodes[i].dir;
}

static void snap_stop(void *cl, unsigned i)
{
    cluster_stop(cl, i);
}

static int snap_start(void *cl, unsigned i, bool bootstrap)
{
    return cluster_start(cl, i, bootstrap);
}

TEST(transport, snapshots)
{
    struct cluster cl;
    struct snapshot_harness h = {NULL, NULL, &rstate_type, 0, snap_raft,
                                  snap_consensus, snap_dir, snap_stop,
                                  snap_start, NULL, NULL};
    int leader;
    memset(&cl, 0, sizeof(cl));
    cl.snapshot_threshold = 512;
    cl.snapshot_trailing = 64;
    ASSERT_OK(cluster_init(&cl, 2, &rstate_type, NULL, NULL));
    leader = cluster_wait_leader(&cl, WAIT_MS);
    ASSERT(leader >= 0);
    h.cl = &cl;
    h.loop = &cl.loop;
    h.wait_ms = WAIT_MS;
    snapshot_test_run(&h, leader);
    cluster_close(&cl);
}

#endif

/* ---- Example_consensus: 3 nodes, 1000 updates, final 1998 on all ---- */

struct vstate {
    int64_t Value;
};
static const struct p2praft_field vstate_fields[] = {
    {"Value", offsetof(struct vstate, Value), {P2PRAFT_KIND_INT64, 0, 0}}};
static const struct p2praft_type vstate_type = {
    "raftState", sizeof(struct vstate), vstate_fields, 1,
    NULL, NULL, NULL, NULL};

struct example {
    struct cluster *cl;
    unsigned leader;
    int n_updates;
    int failures;
    char lines[5][96];
    int nlines;
};

static void example_cb(void *ctx, int status, void *state,
                       const char *errmsg);

static void example_next(struct example *e)
{
    struct vstate st;
    st.Value = e->n_updates * 2;
    if (p2praft_consensus_commit_state(e->cl->nodes[e->leader].c, &st,
                                       example_cb, e) != 0) {
        e->failures++;
    }
}

static void example_cb(void *ctx, int status, void *state, const char *errmsg)
{
    struct example *e = ctx;
    (void)errmsg;
    if (status != 0 || state == NULL) {
        /* the seed prints the error and retries */
        e->failures++;
        if (e->failures < 100) {
            example_next(e);
        }
        return;
    }
    e->n_updates++;
    if (e->n_updates % 200 == 0 && e->nlines < 5) {
        snprintf(e->lines[e->nlines++], sizeof(e->lines[0]),
                 "Performed %d updates. Current state value: %lld",
                 e->n_updates, (long long)((struct vstate *)state)->Value);
    }
    p2praft_value_destroy(&vstate_type, state);
    if (e->n_updates < 1000) {
        example_next(e);
    }
}

static bool example_done(void *ctx)
{
    struct example *e = ctx;
    return e->n_updates >= 1000 || e->failures >= 100;
}

struct final_ctx {
    struct cluster *cl;
    int64_t want;
};

static bool all_final(void *ctx)
{
    struct final_ctx *f = ctx;
    unsigned i;
    for (i = 0; i < f->cl->n; i++) {
        void *st;
        bool ok;
        if (p2praft_consensus_get_current_state(f->cl->nodes[i].c, &st) != 0) {
            return false;
        }
        ok = ((struct vstate *)st)->Value == f->want;
        p2praft_value_destroy(&vstate_type, st);
        if (!ok) {
            return false;
        }
    }
    return true;
}

TEST(SUITE_EXAMPLE, consensus)
{
    struct cluster cl;
    struct example e;
    struct final_ctx f;
    struct vstate initial = {3};
    int leader, i;
    memset(&cl, 0, sizeof(cl));
    memset(&e, 0, sizeof(e));
    ASSERT_OK(cluster_init(&cl, 3, &vstate_type, NULL, &initial));
    leader = cluster_wait_leader(&cl, WAIT_MS);
    ASSERT(leader >= 0);
    e.cl = &cl;
    e.leader = (unsigned)leader;
    /* CommitState() blocks until agreed in the seed: one at a time here. */
    example_next(&e);
    ASSERT(cluster_run_until(&cl, example_done, &e, WAIT_MS * 6));
    ASSERT_EQ(e.failures, 0);
    ASSERT_EQ(e.nlines, 5);
    for (i = 0; i < 5; i++) {
        char want[96];
        snprintf(want, sizeof(want),
                 "Performed %d updates. Current state value: %d",
                 (i + 1) * 200, (i + 1) * 400 - 2);
        ASSERT_STR_EQ(e.lines[i], want);
    }
    f.cl = &cl;
    f.want = 1998;
    ASSERT(cluster_run_until(&cl, all_final, &f, WAIT_MS));
    cluster_close(&cl);
}

/* ---- 3 nodes: leader loss, new leader, follower restart replays ---- */

struct new_leader {
    struct cluster *cl;
    int old;
    int found;
};

static bool leader_among_rest(void *ctx)
{
    struct new_leader *l = ctx;
    unsigned i;
    for (i = 0; i < l->cl->n; i++) {
        if ((int)i != l->old && l->cl->nodes[i].running &&
            raft_state(&l->cl->nodes[i].raft) == RAFT_LEADER) {
            l->found = (int)i;
            return true;
        }
    }
    return false;
}

TEST(SUITE_CONSENSUS, failover_and_restart)
{
    struct cluster cl;
    struct result r;
    struct msg_ctx mc;
    struct new_leader lc;
    struct rstate st = mkstate("before failover");
    int leader, nl, other;
    char *m;
    int rv;
    memset(&cl, 0, sizeof(cl));
    memset(&r, 0, sizeof(r));
    ASSERT_OK(cluster_init(&cl, 3, &rstate_type, NULL, NULL));
    leader = cluster_wait_leader(&cl, WAIT_MS);
    ASSERT(leader >= 0);
    ASSERT_OK(p2praft_consensus_commit_state(cl.nodes[leader].c, &st,
                                             result_cb, &r));
    mc.cl = &cl;
    mc.want = "before failover";
    ASSERT(cluster_run_until(&cl, all_have_msg, &mc, WAIT_MS));
    ASSERT_OK(r.status);
    free(r.state_msg);

    /* The leader dies; the two others elect a new one and go on. */
    cluster_stop(&cl, (unsigned)leader);
    lc.cl = &cl;
    lc.old = leader;
    lc.found = -1;
    ASSERT(cluster_run_until(&cl, leader_among_rest, &lc, WAIT_MS));
    nl = lc.found;
    other = 3 - leader - nl;
    memset(&r, 0, sizeof(r));
    st = mkstate("after failover");
    ASSERT_OK(p2praft_consensus_commit_state(cl.nodes[nl].c, &st, result_cb,
                                             &r));
    ASSERT(cluster_run_until(&cl, result_done, &r, WAIT_MS));
    ASSERT_OK(r.status);
    ASSERT_STR_EQ(r.state_msg, "after failover");
    free(r.state_msg);

    /* The old leader comes back with a fresh consensus: replaying the log
     * from its disk and from the new leader brings it up to date. */
    ASSERT_OK(cluster_start(&cl, (unsigned)leader, false));
    mc.want = "after failover";
    ASSERT(cluster_run_until(&cl, all_have_msg, &mc, WAIT_MS));
    m = node_msg(&cl, (unsigned)other, &rv);
    ASSERT_OK(rv);
    ASSERT_STR_EQ(m, "after failover");
    free(m);
    cluster_close(&cl);
}

/* ---- the rule for errors: what the call can see is returned ---- */

TEST(SUITE_CONSENSUS, call_errors_are_returned)
{
    uv_loop_t loop;
    struct p2praft_consensus *c;
    struct p2praft_actor *a;
    struct rstate st = mkstate("x");
    struct result r;
    memset(&r, 0, sizeof(r));
    ASSERT_OK(uv_loop_init(&loop));
    ASSERT_OK(p2praft_oplog_new(&c, &loop, &rstate_type, &append_op, NULL));
    /* No actor, then an actor without raft: returned, no callback, as
     * p2praft_actor_set_state() without raft. */
    ASSERT_ERR(p2praft_consensus_commit_state(c, &st, result_cb, &r),
               P2PRAFT_ENOACTOR);
    ASSERT_ERR(p2praft_consensus_commit_op(c, &(struct test_op){"y"},
                                           result_cb, &r),
               P2PRAFT_ENOACTOR);
    ASSERT_OK(p2praft_actor_new(&a, NULL));
    p2praft_consensus_set_actor(c, a);
    ASSERT_ERR(p2praft_consensus_commit_state(c, &st, result_cb, &r),
               P2PRAFT_ENORAFT);
    ASSERT_ERR(p2praft_consensus_rollback(c, &st, result_cb, &r),
               P2PRAFT_ENORAFT);
    ASSERT_ERR(p2praft_actor_set_state(a, &st, result_cb, &r),
               P2PRAFT_ENORAFT);
    ASSERT_ERR(p2praft_consensus_snapshot(c, NULL, NULL), P2PRAFT_ENORAFT);
    uv_run(&loop, UV_RUN_NOWAIT);
    ASSERT_EQ(r.done, 0);
    p2praft_consensus_free(c);
    p2praft_actor_free(a);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_OK(uv_loop_close(&loop));
}

/* ---- leadership: the change notification and WaitForLeader ---- */

struct leader_log {
    int calls;
    int none; /* calls with no leader */
    char last[LP2P_PEER_ID_STRMAX];
    bool self;
};

static void on_leader(void *ctx, const char *leader, bool self)
{
    struct leader_log *l = ctx;
    l->calls++;
    if (leader == NULL) {
        l->none++;
        l->last[0] = '\0';
    } else {
        snprintf(l->last, sizeof(l->last), "%s", leader);
    }
    l->self = self;
}

static bool reported(void *ctx)
{
    return ((struct leader_log *)ctx)->calls > 0;
}

struct leaders_ctx {
    struct cluster *cl;
    struct leader_log *logs;
    const char *want; /* every running node's last report */
};

static bool all_report(void *ctx)
{
    struct leaders_ctx *lc = ctx;
    unsigned i;
    for (i = 0; i < lc->cl->n; i++) {
        if (lc->cl->nodes[i].c != NULL &&
            strcmp(lc->logs[i].last, lc->want) != 0) {
            return false;
        }
    }
    return true;
}

TEST(SUITE_CONSENSUS, leader_notification)
{
    struct cluster cl;
    struct leader_log logs[3];
    struct leaders_ctx lc;
    struct new_leader nlc;
    int leader;
    unsigned i;
    memset(&cl, 0, sizeof(cl));
    memset(logs, 0, sizeof(logs));
    ASSERT_OK(cluster_init(&cl, 3, &rstate_type, NULL, NULL));
    for (i = 0; i < 3; i++) {
        p2praft_consensus_on_leader(cl.nodes[i].c, on_leader, &logs[i]);
    }
    leader = cluster_wait_leader(&cl, WAIT_MS);
    ASSERT(leader >= 0);
    lc.cl = &cl;
    lc.logs = logs;
    lc.want = NODE_ADDR(cl, leader);
    ASSERT(cluster_run_until(&cl, all_report, &lc, WAIT_MS));
    for (i = 0; i < 3; i++) {
        ASSERT_EQ(logs[i].self, (int)i == leader);
        ASSERT(logs[i].calls >= 1);
    }
    /* Registered while a leader is known: told at the next turn. */
    {
        struct leader_log late;
        memset(&late, 0, sizeof(late));
        p2praft_consensus_on_leader(cl.nodes[0].c, on_leader, &late);
        ASSERT(cluster_run_until(&cl, reported, &late, WAIT_MS));
        ASSERT_STR_EQ(late.last, NODE_ADDR(cl, leader));
        ASSERT_EQ(late.calls, 1);
        ASSERT_EQ(late.self, leader == 0);
        p2praft_consensus_on_leader(cl.nodes[0].c, on_leader, &logs[0]);
        logs[0].calls = 1;
    }
    /* The leader goes: the others report the next one, not themselves
     * unless they are it. */
    cluster_stop(&cl, (unsigned)leader);
    nlc.cl = &cl;
    nlc.old = leader;
    nlc.found = -1;
    ASSERT(cluster_run_until(&cl, leader_among_rest, &nlc, WAIT_MS));
    lc.want = NODE_ADDR(cl, nlc.found);
    ASSERT(cluster_run_until(&cl, all_report, &lc, WAIT_MS));
    for (i = 0; i < 3; i++) {
        if ((int)i != leader) {
            ASSERT_EQ(logs[i].self, (int)i == nlc.found);
            ASSERT(logs[i].calls >= 2);
        }
    }
    cluster_close(&cl);
}

/* The loop runs on a worker; the thread that set everything up (this one)
 * waits for a leader, commits, snapshots with the blocking calls, which
 * see that the loop is not theirs. On the worker (a leader callback),
 * the same calls return ESTATE. */
struct worker {
    struct cluster *cl;
    uv_async_t stop;
    int in_loop_rv;  /* commit_state_wait on the loop thread */
    int in_loop_lrv; /* wait_for_leader on the loop thread */
    int in_loop_srv; /* snapshot_wait on the loop thread */
    int tried;
};

static void stop_cb(uv_async_t *h)
{
    uv_close((uv_handle_t *)h, NULL);
    uv_stop(h->loop);
}

static void *loop_worker(void *arg)
{
    struct worker *w = arg;
    uv_run(&w->cl->loop, UV_RUN_DEFAULT);
    return NULL;
}

static void on_leader_try_wait(void *ctx, const char *leader, bool self)
{
    struct worker *w = ctx;
    struct rstate st = mkstate("from the loop");
    (void)self;
    if (leader == NULL || w->tried) {
        return;
    }
    w->tried = 1;
    w->in_loop_rv = p2praft_consensus_commit_state_wait(w->cl->nodes[0].c,
                                                        &st, NULL, NULL, 0);
    w->in_loop_lrv = p2praft_consensus_wait_for_leader(w->cl->nodes[0].c, 10,
                                                       NULL, 0, NULL);
    w->in_loop_srv = p2praft_consensus_snapshot_wait(w->cl->nodes[0].c, NULL);
}

TEST(SUITE_CONSENSUS, loop_on_another_thread)
{
    struct cluster cl;
    struct worker w;
    pthread_t th;
    char peer[LP2P_PEER_ID_STRMAX];
    bool self = false;
    int leader = -1;
    unsigned i;
    uint64_t index = 0;
    struct rstate st = mkstate("from main");
    void *agreed = NULL;
    memset(&cl, 0, sizeof(cl));
    memset(&w, 0, sizeof(w));
    ASSERT_OK(cluster_init(&cl, 2, &rstate_type, NULL, NULL));
    w.cl = &cl;
    ASSERT_OK(uv_async_init(&cl.loop, &w.stop, stop_cb));
    p2praft_consensus_on_leader(cl.nodes[0].c, on_leader_try_wait, &w);
    ASSERT_OK(pthread_create(&th, NULL, loop_worker, &w));
    for (i = 0; i < 2; i++) {
        ASSERT_OK(p2praft_consensus_wait_for_leader(
            cl.nodes[i].c, WAIT_MS, peer, sizeof(peer), &self));
        if (self) {
            leader = (int)i;
        }
    }
    ASSERT(leader >= 0);
    ASSERT_STR_EQ(peer, NODE_ADDR(cl, leader));
    ASSERT_ERR(p2praft_consensus_wait_for_leader(cl.nodes[0].c, WAIT_MS, peer,
                                                 4, NULL),
               P2PRAFT_EOVERFLOW);
    ASSERT_OK(p2praft_consensus_commit_state_wait(cl.nodes[leader].c, &st,
                                                  &agreed, NULL, 0));
    ASSERT_STR_EQ(((struct rstate *)agreed)->Msg, "from main");
    p2praft_value_destroy(&rstate_type, agreed);
    ASSERT_OK(p2praft_consensus_snapshot_wait(cl.nodes[leader].c, &index));
    ASSERT(index >= 1);
    ASSERT(p2praft_consensus_snapshots(cl.nodes[leader].c) >= 1);
    uv_async_send(&w.stop);
    pthread_join(th, NULL);
    ASSERT_EQ(w.tried, 1);
    ASSERT_EQ(w.in_loop_rv, P2PRAFT_ESTATE);
    ASSERT_EQ(w.in_loop_lrv, P2PRAFT_ESTATE);
    ASSERT_EQ(w.in_loop_srv, P2PRAFT_ESTATE);
    cluster_close(&cl);
}

/* ---- snapshot now ---- */

struct snap_result {
    int done;
    int status;
    uint64_t index;
};

static void snap_cb(void *ctx, int status, uint64_t index)
{
    struct snap_result *s = ctx;
    s->done++;
    s->status = status;
    s->index = index;
}

static bool snap_done(void *ctx)
{
    return ((struct snap_result *)ctx)->done > 0;
}

TEST(SUITE_CONSENSUS, snapshot_now)
{
    struct cluster cl;
    struct snap_result s[2];
    struct applied_ctx ac;
    int leader, n = 0, k;
    unsigned i, before;
    uint64_t applied[2], taken[2];
    memset(&cl, 0, sizeof(cl));
    memset(s, 0, sizeof(s));
    ASSERT_OK(cluster_init(&cl, 2, &rstate_type, NULL, NULL));
    leader = cluster_wait_leader(&cl, WAIT_MS);
    ASSERT(leader >= 0);
    before = cl.nodes[0].raft.legacy.snapshot_threshold;
    ASSERT(before > 10); /* the default: no snapshot from the threshold */
    /* Nothing agreed yet: nothing to snapshot. */
    ASSERT_ERR(p2praft_consensus_snapshot(cl.nodes[leader].c, snap_cb, &s[0]),
               P2PRAFT_ENOSTATE);
    for (k = 0; k < 3; k++) {
        struct rstate st = mkstate("snap");
        ASSERT_OK(p2praft_consensus_commit_state(cl.nodes[leader].c, &st,
                                                 count_cb, &n));
        struct counter_ctx cc = {&n, k + 1};
        ASSERT(cluster_run_until(&cl, counter_reached, &cc, WAIT_MS));
    }
    ac.cl = &cl;
    ac.want = 3;
    ASSERT(cluster_run_until(&cl, all_applied, &ac, WAIT_MS));
    /* Leader and follower alike. */
    for (i = 0; i < 2; i++) {
        applied[i] = raft_last_applied(&cl.nodes[i].raft);
        taken[i] = p2praft_consensus_snapshots(cl.nodes[i].c);
        ASSERT_OK(p2praft_consensus_snapshot(cl.nodes[i].c, snap_cb, &s[i]));
        ASSERT_EQ(s[i].done, 0); /* never inside the call */
    }
    for (i = 0; i < 2; i++) {
        ASSERT(cluster_run_until(&cl, snap_done, &s[i], WAIT_MS));
        ASSERT_OK(s[i].status);
        ASSERT(s[i].index >= applied[i]);
        ASSERT_EQ_U64(p2praft_consensus_snapshots(cl.nodes[i].c),
                      taken[i] + 1);
        /* the threshold is back */
        ASSERT_EQ(cl.nodes[i].raft.legacy.snapshot_threshold, before);
    }
    /* Nothing new since: the snapshot there covers it, none is taken. */
    memset(&s[0], 0, sizeof(s[0]));
    ASSERT_OK(p2praft_consensus_snapshot(cl.nodes[leader].c, snap_cb, &s[0]));
    ASSERT(cluster_run_until(&cl, snap_done, &s[0], WAIT_MS));
    ASSERT_OK(s[0].status);
    ASSERT_EQ_U64(p2praft_consensus_snapshots(cl.nodes[leader].c),
                  taken[leader] + 1);
    cluster_close(&cl);
}

/* ---- applied() counts commits, not raft entries ---- */

TEST(SUITE_CONSENSUS, applied_counts_commits)
{
    struct cluster cl;
    struct applied_ctx ac;
    int leader, n = 0, k;
    struct counter_ctx cc = {&n, 3};
    uint64_t entries, commits;
    memset(&cl, 0, sizeof(cl));
    ASSERT_OK(cluster_init(&cl, 2, &rstate_type, NULL, NULL));
    leader = cluster_wait_leader(&cl, WAIT_MS);
    ASSERT(leader >= 0);
    /* A first commit: the leader's own entries are behind us. */
    {
        struct rstate st = mkstate("first");
        struct counter_ctx c1 = {&n, 1};
        ASSERT_OK(p2praft_consensus_commit_state(cl.nodes[leader].c, &st,
                                                 count_cb, &n));
        ASSERT(cluster_run_until(&cl, counter_reached, &c1, WAIT_MS));
        cc.want = 4;
    }
    entries = raft_last_applied(&cl.nodes[leader].raft);
    commits = p2praft_consensus_applied(cl.nodes[leader].c);
    /* Three commits in one loop turn: one raft entry. */
    for (k = 0; k < 3; k++) {
        struct rstate st = mkstate("one of three");
        ASSERT_OK(p2praft_consensus_commit_state(cl.nodes[leader].c, &st,
                                                 count_cb, &n));
    }
    ASSERT(cluster_run_until(&cl, counter_reached, &cc, WAIT_MS));
    ASSERT_EQ_U64(raft_last_applied(&cl.nodes[leader].raft), entries + 1);
    ASSERT_EQ_U64(p2praft_consensus_applied(cl.nodes[leader].c), commits + 3);
    ac.cl = &cl;
    ac.want = commits + 3;
    ASSERT(cluster_run_until(&cl, all_applied, &ac, WAIT_MS));
    cluster_close(&cl);
}

#ifdef CONSENSUS_STORE
/* ---- one call tears a group down: raft, then consensus, actor, io,
 * host; commits still pending complete, outcome unknown ---- */

struct close_ctx {
    int done;
    int results[16];
    int calls[16];
};

static void close_done(void *ctx)
{
    ((struct close_ctx *)ctx)->done++;
}

static bool close_finished(void *ctx)
{
    return ((struct close_ctx *)ctx)->done > 0;
}

struct slot {
    struct close_ctx *cc;
    int i;
};

static void slot_cb(void *ctx, int status, void *state, const char *errmsg)
{
    struct slot *s = ctx;
    (void)errmsg;
    p2praft_value_destroy(&rstate_type, state);
    s->cc->calls[s->i]++;
    s->cc->results[s->i] = status;
}

TEST(SUITE_CONSENSUS, group_close_with_commits_pending)
{
    struct cluster cl;
    struct close_ctx cc;
    struct slot slots[16];
    struct nc_node *nd;
    struct p2praft_group g;
    struct new_leader nlc;
    struct rstate st = mkstate("pending");
    int leader, i;
    memset(&cl, 0, sizeof(cl));
    memset(&cc, 0, sizeof(cc));
    ASSERT_OK(cluster_init(&cl, 3, &rstate_type, NULL, NULL));
    leader = cluster_wait_leader(&cl, WAIT_MS);
    ASSERT(leader >= 0);
    nd = &cl.nodes[leader];
    /* Half the commits reach raft (flushed in a loop turn), half are
     * still queued when the group closes. */
    for (i = 0; i < 16; i++) {
        slots[i].cc = &cc;
        slots[i].i = i;
        ASSERT_OK(p2praft_consensus_commit_state(nd->c, &st, slot_cb,
                                                 &slots[i]));
        if (i == 7) {
            uv_run(&cl.loop, UV_RUN_NOWAIT);
        }
    }
    g.raft = &nd->raft;
    g.io = &nd->io;
    g.consensus = nd->c;
    g.actor = nd->actor;
    g.host = nd->host;
    ASSERT_OK(p2praft_group_close(&g, close_done, &cc));
    /* raft is closing: a second close is refused, nothing done twice. */
    ASSERT_ERR(p2praft_group_close(&g, NULL, NULL), P2PRAFT_ESTATE);
    /* The harness must not close them again. */
    nd->running = false;
    nd->c = NULL;
    nd->actor = NULL;
    nd->host = NULL;
    ASSERT(cluster_run_until(&cl, close_finished, &cc, WAIT_MS));
    ASSERT_EQ(cc.done, 1);
    for (i = 0; i < 16; i++) {
        ASSERT_EQ(cc.calls[i], 1);
        ASSERT(cc.results[i] == 0 || p2praft_outcome_unknown(cc.results[i]));
    }
    /* The others go on without it. */
    nlc.cl = &cl;
    nlc.old = leader;
    nlc.found = -1;
    ASSERT(cluster_run_until(&cl, leader_among_rest, &nlc, WAIT_MS));
    cluster_close(&cl);
}

/* A group that never started raft, and one without a host to close. */
TEST(SUITE_CONSENSUS, group_close_partial)
{
    uv_loop_t loop;
    struct p2praft_group g;
    struct close_ctx cc;
    memset(&g, 0, sizeof(g));
    memset(&cc, 0, sizeof(cc));
    ASSERT_OK(uv_loop_init(&loop));
    ASSERT_OK(p2praft_consensus_new(&g.consensus, &loop, &rstate_type, NULL));
    ASSERT_OK(p2praft_actor_new(&g.actor, NULL));
    ASSERT_OK(lp2p_host_new(&g.host, &loop, NULL));
    ASSERT_OK(p2praft_group_close(&g, close_done, &cc));
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ(cc.done, 1);
    ASSERT_OK(uv_loop_close(&loop));
    ASSERT_ERR(p2praft_group_close(NULL, NULL, NULL), P2PRAFT_EINVAL);

    /* raft initialised over p2praft's io, never started. */
    {
        struct raft r;
        struct raft_io rio;
        struct p2praft_io_config cfg;
        char self[LP2P_PEER_ID_STRMAX];
        memset(&g, 0, sizeof(g));
        memset(&cc, 0, sizeof(cc));
        ASSERT_OK(uv_loop_init(&loop));
        ASSERT_OK(lp2p_host_new(&g.host, &loop, NULL));
        ASSERT_OK(p2praft_consensus_new(&g.consensus, &loop, &rstate_type,
                                        NULL));
        p2praft_io_config_init(&cfg);
        ASSERT_OK(p2praft_io_init(&rio, g.host, &cfg));
        ASSERT_OK(lp2p_peer_id_to_string(lp2p_host_id(g.host), self,
                                         sizeof(self)));
        ASSERT_OK(raft_init(&r, &rio, p2praft_consensus_fsm(g.consensus),
                            p2praft_server_id(lp2p_host_id(g.host)), self));
        ASSERT_OK(p2praft_actor_new(&g.actor, &r));
        p2praft_consensus_set_actor(g.consensus, g.actor);
        g.raft = &r;
        g.io = &rio;
        r.data = &cc; /* the caller's, put back */
        ASSERT_OK(p2praft_group_close(&g, close_done, &cc));
        uv_run(&loop, UV_RUN_DEFAULT);
        ASSERT_EQ(cc.done, 1);
        ASSERT(r.data == &cc);
        ASSERT_OK(uv_loop_close(&loop));
    }
}
#endif

#ifdef CONSENSUS_STORE
/* ---- a commit's callback learns its own entry's raft index, even when
 * raft applied a later entry in the same turn (the node's write answers
 * carry it: watches report the same index) ---- */

struct idx_probe {
    struct p2praft_consensus *c;
    struct raft *r;
    int done, status;
    uint64_t index, applied;
};

static void idx_cb(void *ctx, int status, void *state, const char *errmsg)
{
    struct idx_probe *p = ctx;
    (void)errmsg;
    p->status = status;
    p->index = p2praft__consensus_cb_index(p->c);
    p->applied = raft_last_applied(p->r);
    p->done = 1;
    p2praft_value_destroy(&rstate_type, state);
}

static bool idx_both_done(void *ctx)
{
    struct idx_probe *p = ctx;
    return p[0].done && p[1].done;
}

struct last_ctx {
    struct raft *r;
    raft_index want;
};

static bool last_reached(void *ctx)
{
    struct last_ctx *l = ctx;
    return raft_last_index(l->r) >= l->want;
}

TEST(SUITE_CONSENSUS, callback_knows_its_entry_index)
{
    struct cluster cl;
    struct idx_probe p[2];
    struct last_ctx lc;
    struct rstate st1 = mkstate("one"), st2 = mkstate("two");
    raft_index last;
    unsigned i;
    int leader;
    memset(&cl, 0, sizeof(cl));
    memset(p, 0, sizeof(p));
    /* Long election timeout: the leader keeps its role while cut off. */
    cl.election_ms = cluster_slow() ? 10000 : 1500;
    cl.heartbeat_ms = cluster_slow() ? 500 : 50;
    ASSERT_OK(cluster_init(&cl, 3, &rstate_type, NULL, NULL));
    leader = cluster_wait_leader(&cl, cl.election_ms * 4);
    ASSERT(leader >= 0);
    /* Both followers cut off: the two entries, appended in two turns,
     * are committed by the same acknowledgement once they are back. */
    for (i = 0; i < 3; i++) {
        if ((int)i != leader) {
            p2praft__io_set_drop(&cl.nodes[i].io, true);
        }
    }
    lc.r = &cl.nodes[leader].raft;
    last = raft_last_index(lc.r);
    for (i = 0; i < 2; i++) {
        p[i].c = cl.nodes[leader].c;
        p[i].r = &cl.nodes[leader].raft;
        ASSERT_OK(p2praft_consensus_commit_state(
            cl.nodes[leader].c, i == 0 ? &st1 : &st2, idx_cb, &p[i]));
        lc.want = last + i + 1;
        ASSERT(cluster_run_until(&cl, last_reached, &lc, WAIT_MS));
    }
    for (i = 0; i < 3; i++) {
        p2praft__io_set_drop(&cl.nodes[i].io, false);
    }
    ASSERT(cluster_run_until(&cl, idx_both_done, p, WAIT_MS));
    ASSERT_OK(p[0].status);
    ASSERT_OK(p[1].status);
    ASSERT_EQ_U64(p[0].index, last + 1);
    ASSERT_EQ_U64(p[1].index, last + 2);
    ASSERT(p[0].applied >= p[0].index);
    /* Outside a callback: nothing. */
    ASSERT_EQ_U64(p2praft__consensus_cb_index(cl.nodes[leader].c), 0);
    printf("  first callback: entry %llu, raft applied to %llu\n",
           (unsigned long long)p[0].index, (unsigned long long)p[0].applied);
    cluster_close(&cl);
}
#endif
