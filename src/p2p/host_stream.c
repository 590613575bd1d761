/*
 * Streams: a Yamux stream plus its multistream-select negotiation, with
 * the application API on top (read callbacks, writes with completion,
 * half-close, reset, deadline, close).
 *
 * Life of a stream:
 *   outbound: lp2p_stream_open -> (connect) -> Yamux open -> mss initiator
 *             -> open_cb(stream) ... lp2p_stream_close -> FIN after the
 *             queued writes -> peer FIN (or linger timeout: RST) -> close_cb
 *   inbound:  Yamux SYN -> accept -> mss responder -> handler(stream) ...
 *
 * Received bytes are delivered straight from the Yamux event when the
 * application is reading and nothing is buffered; otherwise they are
 * copied into the stream's buffer, which the peer cannot grow past the
 * Yamux receive window because credit is only returned once the
 * application has been given the bytes.
 *
 * Callbacks that an API call causes (write completions, delivery after
 * read_start, failures found by the host) run from a deferred job on a
 * later loop iteration, never inside the call. Events from the peer run
 * from the read path directly. A stream's memory is freed only after its
 * timer handle has closed, which is always on a later loop iteration, so
 * a callback that closes the stream never leaves a dangling pointer in
 * the code that called it.
 */
#include <string.h>

#include "host.h"
#include "../util/heap.h"
#include "../util/log.h"

#define MOD "stream"

enum {
    TIMER_NONE = 0,
    TIMER_NEGOTIATE,
    TIMER_DEADLINE,
    TIMER_LINGER
};

enum {
    JOB_DELIVER = 1,
    JOB_WDONE = 2,
    JOB_OPENFAIL = 4
};

static void deliver(struct lp2p_stream *s);
static void check_done(struct lp2p_stream *s);

/* ---------------------------------------------------------------------
 * Object life
 */

static void timer_closed(uv_handle_t *h)
{
    struct lp2p_stream *s = h->data;
    struct lp2p_host *host = s->host;
    size_t i;
    if (s->app_closed && s->close_cb != NULL) {
        s->close_cb(s, s->close_data);
    }
    for (i = 0; i < s->n_protos; i++) {
        lp2p__free(s->protos[i]);
    }
    lp2p__free(s->protos);
    lp2p__free(s->protocol);
    lp2p__free(s->mss);
    lp2p__buf_free(&s->rbuf);
    lp2p__free(s);
    lp2p__host_unref(host);
}

static void finalize(struct lp2p_stream *s)
{
    if (!uv_is_closing((uv_handle_t *)&s->timer)) {
        uv_close((uv_handle_t *)&s->timer, timer_closed);
    }
}

static void unlink_conn(struct lp2p_stream *s)
{
    struct lp2p_conn *c = s->conn;
    if (c == NULL) {
        return;
    }
    lp2p__list_remove(&s->link);
    if (s->inbound) {
        c->n_in_streams--;
    } else {
        c->n_out_streams--;
    }
    lp2p__conn_touch(c);
    s->conn = NULL;
}

static void release_ys(struct lp2p_stream *s)
{
    if (s->ys != NULL) {
        struct lp2p_conn *c = s->conn;
        lp2p__yamux_stream_set_user(s->ys, NULL);
        lp2p__yamux_stream_release(s->ys);
        s->ys = NULL;
        lp2p__conn_kick(c);
    }
}

static void destroy(struct lp2p_stream *s)
{
    if (s->destroyed) {
        return;
    }
    release_ys(s);
    unlink_conn(s);
    s->destroyed = 1;
    s->phase = LP2P_STREAM_DEAD;
    uv_timer_stop(&s->timer);
    if (s->jobs == 0) {
        finalize(s);
    }
}

static void run_wdone(struct lp2p_stream *s)
{
    while (!lp2p__list_empty(&s->wdone)) {
        struct lp2p_swreq *w =
            LP2P__CONTAINER_OF(s->wdone.next, struct lp2p_swreq, link);
        lp2p__list_remove(&w->link);
        if (w->cb != NULL) {
            w->cb(s, w->status, w->data);
        }
        lp2p__free(w);
    }
}

