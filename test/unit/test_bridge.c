/*
 * util/bridge.h: the loop-call bridge. A loop thread (the test's own) and
 * foreign threads that block on calls:
 *   - answers given at once and later (from a timer) reach their caller;
 *   - many threads calling at once each get exactly their own answers, in
 *     their order, and the loop sees every call once;
 *   - a foreign shut (a node's stop): queued calls fail, taken calls still
 *     get their answer, later calls fail at once, on_shut runs once;
 *   - calls made while the loop closes the bridge: each one either ran or
 *     failed with LP2P_ESHUTDOWN, none hangs.
 * No sleeps: threads and loop wait on each other's events only.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <uv.h>

#include "lp2p.h"
#include "test.h"
#include "util/bridge.h"

#define THREADS 8
#define CALLS 300

struct tcall {
    struct lp2p__loopcall lc;
    int thread, seq;
};

struct fixture {
    uv_loop_t loop;
    struct lp2p__bridge b;
    uv_timer_t timer;
    struct lp2p__list later; /* calls to answer from the timer */
    atomic_long ran;         /* calls `run` saw */
    long stop_after;         /* uv_stop() once `ran` reaches it (0: never) */
    int last_seq[THREADS];   /* per thread, loop side: order check */
    bool order_ok;
    int shuts;    /* on_shut runs */
    bool closed;  /* close callback ran */
    bool defer;   /* answer every other call from the timer */
};

/* The answer to a call: a function of who made it, so a mix-up shows. */
static int answer_of(int thread, int seq)
{
    return thread * 100000 + seq + 1;
}

static struct fixture *fixture_of(struct lp2p__bridge *b)
{
    return LP2P__CONTAINER_OF(b, struct fixture, b);
}

static void answer_later(uv_timer_t *t)
{
    struct fixture *f = t->data;
    struct lp2p__list *q;
    while ((q = lp2p__list_first(&f->later)) != NULL) {
        struct tcall *c = LP2P__CONTAINER_OF(q, struct tcall, lc.link);
        lp2p__list_remove(q);
        lp2p__loopcall_done(&c->lc, answer_of(c->thread, c->seq));
    }
}

static void run(struct lp2p__bridge *b, struct lp2p__loopcall *lc)
{
    struct fixture *f = fixture_of(b);
    struct tcall *c = LP2P__CONTAINER_OF(lc, struct tcall, lc);
    long ran = atomic_fetch_add(&f->ran, 1) + 1;
    if (c->seq != f->last_seq[c->thread] + 1) {
        f->order_ok = false;
    }
    f->last_seq[c->thread] = c->seq;
    if (f->defer && c->seq % 2 == 1) {
        /* The bridge no longer holds the link: reuse it for our queue. */
        lp2p__list_insert_tail(&f->later, &lc->link);
        uv_timer_start(&f->timer, answer_later, 0, 0);
    } else {
        lp2p__loopcall_done(lc, answer_of(c->thread, c->seq));
    }
    if (f->stop_after > 0 && ran >= f->stop_after) {
        uv_stop(&f->loop);
    }
}

static void on_shut(struct lp2p__bridge *b)
{
    struct fixture *f = fixture_of(b);
    f->shuts++;
    uv_stop(&f->loop);
}

static void on_close(struct lp2p__bridge *b)
{
    fixture_of(b)->closed = true;
}

static void fixture_init(struct fixture *f)
{
    int i;
    memset(f, 0, sizeof(*f));
    ASSERT(uv_loop_init(&f->loop) == 0);
    ASSERT_OK(lp2p__bridge_init(&f->b, &f->loop, run, on_shut));
    ASSERT(uv_timer_init(&f->loop, &f->timer) == 0);
    f->timer.data = f;
    lp2p__list_init(&f->later);
    for (i = 0; i < THREADS; i++) {
        f->last_seq[i] = -1;
    }
    f->order_ok = true;
}

