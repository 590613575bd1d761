/*
 * The loop-call bridge (see bridge.h). The async handle is only touched
 * under `mu` by foreign threads, and the loop closes it only after setting
 * `shut` under the same lock: a caller that saw `shut == false` has sent
 * its wake-up before the handle can start closing. Calls the loop takes
 * from the queue after a shut are answered LP2P_ESHUTDOWN, never run: a
 * shut wins over every call that has not reached `run` yet.
 */
#include "util/bridge.h"
#include "lp2p.h"

static void answer_all(struct lp2p__list *calls, int rv)
{
    struct lp2p__list *q, *n;
    LP2P__LIST_FOREACH_SAFE(q, n, calls) {
        lp2p__list_remove(q);
        lp2p__loopcall_done(LP2P__CONTAINER_OF(q, struct lp2p__loopcall, link),
                            rv);
    }
}

static void async_cb(uv_async_t *h)
{
    struct lp2p__bridge *b = h->data;
    struct lp2p__list calls, *q, *n;
    bool shut;
    pthread_mutex_lock(&b->mu);
    lp2p__list_take(&calls, &b->queue);
    shut = b->shut;
    pthread_mutex_unlock(&b->mu);
    if (shut) {
        answer_all(&calls, LP2P_ESHUTDOWN);
    } else {
        LP2P__LIST_FOREACH_SAFE(q, n, &calls) {
            lp2p__list_remove(q);
            b->run(b, LP2P__CONTAINER_OF(q, struct lp2p__loopcall, link));
        }
    }
    if (shut && !b->shut_seen) {
        b->shut_seen = true;
        if (b->on_shut != NULL) {
            b->on_shut(b);
        }
    }
}

int lp2p__bridge_init(struct lp2p__bridge *b, uv_loop_t *loop,
                      lp2p__bridge_run_cb run, lp2p__bridge_shut_cb on_shut)
{
    b->run = run;
    b->on_shut = on_shut;
    b->on_close = NULL;
    b->shut = b->shut_seen = false;
    lp2p__list_init(&b->queue);
    if (uv_async_init(loop, &b->async, async_cb) != 0) {
        return LP2P_EIO;
    }
    b->async.data = b;
    pthread_mutex_init(&b->mu, NULL);
    return 0;
}

int lp2p__bridge_call(struct lp2p__bridge *b, struct lp2p__loopcall *call)
{
    int rv;
    pthread_mutex_init(&call->mu, NULL);
    pthread_cond_init(&call->cv, NULL);
    call->done = false;
    call->rv = 0;
    pthread_mutex_lock(&b->mu);
    if (b->shut) {
        pthread_mutex_unlock(&b->mu);
        rv = LP2P_ESHUTDOWN;
        goto out;
    }
    lp2p__list_insert_tail(&b->queue, &call->link);
    uv_async_send(&b->async);
    pthread_mutex_unlock(&b->mu);
    pthread_mutex_lock(&call->mu);
    while (!call->done) {
        pthread_cond_wait(&call->cv, &call->mu);
    }
    pthread_mutex_unlock(&call->mu);
    rv = call->rv;
out:
    pthread_cond_destroy(&call->cv);
    pthread_mutex_destroy(&call->mu);
    return rv;
}

void lp2p__loopcall_done(struct lp2p__loopcall *call, int rv)
{
    pthread_mutex_lock(&call->mu);
    call->rv = rv;
    call->done = true;
    pthread_cond_signal(&call->cv);
    pthread_mutex_unlock(&call->mu);
}

void lp2p__bridge_shut(struct lp2p__bridge *b)
{
    struct lp2p__list calls;
    pthread_mutex_lock(&b->mu);
    lp2p__list_take(&calls, &b->queue);
    if (!b->shut) {
        b->shut = true;
        /* Wake the loop for on_shut. The handle is open: closing it sets
         * `shut` first, and it was false. */
        uv_async_send(&b->async);
    }
    pthread_mutex_unlock(&b->mu);
    answer_all(&calls, LP2P_ESHUTDOWN);
}

static void closed_cb(uv_handle_t *h)
{
    struct lp2p__bridge *b = h->data;
    pthread_mutex_destroy(&b->mu);
    if (b->on_close != NULL) {
        b->on_close(b);
    }
}

void lp2p__bridge_close(struct lp2p__bridge *b, lp2p__bridge_close_cb cb)
{
    struct lp2p__list calls;
    pthread_mutex_lock(&b->mu);
    lp2p__list_take(&calls, &b->queue);
    b->shut = true;
    pthread_mutex_unlock(&b->mu);
    answer_all(&calls, LP2P_ESHUTDOWN);
    b->shut_seen = true; /* the loop closes it itself: nothing to tell */
    b->on_close = cb;
    uv_close((uv_handle_t *)&b->async, closed_cb);
}