static void stream_job(struct lp2p_host *host, void *arg, int status)
{
    struct lp2p_stream *s = arg;
    int flags = s->job_flags;
    (void)host;
    (void)status;
    s->job_flags = 0;
    if (flags & JOB_WDONE) {
        run_wdone(s);
    }
    if ((flags & JOB_OPENFAIL) && s->open_cb != NULL) {
        lp2p_stream_open_cb cb = s->open_cb;
        s->open_cb = NULL;
        cb(NULL, s->reset != 0 ? s->reset : LP2P_ECLOSED, s->open_data);
        destroy(s);
    }
    if ((flags & JOB_DELIVER) && !s->destroyed) {
        deliver(s);
    }
    /* Only now may the job's reference go: jobs scheduled above keep it. */
    s->jobs--;
    if (s->job_flags != 0 && s->jobs == 0) {
        /* A callback scheduled more work; the job is already queued. */
    }
    if (s->destroyed && s->jobs == 0) {
        finalize(s);
    }
}

static void schedule(struct lp2p_stream *s, int flag)
{
    if (s->job_flags == 0) {
        lp2p__host_defer(s->host, &s->job, stream_job, s, 0);
        s->jobs++;
    }
    s->job_flags |= flag;
}

static struct lp2p_stream *stream_new(struct lp2p_conn *c, int inbound)
{
    struct lp2p_stream *s = lp2p__calloc(1, sizeof(*s));
    if (s == NULL) {
        return NULL;
    }
    s->host = c->host;
    s->conn = c;
    s->peer = c->peer;
    s->inbound = inbound;
    s->phase = LP2P_STREAM_NEGOTIATING;
    lp2p__buf_init(&s->rbuf);
    lp2p__list_init(&s->wq);
    lp2p__list_init(&s->wdone);
    uv_timer_init(c->host->loop, &s->timer);
    s->timer.data = s;
    lp2p__host_ref(c->host);
    lp2p__list_insert_tail(&c->streams, &s->link);
    if (inbound) {
        c->n_in_streams++;
    } else {
        c->n_out_streams++;
    }
    lp2p__conn_touch(c);
    return s;
}

/* Give `n` received bytes' window credit back to the peer. */
static void credit(struct lp2p_stream *s, size_t n)
{
    if (s->ys != NULL && n > 0) {
        lp2p__yamux_stream_consume(s->ys, n);
        lp2p__conn_kick(s->conn);
    }
}

/* A write request is done: its callback runs from the stream's job. One
 * without a callback has nothing to say, and needs no job (nor the loop
 * turn that a job costs a caller running the loop with UV_RUN_ONCE). */
static int write_done(struct lp2p_stream *s, struct lp2p_swreq *w,
                      int status)
{
    lp2p__list_remove(&w->link);
    if (w->cb == NULL) {
        lp2p__free(w);
        return 0;
    }
    w->status = status;
    lp2p__list_insert_tail(&s->wdone, &w->link);
    return 1;
}

static void fail_writes(struct lp2p_stream *s, int status)
{
    int any = 0;
    while (!lp2p__list_empty(&s->wq)) {
        struct lp2p_swreq *w =
            LP2P__CONTAINER_OF(s->wq.next, struct lp2p_swreq, link);
        any |= write_done(s, w, status);
    }
    s->wq_bytes = 0;
    if (any) {
        schedule(s, JOB_WDONE);
    }
}

/* The stream died (reset either way, timeout, connection lost). */
static void stream_kill(struct lp2p_stream *s, int status, int send_rst)
{
    if (s->reset != 0) {
        return;
    }
    s->reset = status;
    if (s->ys != NULL && send_rst) {
        lp2p__yamux_stream_reset(s->ys);
    }
    release_ys(s);
    unlink_conn(s);
    uv_timer_stop(&s->timer);
    s->timer_purpose = TIMER_NONE;
    fail_writes(s, status);
    if (s->phase == LP2P_STREAM_NEGOTIATING) {
        if (!s->inbound && s->open_cb != NULL) {
            schedule(s, JOB_OPENFAIL);
        } else {
            destroy(s);
        }
        return;
    }
    lp2p__buf_free(&s->rbuf);
    if (s->rstatus == 0 || s->rstatus == LP2P_EEOF) {
        s->rstatus = status;
    }
    if (s->reading && !s->rdone && !s->app_closed) {
        schedule(s, JOB_DELIVER);
    }
    check_done(s);
}

