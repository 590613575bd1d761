/*
 * The loop-call bridge: how a foreign thread asks a libuv loop thread to do
 * something, and blocks until the loop answers.
 *
 * A bridge is a mutex-guarded queue of calls plus a uv_async handle. The
 * caller embeds a `struct lp2p__loopcall` in its own request (on its stack
 * is fine: it blocks until the answer) and passes it to lp2p__bridge_call().
 * On the loop thread the bridge's `run` callback receives each call, in
 * order; the loop answers it with lp2p__loopcall_done(), at once or later
 * (after a commit, a network round trip...), exactly once. Then
 * lp2p__bridge_call() returns the code given to lp2p__loopcall_done().
 *
 * Shutting down: after lp2p__bridge_shut() (any thread) or
 * lp2p__bridge_close() (loop thread), new calls return LP2P_ESHUTDOWN at
 * once and calls still queued are answered LP2P_ESHUTDOWN; calls that `run`
 * already took keep waiting for their answer. A shut from a foreign thread
 * also wakes the loop, which then runs `on_shut` once (that is how a node's
 * stop reaches its loop).
 *
 * Lifetime: the bridge lives until lp2p__bridge_close()'s callback. No
 * thread may still be inside lp2p__bridge_call() by then (calls refused
 * after the shut return at once; join or otherwise wait for the callers).
 */
#ifndef LP2P_UTIL_BRIDGE_H
#define LP2P_UTIL_BRIDGE_H

#include <pthread.h>
#include <stdbool.h>
#include <uv.h>

#include "util/list.h"

struct lp2p__bridge;

/* One call, embedded by the caller (LP2P__CONTAINER_OF finds the rest). */
struct lp2p__loopcall {
    struct lp2p__list link; /* in the bridge's queue */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int rv;
};

/* Loop thread: take `call` (answer it once, now or later). */
typedef void (*lp2p__bridge_run_cb)(struct lp2p__bridge *b,
                                    struct lp2p__loopcall *call);
/* Loop thread: a foreign thread shut the bridge. */
typedef void (*lp2p__bridge_shut_cb)(struct lp2p__bridge *b);
typedef void (*lp2p__bridge_close_cb)(struct lp2p__bridge *b);

struct lp2p__bridge {
    uv_async_t async; /* the owner may uv_unref() it */
    lp2p__bridge_run_cb run;
    lp2p__bridge_shut_cb on_shut;
    lp2p__bridge_close_cb on_close;
    void *data; /* the owner's */
    pthread_mutex_t mu; /* guards the queue and `shut` */
    struct lp2p__list queue;
    bool shut;
    bool shut_seen; /* loop thread: on_shut ran */
};

/*
 * Loop thread: set up `b` on `loop`. `run` is required; `on_shut` (may be
 * NULL) runs on the loop once after a foreign lp2p__bridge_shut(). 0 or
 * LP2P_EIO (uv_async_init failed; nothing to close then).
 */
int lp2p__bridge_init(struct lp2p__bridge *b, uv_loop_t *loop,
                      lp2p__bridge_run_cb run, lp2p__bridge_shut_cb on_shut);

/*
 * Any thread but the loop's (which would wait for itself): queue `call`
 * (borrowed until return) and block until the loop answers. Returns the
 * answer's code, or LP2P_ESHUTDOWN when the bridge is shut (then `run`
 * never saw the call).
 */
int lp2p__bridge_call(struct lp2p__bridge *b, struct lp2p__loopcall *call);

/* Answer `call` with `rv` (any thread, once). The caller wakes up and owns
 * `call` again: do not touch it afterwards. */
void lp2p__loopcall_done(struct lp2p__loopcall *call, int rv);

/* Any thread: refuse new calls and answer the queued ones LP2P_ESHUTDOWN.
 * Idempotent. */
void lp2p__bridge_shut(struct lp2p__bridge *b);

/* Loop thread: shut `b`, close its handle; `cb` (may be NULL) runs once
 * the bridge may be freed. */
void lp2p__bridge_close(struct lp2p__bridge *b, lp2p__bridge_close_cb cb);

#endif