/* Close the bridge and the timer, run the loop dry, close it. */
static void fixture_close(struct fixture *f)
{
    answer_later(&f->timer);
    lp2p__bridge_close(&f->b, on_close);
    uv_close((uv_handle_t *)&f->timer, NULL);
    ASSERT_EQ(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    ASSERT(f->closed);
    ASSERT_EQ(uv_loop_close(&f->loop), 0);
}

/* A foreign thread: CALLS calls (or until one is refused). */
struct caller {
    pthread_t tid;
    struct fixture *f;
    int id;
    int answered, refused, wrong;
    bool refused_then_called; /* a call answered after a refusal */
};

static void *caller_main(void *arg)
{
    struct caller *c = arg;
    int i;
    for (i = 0; i < CALLS; i++) {
        struct tcall call;
        int rv;
        memset(&call, 0, sizeof(call));
        call.thread = c->id;
        call.seq = i;
        rv = lp2p__bridge_call(&c->f->b, &call.lc);
        if (rv == LP2P_ESHUTDOWN) {
            c->refused++;
            break; /* refused once, refused for good: checked below */
        }
        if (c->refused > 0) {
            c->refused_then_called = true;
        }
        if (rv == answer_of(c->id, i)) {
            c->answered++;
        } else {
            c->wrong++;
        }
    }
    /* After a refusal every further call is refused too. */
    if (c->refused > 0) {
        struct tcall call;
        memset(&call, 0, sizeof(call));
        call.thread = c->id;
        if (lp2p__bridge_call(&c->f->b, &call.lc) != LP2P_ESHUTDOWN) {
            c->refused_then_called = true;
        }
    }
    return NULL;
}

static void start_callers(struct fixture *f, struct caller *c, int n)
{
    int i;
    for (i = 0; i < n; i++) {
        memset(&c[i], 0, sizeof(c[i]));
        c[i].f = f;
        c[i].id = i;
        ASSERT(pthread_create(&c[i].tid, NULL, caller_main, &c[i]) == 0);
    }
}

static void join_callers(struct caller *c, int n)
{
    int i;
    for (i = 0; i < n; i++) {
        ASSERT(pthread_join(c[i].tid, NULL) == 0);
        ASSERT_EQ(c[i].wrong, 0);
        ASSERT(!c[i].refused_then_called);
    }
}

/* The loop runs until it has seen every call, half of them answered from
 * a timer (so several calls are in flight at once). */
TEST(bridge, many_threads_at_once)
{
    struct fixture f;
    struct caller c[THREADS];
    int i;
    fixture_init(&f);
    f.defer = true;
    f.stop_after = (long)THREADS * CALLS;
    start_callers(&f, c, THREADS);
    ASSERT_EQ(uv_run(&f.loop, UV_RUN_DEFAULT), 1); /* stopped */
    /* the last calls may wait on the timer: answer them */
    answer_later(&f.timer);
    join_callers(c, THREADS);
    for (i = 0; i < THREADS; i++) {
        ASSERT_EQ(c[i].answered, CALLS);
        ASSERT_EQ(c[i].refused, 0);
        ASSERT_EQ(f.last_seq[i], CALLS - 1);
    }
    ASSERT(f.order_ok);
    ASSERT_EQ(atomic_load(&f.ran), (long)THREADS * CALLS);
    ASSERT_EQ(f.shuts, 0);
    fixture_close(&f);
}

/* A thread that shuts the bridge, as p2praft_node_stop() does. */
static void *shut_main(void *arg)
{
    lp2p__bridge_shut(arg);
    return NULL;
}

TEST(bridge, foreign_shut)
{
    struct fixture f;
    struct caller c[THREADS];
    pthread_t shutter;
    struct tcall late;
    int i;
    long answered = 0, refused = 0;
    fixture_init(&f);
    f.defer = true;
    f.stop_after = THREADS * CALLS / 4; /* shut in the middle */
    start_callers(&f, c, THREADS);
    ASSERT_EQ(uv_run(&f.loop, UV_RUN_DEFAULT), 1);
    f.stop_after = 0;
    /* Some calls wait in the queue, some on the timer (taken by run):
     * shut from another thread while the loop is not running. */
    ASSERT(pthread_create(&shutter, NULL, shut_main, &f.b) == 0);
    ASSERT(pthread_join(shutter, NULL) == 0);
    lp2p__bridge_shut(&f.b); /* idempotent */
    /* on_shut runs on the loop (it stops it); taken calls still get their
     * answer from the timer */
    ASSERT_EQ(uv_run(&f.loop, UV_RUN_DEFAULT), 1);
    ASSERT_EQ(f.shuts, 1);
    answer_later(&f.timer);
    join_callers(c, THREADS);
    for (i = 0; i < THREADS; i++) {
        /* each caller was refused, unless it had made all its calls */
        ASSERT(c[i].refused == 1 || c[i].answered == CALLS);
        refused += c[i].refused;
        answered += c[i].answered;
    }
    ASSERT(refused > 0);
    /* every call run saw was answered, and only those */
    ASSERT_EQ(answered, atomic_load(&f.ran));
    ASSERT(f.order_ok);
    /* from this thread too */
    memset(&late, 0, sizeof(late));
    ASSERT_ERR(lp2p__bridge_call(&f.b, &late.lc), LP2P_ESHUTDOWN);
    ASSERT_EQ(f.shuts, 1);
    fixture_close(&f);
    ASSERT_EQ(f.shuts, 1);
}

TEST(bridge, calls_while_the_loop_closes_it)
{
    struct fixture f;
    struct caller c[THREADS];
    long answered = 0, refused = 0;
    int i;
    fixture_init(&f);
    f.defer = true;
    f.stop_after = THREADS * CALLS / 3;
    start_callers(&f, c, THREADS);
    ASSERT_EQ(uv_run(&f.loop, UV_RUN_DEFAULT), 1);
    f.stop_after = 0;
    /* The loop closes the bridge while the callers keep calling: queued
     * calls fail now, later ones at once; taken ones are answered. */
    answer_later(&f.timer);
    lp2p__bridge_close(&f.b, on_close);
    join_callers(c, THREADS); /* before the close completes */
    for (i = 0; i < THREADS; i++) {
        ASSERT(c[i].refused == 1 || c[i].answered == CALLS);
        refused += c[i].refused;
        answered += c[i].answered;
    }
    ASSERT(refused > 0);
    ASSERT_EQ(answered, atomic_load(&f.ran));
    ASSERT(!f.closed);
    uv_close((uv_handle_t *)&f.timer, NULL);
    ASSERT_EQ(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
    ASSERT(f.closed);
    ASSERT_EQ(f.shuts, 0); /* the loop closed it itself: no on_shut */
    ASSERT_EQ(uv_loop_close(&f.loop), 0);
}