/* An application-closed stream goes once nothing is left to do. */
static void check_done(struct lp2p_stream *s)
{
    if (!s->app_closed || s->destroyed) {
        return;
    }
    if (s->ys == NULL || (s->fin_sent && s->remote_fin &&
                          lp2p__list_empty(&s->wq))) {
        destroy(s);
    }
}

/* ---------------------------------------------------------------------
 * Timers
 */

static void on_timer(uv_timer_t *t)
{
    struct lp2p_stream *s = t->data;
    int purpose = s->timer_purpose;
    s->timer_purpose = TIMER_NONE;
    switch (purpose) {
    case TIMER_NEGOTIATE:
        LOG_DEBUG(MOD, "protocol negotiation timed out");
        stream_kill(s, LP2P_ETIMEDOUT, 1);
        break;
    case TIMER_DEADLINE:
        stream_kill(s, LP2P_ETIMEDOUT, 1);
        break;
    case TIMER_LINGER:
        stream_kill(s, LP2P_ETIMEDOUT, 1);
        check_done(s);
        break;
    default:
        break;
    }
}

static void timer_set(struct lp2p_stream *s, int purpose, uint64_t ms)
{
    s->timer_purpose = purpose;
    uv_timer_start(&s->timer, on_timer, ms, 0);
}

/* ---------------------------------------------------------------------
 * Writing
 */

static void pump(struct lp2p_stream *s)
{
    int rv;
    while (!lp2p__list_empty(&s->wq) && s->ys != NULL) {
        struct lp2p_swreq *w =
            LP2P__CONTAINER_OF(s->wq.next, struct lp2p_swreq, link);
        size_t acc = 0;
        rv = lp2p__yamux_stream_write(s->ys, w->buf + w->off,
                                      w->len - w->off, &acc);
        if (rv != 0) {
            stream_kill(s, rv == LP2P_ECLOSED || rv == LP2P_ERESET ? rv
                                                             : LP2P_ECLOSED,
                 rv != LP2P_ERESET);
            return;
        }
        w->off += acc;
        s->wq_bytes -= acc;
        if (w->off < w->len) {
            break; /* send queue full: wait for WRITABLE */
        }
        if (write_done(s, w, 0)) {
            schedule(s, JOB_WDONE);
        }
    }
    if (lp2p__list_empty(&s->wq) && s->fin_wanted && !s->fin_sent &&
        s->ys != NULL) {
        lp2p__yamux_stream_close(s->ys);
        s->fin_sent = 1;
    }
    lp2p__conn_kick(s->conn);
    check_done(s);
}

int lp2p_stream_write(struct lp2p_stream *s, const uint8_t *buf, size_t len,
                      lp2p_stream_write_cb cb, void *data)
{
    struct lp2p_swreq *w;
    if (s == NULL || (buf == NULL && len > 0)) {
        return LP2P_EINVAL;
    }
    if (s->reset != 0 || s->fin_wanted || s->app_closed || s->ys == NULL ||
        s->phase != LP2P_STREAM_OPEN) {
        return LP2P_ESTATE;
    }
    if (cb == NULL && lp2p__list_empty(&s->wq)) {
        /* Nothing to call back: hand the bytes to Yamux (which copies
         * what its window takes) without a request; queue the rest. */
        size_t acc = 0;
        int rv = lp2p__yamux_stream_write(s->ys, buf, len, &acc);
        if (rv != 0) {
            stream_kill(s, rv == LP2P_ECLOSED || rv == LP2P_ERESET
                               ? rv : LP2P_ECLOSED,
                        rv != LP2P_ERESET);
            return 0; /* as a queued write that failed: nobody to tell */
        }
        buf += acc;
        len -= acc;
        if (len == 0) {
            lp2p__conn_kick(s->conn);
            return 0;
        }
    }
    w = lp2p__calloc(1, sizeof(*w));
    if (w == NULL) {
        return LP2P_ENOMEM;
    }
    w->buf = buf;
    w->len = len;
    w->cb = cb;
    w->data = data;
    lp2p__list_insert_tail(&s->wq, &w->link);
    s->wq_bytes += len;
    pump(s);
    return 0;
}

int lp2p_stream_writev(struct lp2p_stream *s, const struct lp2p_iovec *bufs,
                       size_t n, lp2p_stream_write_cb cb, void *data)
{
    struct lp2p__list reqs, *q;
    size_t i;
    if (s == NULL || bufs == NULL || n == 0) {
        return LP2P_EINVAL;
    }
    for (i = 0; i < n; i++) {
        if (bufs[i].base == NULL && bufs[i].len > 0) {
            return LP2P_EINVAL;
        }
    }
    if (s->reset != 0 || s->fin_wanted || s->app_closed || s->ys == NULL ||
        s->phase != LP2P_STREAM_OPEN) {
        return LP2P_ESTATE;
    }
    /* All requests first, so that a failed allocation queues nothing; only
     * the last one carries the callback (writes complete in order). */
    lp2p__list_init(&reqs);
    for (i = 0; i < n; i++) {
        struct lp2p_swreq *w = lp2p__calloc(1, sizeof(*w));
        if (w == NULL) {
            while (!lp2p__list_empty(&reqs)) {
                q = lp2p__list_first(&reqs);
                lp2p__list_remove(q);
                lp2p__free(LP2P__CONTAINER_OF(q, struct lp2p_swreq, link));
            }
            return LP2P_ENOMEM;
        }
        w->buf = bufs[i].base;
        w->len = bufs[i].len;
        if (i == n - 1) {
            w->cb = cb;
            w->data = data;
        }
        lp2p__list_insert_tail(&reqs, &w->link);
    }
    while (!lp2p__list_empty(&reqs)) {
        struct lp2p_swreq *w;
        q = lp2p__list_first(&reqs);
        w = LP2P__CONTAINER_OF(q, struct lp2p_swreq, link);
        lp2p__list_remove(q);
        lp2p__list_insert_tail(&s->wq, &w->link);
        s->wq_bytes += w->len;
    }
    pump(s);
    return 0;
}

size_t lp2p_stream_write_queue_size(const struct lp2p_stream *s)
{
    return s->wq_bytes;
}

int lp2p_stream_close_write(struct lp2p_stream *s)
{
    if (s == NULL) {
        return LP2P_EINVAL;
    }
    if (s->reset != 0 || s->fin_wanted || s->phase != LP2P_STREAM_OPEN) {
        return LP2P_ESTATE;
    }
    s->fin_wanted = 1;
    pump(s);
    return 0;
}

void lp2p_stream_reset(struct lp2p_stream *s)
{
    if (s == NULL || s->reset != 0) {
        return;
    }
    s->rdone = 1; /* no read callback after a local reset */
    stream_kill(s, LP2P_ECANCELED, 1);
}

int lp2p_stream_set_deadline(struct lp2p_stream *s, uint64_t ms)
{
    if (s == NULL) {
        return LP2P_EINVAL;
    }
    if (s->reset != 0 || s->app_closed || s->phase != LP2P_STREAM_OPEN) {
        return LP2P_ESTATE;
    }
    if (ms == 0) {
        uv_timer_stop(&s->timer);
        s->timer_purpose = TIMER_NONE;
        return 0;
    }
    timer_set(s, TIMER_DEADLINE, ms);
    return 0;
}

void lp2p_stream_close(struct lp2p_stream *s, lp2p_stream_close_cb cb,
                       void *data)
{
    if (s == NULL || s->app_closed) {
        return;
    }
    s->app_closed = 1;
    s->close_cb = cb;
    s->close_data = data;
    s->reading = 0;
    s->read_cb = NULL;
    credit(s, s->rbuf.len);
    lp2p__buf_free(&s->rbuf);
    if (s->reset == 0 && s->ys != NULL) {
        s->fin_wanted = 1;
        timer_set(s, TIMER_LINGER, s->host->cfg.negotiate_timeout_ms);
        pump(s);
    } else {
        uv_timer_stop(&s->timer);
    }
    check_done(s);
}

/* ---------------------------------------------------------------------
 * Reading
 */

static void deliver(struct lp2p_stream *s)
{
    while (s->reading && !s->app_closed && s->phase == LP2P_STREAM_OPEN) {
        if (s->rbuf.len > 0) {
            size_t n;
            uint8_t *d = lp2p__buf_detach(&s->rbuf, &n);
            s->read_cb(s, 0, d, n);
            lp2p__free(d);
            credit(s, n);
            continue;
        }
        if (s->rstatus != 0 && !s->rdone) {
            s->rdone = 1;
            s->reading = 0;
            s->read_cb(s, s->rstatus, NULL, 0);
        }
        break;
    }
}

int lp2p_stream_read_start(struct lp2p_stream *s, lp2p_stream_read_cb cb)
{
    if (s == NULL || cb == NULL) {
        return LP2P_EINVAL;
    }
    if (s->app_closed || s->rdone || s->phase != LP2P_STREAM_OPEN) {
        return LP2P_ESTATE;
    }
    s->read_cb = cb;
    s->reading = 1;
    if (s->rbuf.len > 0 || s->rstatus != 0) {
        schedule(s, JOB_DELIVER);
    }
    return 0;
}

void lp2p_stream_read_stop(struct lp2p_stream *s)
{
    if (s != NULL) {
        s->reading = 0;
    }
}

/* ---------------------------------------------------------------------
 * Negotiation
 */

static int mss_write(struct lp2p_stream *s, struct lp2p_buf *out)
{
    size_t acc = 0;
    int rv;
    if (out->len == 0) {
        return 0;
    }
    rv = lp2p__yamux_stream_write(s->ys, out->data, out->len, &acc);
    if (rv == 0 && acc != out->len) {
        rv = LP2P_ENOMEM; /* a fresh stream's queue always has room */
    }
    lp2p__conn_kick(s->conn);
    return rv;
}

static int match_cb(void *ctx, const char *proto, size_t len)
{
    struct lp2p_stream *s = ctx;
    (void)len;
    return lp2p__host_match(s->host, proto) != NULL;
}

static void negotiated(struct lp2p_stream *s)
{
    const char *sel = lp2p__mss_selected(s->mss);
    s->protocol = lp2p__strdup(sel != NULL ? sel : "");
    lp2p__free(s->mss);
    s->mss = NULL;
    uv_timer_stop(&s->timer);
    s->timer_purpose = TIMER_NONE;
    if (s->protocol == NULL) {
        stream_kill(s, LP2P_ENOMEM, 1);
        return;
    }
    s->phase = LP2P_STREAM_OPEN;
    if (s->inbound) {
        const struct lp2p_handler *h = lp2p__host_match(s->host, s->protocol);
        if (h == NULL) {
            stream_kill(s, LP2P_ENOPROTO, 1);
            return;
        }
        if (s->conn != NULL) {
            s->conn->negotiated = 1; /* a protocol we serve: in use */
        }
        s->owned = 1;
        h->handler(s, h->data);
    } else {
        lp2p_stream_open_cb cb = s->open_cb;
        s->open_cb = NULL;
        if (s->conn != NULL) {
            s->conn->negotiated = 1; /* we use it */
        }
        s->owned = 1;
        cb(s, 0, s->open_data);
    }
}

void lp2p__stream_on_data(struct lp2p_stream *s, const uint8_t *p, size_t n)
{
    if (s->destroyed || s->app_closed || s->reset != 0) {
        if (s->ys != NULL) {
            lp2p__yamux_stream_consume(s->ys, n);
        }
        return;
    }
    if (s->phase == LP2P_STREAM_NEGOTIATING) {
        struct lp2p_buf out;
        int k, rv;
        lp2p__buf_init(&out);
        k = lp2p__mss_feed(s->mss, p, n, &out);
        rv = k < 0 ? k : mss_write(s, &out);
        lp2p__buf_free(&out);
        if (rv != 0) {
            if (rv != LP2P_ENOPROTO) {
                LOG_DEBUG(MOD, "stream negotiation failed: %s",
                          lp2p_strerror(rv));
            }
            stream_kill(s, rv, 1);
            return;
        }
        lp2p__yamux_stream_consume(s->ys, (size_t)k);
        if (!lp2p__mss_done(s->mss)) {
            return;
        }
        p += k;
        n -= (size_t)k;
        if (n > 0 && lp2p__buf_append(&s->rbuf, p, n) != 0) {
            stream_kill(s, LP2P_ENOMEM, 1);
            return;
        }
        negotiated(s);
        return;
    }
    if (s->reading && s->rbuf.len == 0 && s->rstatus == 0) {
        s->read_cb(s, 0, p, n);
        credit(s, n);
        return;
    }
    if (lp2p__buf_append(&s->rbuf, p, n) != 0) {
        stream_kill(s, LP2P_ENOMEM, 1);
    }
}

void lp2p__stream_on_fin(struct lp2p_stream *s)
{
    s->remote_fin = 1;
    if (s->destroyed || s->reset != 0) {
        return;
    }
    if (s->phase == LP2P_STREAM_NEGOTIATING) {
        stream_kill(s, LP2P_ECLOSED, 1);
        return;
    }
    if (s->rstatus == 0) {
        s->rstatus = LP2P_EEOF;
    }
    if (!s->app_closed) {
        deliver(s);
    }
    check_done(s);
}

void lp2p__stream_on_reset(struct lp2p_stream *s)
{
    stream_kill(s, LP2P_ERESET, 0);
}

void lp2p__stream_on_writable(struct lp2p_stream *s)
{
    if (!s->destroyed && s->reset == 0) {
        pump(s);
    }
}

void lp2p__stream_conn_lost(struct lp2p_stream *s, int status)
{
    /* The session is about to be freed with its streams: drop the handle
     * without touching it. */
    s->ys = NULL;
    unlink_conn(s);
    stream_kill(s, status, 0);
    if (s->app_closed || !s->owned) {
        if (s->phase != LP2P_STREAM_NEGOTIATING || s->inbound) {
            destroy(s);
        }
    }
}

void lp2p__stream_inbound(struct lp2p_conn *c, struct lp2p__yamux_stream *ys)
{
    struct lp2p_stream *s;
    struct lp2p_buf out;
    int rv;
    if (c->host->closing) {
        lp2p__yamux_stream_release(ys); /* refuses it */
        return;
    }
    s = stream_new(c, 1);
    if (s == NULL) {
        lp2p__yamux_stream_release(ys);
        return;
    }
    s->ys = ys;
    lp2p__yamux_stream_set_user(ys, s);
    s->mss = lp2p__malloc(sizeof(*s->mss));
    if (s->mss == NULL) {
        stream_kill(s, LP2P_ENOMEM, 1);
        return;
    }
    rv = lp2p__mss_init_responder(s->mss, NULL, 0, match_cb, s);
    lp2p__buf_init(&out);
    if (rv == 0) {
        rv = lp2p__yamux_stream_accept(ys);
    }
    if (rv == 0) {
        rv = lp2p__mss_start(s->mss, &out);
    }
    if (rv == 0) {
        rv = mss_write(s, &out);
    }
    lp2p__buf_free(&out);
    if (rv != 0) {
        stream_kill(s, rv, 1);
        return;
    }
    timer_set(s, TIMER_NEGOTIATE, c->host->cfg.negotiate_timeout_ms);
}

/* ---------------------------------------------------------------------
 * Opening
 */

struct open_req {
    struct lp2p_host *host;
    struct lp2p_peer_id peer;
    char **protos;
    size_t n;
    lp2p_stream_open_cb cb;
    void *data;
};

static void open_req_free(struct open_req *r)
{
    size_t i;
    if (r->protos != NULL) {
        for (i = 0; i < r->n; i++) {
            lp2p__free(r->protos[i]);
        }
        lp2p__free(r->protos);
    }
    lp2p__free(r);
}

/* Start the stream on `c`; on success the request's protocols move to
 * the stream. */
static int open_on_conn(struct lp2p_conn *c, struct open_req *r)
{
    struct lp2p_stream *s;
    struct lp2p_buf out;
    int rv;
    s = stream_new(c, 0);
    if (s == NULL) {
        return LP2P_ENOMEM;
    }
    s->mss = lp2p__malloc(sizeof(*s->mss));
    if (s->mss == NULL) {
        rv = LP2P_ENOMEM;
        goto err;
    }
    rv = lp2p__yamux_stream_open(c->sec->ymx, &s->ys);
    if (rv != 0) {
        s->ys = NULL;
        goto err;
    }
    lp2p__yamux_stream_set_user(s->ys, s);
    rv = lp2p__mss_init_initiator(s->mss, (const char *const *)r->protos,
                                  r->n);
    if (rv != 0) {
        goto err;
    }
    /* The stream owns the request from here: should anything kill it
     * while the proposal goes out, the failure reaches open_cb from a
     * deferred job. */
    s->protos = r->protos;
    s->n_protos = r->n;
    r->protos = NULL;
    s->open_cb = r->cb;
    s->open_data = r->data;
    lp2p__buf_init(&out);
    rv = lp2p__mss_start(s->mss, &out);
    if (rv == 0) {
        rv = mss_write(s, &out);
    }
    lp2p__buf_free(&out);
    if (rv != 0) {
        goto err;
    }
    if (s->reset == 0) {
        timer_set(s, TIMER_NEGOTIATE, c->host->cfg.negotiate_timeout_ms);
    }
    return 0;
err:
    s->open_cb = NULL; /* the error is returned instead */
    if (s->reset == 0) {
        s->reset = rv;
    }
    destroy(s);
    return rv;
}

static void on_connected(struct lp2p_host *host, int status,
                         const struct lp2p_peer_id *peer, void *data)
{
    struct open_req *r = data;
    struct lp2p_conn *c;
    (void)peer;
    if (status == 0) {
        c = lp2p__host_find_conn(host, &r->peer);
        status = c == NULL ? LP2P_ECLOSED : open_on_conn(c, r);
    }
    if (status != 0) {
        r->cb(NULL, status, r->data);
    }
    open_req_free(r);
}

int lp2p_stream_open(struct lp2p_host *host, const struct lp2p_peer_id *peer,
                     const char *const *protocols, size_t n,
                     lp2p_stream_open_cb cb, void *data)
{
    struct open_req *r;
    struct lp2p_conn *c;
    size_t i;
    int rv;
    if (host == NULL || peer == NULL || protocols == NULL || n == 0 ||
        cb == NULL) {
        return LP2P_EINVAL;
    }
    if (host->closing) {
        return LP2P_ESHUTDOWN;
    }
    for (i = 0; i < n; i++) {
        size_t len = protocols[i] != NULL ? strlen(protocols[i]) : 0;
        if (len == 0 || len > LP2P_PROTOCOL_MAX ||
            strchr(protocols[i], '\n') != NULL) {
            return LP2P_EINVAL;
        }
    }
    r = lp2p__calloc(1, sizeof(*r));
    if (r == NULL) {
        return LP2P_ENOMEM;
    }
    r->host = host;
    r->peer = *peer;
    r->cb = cb;
    r->data = data;
    r->protos = lp2p__calloc(n, sizeof(*r->protos));
    if (r->protos == NULL) {
        open_req_free(r);
        return LP2P_ENOMEM;
    }
    r->n = n;
    for (i = 0; i < n; i++) {
        r->protos[i] = lp2p__strdup(protocols[i]);
        if (r->protos[i] == NULL) {
            open_req_free(r);
            return LP2P_ENOMEM;
        }
    }
    c = lp2p__host_find_conn(host, peer);
    if (c != NULL) {
        rv = open_on_conn(c, r);
        open_req_free(r);
        return rv;
    }
    rv = lp2p_host_connect_peer(host, peer, on_connected, r);
    if (rv != 0) {
        open_req_free(r);
    }
    return rv;
}

/* ---------------------------------------------------------------------
 * Accessors
 */
const char *lp2p_stream_protocol(const struct lp2p_stream *s)
{
    return s->protocol;
}

const struct lp2p_peer_id *lp2p_stream_peer(const struct lp2p_stream *s)
{
    return &s->peer;
}

struct lp2p_host *lp2p_stream_host(const struct lp2p_stream *s)
{
    return s->host;
}

int lp2p_stream_inbound(const struct lp2p_stream *s)
{
    return s->inbound;
}

void lp2p_stream_set_data(struct lp2p_stream *s, void *data)
{
    s->user = data;
}

void *lp2p_stream_data(const struct lp2p_stream *s)
{
    return s->user;
}
