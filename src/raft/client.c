/*
 * The client library (p2praft.h, "Client"): one connection to a node's
 * API, over its unix socket or P2PRAFT_CLIENT_PROTOCOL on libp2p, with
 * pipelined requests.
 *
 * Threads: the client owns a loop thread (created with SIGPIPE blocked)
 * that holds the connection (apiconn.c) and runs every callback. Other
 * threads submit: p2praft_client_send() validates and encodes the request
 * in the caller's thread, gives it an id, puts it on `submitted` under
 * `mu` and wakes the loop (uv_async), which moves it to `queue` and sends
 * it once fewer than max_inflight requests are unanswered (`inflight`).
 * p2praft_client_call() waits on its own condition variable for the
 * result that the callback hands it.
 *
 * Open: connect (uv_pipe_connect, or a libp2p host of our own that dials
 * the node and opens the protocol), send HELLO, and report to the thread
 * blocked in p2praft_client_open() once the node answered it. A node that
 * does not list our peer ID resets the stream before the answer; one over
 * its connection limit sends the BUSY refusal; one of another API version
 * answers in its own format: each is a clear error at open, before any
 * request was sent.
 *
 * Outcomes: a request never sent fails with ECLOSED / ECANCELED / ELIMIT
 * (not applied). Once its frame was handed to the connection, only an
 * answer tells: a lost connection gives EUNKNOWN (decided only once the
 * connection has closed and every write reported: a unix-socket write
 * that failed delivered no whole frame, so that request is ECLOSED), the
 * timeout ETIMEDOUT, a close ESHUTDOWN. A request that timed out stays in
 * `inflight` (its id and the node's slot stay taken) until its answer
 * comes, which is then dropped.
 *
 * Close: p2praft_client_close() shuts the submissions and wakes the loop,
 * which fails what is left, closes the connection, the host and its
 * handles; the loop then runs dry and the thread ends.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "raft/api.h"
#include "raft/apiconn.h"
#include "util/byteorder.h"
#include "util/heap.h"
#include "util/list.h"
#include "util/log.h"
#include "util/thread.h"

#define MODULE "client"
#define TICK_MS 20
#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_INFLIGHT 64

enum { ST_CONNECTING, ST_READY, ST_DEAD };

struct creq {
    struct lp2p__list link; /* in submitted, queue or inflight */
    uint32_t id;
    uint8_t op;
    uint8_t *frame; /* until handed to the connection */
    size_t flen;
    p2praft_result_cb cb; /* NULL: internal (UNWATCH from unwatch()) */
    p2praft_watch_cb wcb; /* a watch */
    void *ctx;
    uint64_t deadline;
    bool sent;         /* handed to the connection */
    bool write_failed; /* its write reported an error */
    bool done;         /* its callback ran (timed out): drop the answer */
    bool started;      /* a watch that answered STARTED */
    bool unwatched;    /* an UNWATCH was sent for it */
};

struct p2praft_client {
    uv_loop_t loop;
    pthread_t thread;
    unsigned timeout_ms, max_inflight;
    char *api_path, *node;
    struct lp2p_key key;
    bool has_key;

    pthread_mutex_t mu; /* guards the fields down to errmsg */
    pthread_cond_t cv;
    struct lp2p__list submitted;
    uint32_t next_id;
    bool shut; /* p2praft_client_close() */
    bool dead; /* the connection is lost */
    bool opened;
    int open_rv;
    char errmsg[300];

    uv_async_t async;
    uv_timer_t timer;
    bool handles_ok, handles_closing;
    struct lp2p__list queue, inflight;
    unsigned n_inflight;
    int state;
    uint64_t connect_deadline;
    uint32_t hello_id;
    struct p2praft__apiconn conn;
    bool conn_ok;  /* conn set up (must be closed) */
    bool conn_up;  /* conn connected and not closing */
    int lost_rv;   /* why the connection ended */
    char lost_msg[300];
    uv_connect_t connect_req;
    struct lp2p_host *host;
    struct lp2p_peer_id node_pid;
    char self[LP2P_PEER_ID_STRMAX];
    char peer[LP2P_PEER_ID_STRMAX];
    bool closing;
};

/* ---- results ------------------------------------------------------------- */

void p2praft_result_free(struct p2praft_result *res)
{
    size_t i;
    if (res == NULL) {
        return;
    }
    for (i = 0; i < res->n_entries; i++) {
        lp2p__free(res->entries[i].key);
        lp2p__free(res->entries[i].value);
    }
    lp2p__free(res->entries);
    lp2p__free(res->data);
    lp2p__free(res);
}

static uint8_t *dup_bytes(const void *p, size_t len)
{
    uint8_t *d = lp2p__malloc(len + 1);
    if (d != NULL) {
        if (len > 0) {
            memcpy(d, p, len);
        }
        d[len] = 0;
    }
    return d;
}

static int add_entry(void *ctx, const uint8_t *key, size_t klen,
                     const uint8_t *val, size_t vlen)
{
    struct p2praft_result *r = ctx;
    struct p2praft_kv *e = &r->entries[r->n_entries];
    e->key = (char *)dup_bytes(key, klen);
    e->value = dup_bytes(val, vlen);
    e->len = vlen;
    r->n_entries++; /* freed by p2praft_result_free, even half-built */
    return e->key == NULL || e->value == NULL ? LP2P_ENOMEM : 0;
}

/* A result (lp2p heap), or NULL when out of memory. An LS page is parsed
 * into entries; a page that does not parse turns the result into an
 * EPROTO error. */
static struct p2praft_result *result_new(uint8_t op, uint32_t id, int rv,
                                         int status, uint64_t index,
                                         const void *data, size_t len)
{
    struct p2praft_result *r = lp2p__calloc(1, sizeof(*r));
    uint32_t count = 0;
    bool more = false;
    if (r == NULL) {
        return NULL;
    }
    r->id = id;
    r->rv = rv;
    r->status = status;
    r->index = index;
    if (op == P2PRAFT_API_LS && status == P2PRAFT_API_OK) {
        int prv = p2praft__api_ls_parse(data, len, &more, &count, NULL, NULL);
        if (prv == 0) {
            r->entries = lp2p__calloc(count > 0 ? count : 1,
                                      sizeof(*r->entries));
            if (r->entries == NULL) {
                goto oom;
            }
            prv = p2praft__api_ls_parse(data, len, &more, &count, add_entry,
                                        r);
            if (prv == LP2P_ENOMEM) {
                goto oom;
            }
        }
        if (prv != 0) {
            r->rv = LP2P_EPROTO;
            r->status = -1;
            data = "garbled LS page from the node";
            len = strlen(data);
        }
        r->more = more;
        if (r->rv == 0) {
            data = NULL;
            len = 0;
        }
    }
    r->data = dup_bytes(data, len);
    if (r->data == NULL) {
        goto oom;
    }
    r->len = len;
    r->outcome_unknown = p2praft_outcome_unknown(r->rv);
    return r;
oom:
    p2praft_result_free(r);
    return NULL;
}

/* ---- completing requests ------------------------------------------------- */

struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int rv;
    struct p2praft_result *res;
};

static void wait_cb(void *ctx, const struct p2praft_result *res)
{
    (void)ctx;
    (void)res; /* never called: deliver() hands the result over instead */
}

static void creq_free(struct creq *q)
{
    lp2p__list_remove(&q->link);
    lp2p__free(q->frame);
    lp2p__free(q);
}

/* Run q's callback once with the result (rv, status...). Watches get END. */
static void deliver(struct creq *q, int rv, int status, uint64_t index,
                    const void *data, size_t len)
{
    struct p2praft_result *res, fallback;
    if (q->done) {
        return;
    }
    q->done = true;
    if (q->cb == NULL && q->wcb == NULL) {
        return;
    }
    res = result_new(q->op, q->id, rv, status, index, data, len);
    if (res == NULL) {
        /* Out of memory for the result itself: still say what is known. */
        memset(&fallback, 0, sizeof(fallback));
        fallback.id = q->id;
        fallback.rv = rv == 0 && !p2praft__api_is_write(q->op) ? LP2P_ENOMEM
                                                              : rv;
        fallback.status = status;
        fallback.index = index;
        fallback.data = (uint8_t *)"out of memory";
        fallback.len = strlen("out of memory");
        fallback.outcome_unknown = p2praft_outcome_unknown(fallback.rv);
    }
    if (q->cb == wait_cb) {
        struct waiter *w = q->ctx;
        pthread_mutex_lock(&w->mu);
        w->res = res;
        w->rv = res != NULL ? res->rv : fallback.rv;
        w->done = true;
        pthread_cond_signal(&w->cv);
        pthread_mutex_unlock(&w->mu);
        return;
    }
    if (q->wcb != NULL) {
        struct p2praft_watch_event ev;
        memset(&ev, 0, sizeof(ev));
        ev.watch = q->id;
        ev.kind = P2PRAFT_WATCH_END;
        ev.index = index;
        ev.end = res != NULL ? res : &fallback;
        q->wcb(q->ctx, &ev);
    } else {
        q->cb(q->ctx, res != NULL ? res : &fallback);
    }
    p2praft_result_free(res);
}

/* deliver() with a printf message as data. */
static void deliver_msg(struct creq *q, int rv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void deliver_msg(struct creq *q, int rv, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    deliver(q, rv, -1, 0, msg, strlen(msg));
}

/* ---- sending ------------------------------------------------------------- */

static void pump(struct p2praft_client *c)
{
    struct lp2p__list *l;
    while (c->state == ST_READY && c->conn_up &&
           c->n_inflight < c->max_inflight &&
           (l = lp2p__list_first(&c->queue)) != NULL) {
        struct creq *q = LP2P__CONTAINER_OF(l, struct creq, link);
        uint8_t *f = q->frame;
        q->frame = NULL;
        lp2p__list_remove(&q->link);
        lp2p__list_insert_tail(&c->inflight, &q->link);
        c->n_inflight++;
        q->sent = true;
        if (p2praft__apiconn_send(&c->conn, f, q->flen, false, 0, q) != 0) {
            /* The frame is freed; it never went out. */
            c->n_inflight--;
            deliver_msg(q, LP2P_ENOMEM, "not sent: out of memory");
            creq_free(q);
        }
    }
}

/* Take what other threads submitted. */
static void take_submitted(struct p2praft_client *c)
{
    struct lp2p__list got;
    pthread_mutex_lock(&c->mu);
    lp2p__list_take(&got, &c->submitted);
    pthread_mutex_unlock(&c->mu);
    while (!lp2p__list_empty(&got)) {
        struct lp2p__list *l = lp2p__list_first(&got);
        struct creq *q = LP2P__CONTAINER_OF(l, struct creq, link);
        /* Its time starts when the loop takes it (loop time is the loop
         * thread's). */
        q->deadline = uv_now(&c->loop) + c->timeout_ms;
        lp2p__list_remove(l);
        lp2p__list_insert_tail(&c->queue, l);
    }
}

/* ---- the connection ------------------------------------------------------ */

static void open_done(struct p2praft_client *c, int rv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void teardown(struct p2praft_client *c);

static void open_done(struct p2praft_client *c, int rv, const char *fmt, ...)
{
    va_list ap;
    pthread_mutex_lock(&c->mu);
    if (c->opened) {
        pthread_mutex_unlock(&c->mu);
        return;
    }
    c->open_rv = rv;
    if (fmt != NULL) {
        va_start(ap, fmt);
        vsnprintf(c->errmsg, sizeof(c->errmsg), fmt, ap);
        va_end(ap);
    }
    c->opened = true;
    if (rv != 0) {
        c->dead = true;
    }
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (rv == 0) {
        c->state = ST_READY;
        pump(c);
    } else {
        c->state = ST_DEAD;
        teardown(c);
    }
}

/* The connection is lost (or closing): no more submissions; what is in
 * flight is failed once the connection has closed (lost()). */
static void conn_lost(struct p2praft_client *c, int rv, const char *msg)
{
    if (!c->conn_up) {
        return;
    }
    c->conn_up = false;
    c->lost_rv = rv;
    snprintf(c->lost_msg, sizeof(c->lost_msg), "%s", msg);
    pthread_mutex_lock(&c->mu);
    c->dead = true;
    pthread_mutex_unlock(&c->mu);
    if (c->state == ST_CONNECTING) {
        open_done(c, rv, "%s", msg);
        return;
    }
    c->state = ST_DEAD;
    p2praft__apiconn_close(&c->conn, false);
}

/* Fail every request (the connection closed and every write reported,
 * or the client is closing: `closing`). */
static void fail_all(struct p2praft_client *c, bool closing)
{
    struct lp2p__list *l, *next;
    take_submitted(c);
    LP2P__LIST_FOREACH_SAFE(l, next, &c->queue) {
        struct creq *q = LP2P__CONTAINER_OF(l, struct creq, link);
        if (closing) {
            deliver_msg(q, LP2P_ECANCELED, "not sent: the client closed");
        } else {
            deliver_msg(q, LP2P_ECLOSED, "not sent: %s", c->lost_msg);
        }
        creq_free(q);
    }
    LP2P__LIST_FOREACH_SAFE(l, next, &c->inflight) {
        struct creq *q = LP2P__CONTAINER_OF(l, struct creq, link);
        bool arrived = q->sent && (!q->write_failed ||
                                   c->conn.failed_write_may_arrive);
        if (q->wcb != NULL) {
            deliver_msg(q, closing ? LP2P_ECANCELED : LP2P_ECLOSED,
                        "watch ended: %s",
                        closing ? "the client closed" : c->lost_msg);
        } else if (!arrived) {
            deliver_msg(q, LP2P_ECLOSED, "not sent: %s", c->lost_msg);
        } else if (closing) {
            deliver_msg(q, LP2P_ESHUTDOWN,
                        "the client closed before the answer: the outcome "
                        "is unknown");
        } else {
            deliver_msg(q, LP2P_EUNKNOWN,
                        "%s after the request was sent: the outcome is "
                        "unknown",
                        c->lost_msg);
        }
        creq_free(q);
    }
    c->n_inflight = 0;
}

static struct creq *find_inflight(struct p2praft_client *c, uint32_t id)
{
    struct lp2p__list *l, *next;
    LP2P__LIST_FOREACH_SAFE(l, next, &c->inflight) {
        struct creq *q = LP2P__CONTAINER_OF(l, struct creq, link);
        if (q->id == id) {
            return q;
        }
    }
    return NULL;
}

/* Ask the node to end watch q (it timed out before it started, or the
 * user ended it). */
static void send_unwatch(struct p2praft_client *c, struct creq *w)
{
    struct p2praft__api_req r;
    struct creq *q;
    if (w->unwatched) {
        return;
    }
    w->unwatched = true;
    q = lp2p__calloc(1, sizeof(*q));
    if (q == NULL) {
        return;
    }
    memset(&r, 0, sizeof(r));
    r.op = P2PRAFT_API_UNWATCH;
    r.target = w->id;
    q->op = r.op;
    lp2p__list_init(&q->link);
    pthread_mutex_lock(&c->mu);
    if (c->next_id == 0) {
        c->next_id = 1;
    }
    r.id = q->id = c->next_id++;
    pthread_mutex_unlock(&c->mu);
    q->frame = p2praft__api_request_encode(&r, &q->flen);
    if (q->frame == NULL) {
        lp2p__free(q);
        return;
    }
    q->deadline = uv_now(&c->loop) + c->timeout_ms;
    lp2p__list_insert_tail(&c->queue, &q->link);
    pump(c);
}

static void on_event(struct p2praft_client *c,
                     const struct p2praft__api_resp *a)
{
    struct creq *q = find_inflight(c, a->id);
    struct p2praft__api_event ev;
    struct p2praft_watch_event out;
    char key[P2PRAFT_KV_KEY_MAX + 1];
    if (q == NULL || q->wcb == NULL) {
        return; /* ended on our side already */
    }
    if (q->done) {
        send_unwatch(c, q); /* it timed out before it started */
        return;
    }
    if (p2praft__api_event_parse(a, &ev) != 0) {
        conn_lost(c, LP2P_EPROTO, "garbled watch event from the node");
        return;
    }
    memset(&out, 0, sizeof(out));
    out.watch = q->id;
    out.kind = (enum p2praft_watch_kind)ev.kind;
    out.index = a->index;
    if (ev.key != NULL) {
        memcpy(key, ev.key, ev.klen);
        key[ev.klen] = '\0';
        out.key = key;
    }
    out.value = ev.val;
    out.len = ev.vlen;
    out.dropped = ev.count;
    if (ev.kind == P2PRAFT_WATCH_STARTED) {
        q->started = true;
    }
    q->wcb(q->ctx, &out);
}

static void on_frame(struct p2praft__apiconn *conn, const uint8_t *body,
                     size_t len)
{
    struct p2praft_client *c = conn->data;
    struct p2praft__api_resp a;
    struct creq *q;
    char sbuf[32];
    if (p2praft__api_response_parse(&a, body, len) != 0) {
        conn_lost(c, LP2P_EPROTO, "garbled answer from the node");
        return;
    }
    if (c->state == ST_CONNECTING) {
        if (a.version == P2PRAFT__API_VERSION_1) {
            if (a.status == P2PRAFT_API_BUSY) {
                open_done(c, LP2P_ELIMIT, "the node refused the connection: "
                                          "%.*s",
                          (int)a.len, (const char *)a.payload);
            } else {
                open_done(c, LP2P_EPROTO,
                          "the node speaks API version 1 (an older p2praft "
                          "release) and this client version %d: %.*s",
                          P2PRAFT__API_VERSION, (int)a.len,
                          (const char *)a.payload);
            }
            return;
        }
        if (a.type != P2PRAFT_API_ANSWER || a.id != c->hello_id) {
            conn_lost(c, LP2P_EPROTO, "unexpected frame before the greeting");
            return;
        }
        if (a.status != P2PRAFT_API_OK) {
            open_done(c, p2praft__api_status_code(a.status),
                      "the node answered the greeting %s: %.*s",
                      p2praft__api_status_name(a.status, sbuf, sizeof(sbuf)),
                      (int)a.len, (const char *)a.payload);
            return;
        }
        snprintf(c->peer, sizeof(c->peer), "%.*s", (int)a.len,
                 (const char *)a.payload);
        open_done(c, 0, NULL);
        return;
    }
    if (a.version != P2PRAFT__API_VERSION) {
        conn_lost(c, LP2P_EPROTO, "answer in another API version");
        return;
    }
    if (a.type == P2PRAFT_API_EVENT) {
        on_event(c, &a);
        return;
    }
    q = find_inflight(c, a.id);
    if (q == NULL) {
        LOG_DEBUG(MODULE, "answer to unknown request %" PRIu32, a.id);
        return;
    }
    c->n_inflight--;
    deliver(q, p2praft__api_status_code(a.status), a.status, a.index,
            a.payload, a.len);
    creq_free(q);
    pump(c);
}

static void on_end(struct p2praft__apiconn *conn, int status)
{
    struct p2praft_client *c = conn->data;
    char msg[300];
    if (status == LP2P_ETOOBIG) {
        snprintf(msg, sizeof(msg), "the node sent a frame of %" PRIu32
                                   " bytes, over the limit",
                 conn->too_big);
        conn_lost(c, LP2P_EPROTO, msg);
        return;
    }
    if (c->state == ST_CONNECTING && c->node != NULL) {
        snprintf(msg, sizeof(msg),
                 "%s closed the stream before answering (%s): does it list "
                 "this client's peer ID %s (--client, --clients-file)?",
                 c->node, lp2p_strerror(status), c->self);
        conn_lost(c, status == LP2P_ERESET ? LP2P_EDENIED : LP2P_ECLOSED, msg);
        return;
    } else {
        snprintf(msg, sizeof(msg), "the node closed the connection (%s)",
                 lp2p_strerror(status));
    }
    conn_lost(c, LP2P_ECLOSED, msg);
}

static void on_sent(struct p2praft__apiconn *conn, int kind, void *ptr,
                    size_t len, int status)
{
    struct creq *q = ptr;
    (void)conn;
    (void)kind;
    (void)len;
    if (q != NULL && status != 0) {
        q->write_failed = true;
    }
}

static void after_conn(struct p2praft_client *c);

static void on_closed(struct p2praft__apiconn *conn)
{
    struct p2praft_client *c = conn->data;
    c->conn_ok = false;
    after_conn(c);
}

static const struct p2praft__apiconn_ops conn_ops = {on_frame, on_end, on_sent,
                                                     on_closed};

/* Connected: greet the node. */
static void connected(struct p2praft_client *c)
{
    struct p2praft__api_req r;
    uint8_t *f;
    size_t len = 0;
    c->conn_up = true;
    p2praft__apiconn_read_start(&c->conn);
    memset(&r, 0, sizeof(r));
    r.op = P2PRAFT_API_HELLO;
    r.id = c->hello_id;
    f = p2praft__api_request_encode(&r, &len);
    if (f == NULL ||
        p2praft__apiconn_send(&c->conn, f, len, false, 0, NULL) != 0) {
        conn_lost(c, LP2P_ENOMEM, "out of memory");
    }
}

static void pipe_connected(uv_connect_t *req, int status)
{
    struct p2praft_client *c = req->data;
    char msg[300];
    if (c->closing || c->state != ST_CONNECTING) {
        return;
    }
    if (status != 0) {
        snprintf(msg, sizeof(msg),
                 "cannot connect to the node's API socket %s: %s (is "
                 "'p2praft node' running with this --api or --data-dir?)",
                 c->api_path, uv_strerror(status));
        open_done(c,
                  status == UV_ECONNREFUSED || status == UV_ENOENT
                      ? LP2P_ECONNREFUSED
                      : LP2P_EIO,
                  "%s", msg);
        return;
    }
    connected(c);
}

static void stream_opened(struct lp2p_stream *s, int status, void *data)
{
    struct p2praft_client *c = data;
    if (status != 0) {
        if (s != NULL) {
            lp2p_stream_close(s, NULL, NULL);
        }
        if (c->state == ST_CONNECTING && status == LP2P_ERESET) {
            /* The node takes the stream, then resets it at once when it
             * does not list our peer ID. */
            open_done(c, LP2P_EDENIED,
                      "%s reset the %s stream: does it list this client's "
                      "peer ID %s (--client, --clients-file)?",
                      c->node, P2PRAFT_CLIENT_PROTOCOL, c->self);
        } else if (c->state == ST_CONNECTING) {
            open_done(c, status,
                      "cannot open %s to %s: %s%s", P2PRAFT_CLIENT_PROTOCOL,
                      c->node, lp2p_strerror(status),
                      status == LP2P_ENOPROTO
                          ? " (the node does not serve remote clients: an "
                            "older p2praft?)"
                          : "");
        }
        return;
    }
    if (c->closing || c->state != ST_CONNECTING) {
        lp2p_stream_reset(s);
        lp2p_stream_close(s, NULL, NULL);
        return;
    }
    p2praft__apiconn_stream_init(&c->conn, s, &conn_ops, c);
    c->conn_ok = true;
    connected(c);
}

static int start_connect(struct p2praft_client *c)
{
    if (c->api_path != NULL) {
        int rv = p2praft__apiconn_pipe_init(&c->conn, &c->loop, &conn_ops, c);
        if (rv != 0) {
            open_done(c, LP2P_EIO, "uv_pipe_init: %s", uv_strerror(rv));
            return -1;
        }
        c->conn_ok = true;
        c->connect_req.data = c;
        uv_pipe_connect(&c->connect_req, &c->conn.pipe, c->api_path,
                        pipe_connected);
        return 0;
    } else {
        static const char *const protos[] = {P2PRAFT_CLIENT_PROTOCOL};
        struct lp2p_host_config hc;
        struct lp2p_multiaddr ma;
        char err[LP2P_ERRMSG_MAX] = "";
        int rv;
        lp2p_multiaddr_init(&ma);
        rv = lp2p_multiaddr_parse(&ma, c->node, err, sizeof(err));
        if (rv == 0 && lp2p_multiaddr_peer_id(&ma, &c->node_pid) != 0) {
            rv = LP2P_EINVAL;
            snprintf(err, sizeof(err), "it does not end in /p2p/<peer id>");
        }
        lp2p_multiaddr_free(&ma);
        if (rv != 0) {
            open_done(c, LP2P_EINVAL, "bad node address %s: %s", c->node,
                      err);
            return -1;
        }
        lp2p_host_config_init(&hc);
        hc.key = c->has_key ? &c->key : NULL;
        hc.idle_timeout_ms = UINT64_MAX; /* the stream is ours to close */
        rv = lp2p_host_new(&c->host, &c->loop, &hc);
        if (rv != 0) {
            open_done(c, rv, "cannot create a libp2p host: %s",
                      lp2p_strerror(rv));
            return -1;
        }
        lp2p_peer_id_to_string(lp2p_host_id(c->host), c->self,
                               sizeof(c->self));
        rv = lp2p_peerstore_add_addr(c->host, &c->node_pid, c->node,
                                     LP2P_TTL_PERMANENT);
        if (rv == 0) {
            rv = lp2p_stream_open(c->host, &c->node_pid, protos, 1,
                                  stream_opened, c);
        }
        if (rv != 0) {
            open_done(c, rv, "cannot reach %s: %s", c->node,
                      lp2p_strerror(rv));
            return -1;
        }
        return 0;
    }
}

/* ---- the loop ------------------------------------------------------------ */

static void tick_cb(uv_timer_t *t)
{
    struct p2praft_client *c = t->data;
    uint64_t now = uv_now(&c->loop);
    struct lp2p__list *l, *next;
    if (c->state == ST_CONNECTING) {
        if (now >= c->connect_deadline) {
            conn_lost(c, LP2P_ETIMEDOUT, "no answer from the node in time");
            if (c->state == ST_CONNECTING) {
                open_done(c, LP2P_ETIMEDOUT,
                          "no answer from the node within %u ms",
                          c->timeout_ms);
            }
        }
        return;
    }
    LP2P__LIST_FOREACH_SAFE(l, next, &c->queue) {
        struct creq *q = LP2P__CONTAINER_OF(l, struct creq, link);
        if (now >= q->deadline) {
            deliver_msg(q, LP2P_ELIMIT,
                        "not sent within %u ms: %u requests in flight on "
                        "this connection",
                        c->timeout_ms, c->n_inflight);
            creq_free(q);
        }
    }
    LP2P__LIST_FOREACH_SAFE(l, next, &c->inflight) {
        struct creq *q = LP2P__CONTAINER_OF(l, struct creq, link);
        if (!q->done && !q->started && now >= q->deadline) {
            if (q->wcb != NULL) {
                deliver_msg(q, LP2P_ETIMEDOUT,
                            "the watch did not start within %u ms",
                            c->timeout_ms);
                send_unwatch(c, q);
            } else {
                deliver_msg(q, LP2P_ETIMEDOUT,
                            "no answer within %u ms: the outcome is unknown",
                            c->timeout_ms);
            }
            /* It stays in flight until the node answers. */
        }
    }
}

static void handle_closed(uv_handle_t *h)
{
    (void)h;
}

/* The connection closed: fail what it held; when closing, go on with the
 * host and the handles. */
static void after_conn(struct p2praft_client *c)
{
    if (c->closing) {
        fail_all(c, true);
        if (c->host != NULL) {
            lp2p_host_close(c->host, NULL, NULL);
            c->host = NULL;
        }
        if (c->handles_ok && !c->handles_closing) {
            c->handles_closing = true;
            uv_close((uv_handle_t *)&c->async, handle_closed);
            uv_close((uv_handle_t *)&c->timer, handle_closed);
        }
        return;
    }
    fail_all(c, false);
}

/* Close everything (open failed, or p2praft_client_close()). */
static void teardown(struct p2praft_client *c)
{
    c->closing = true;
    if (c->conn_ok) {
        c->conn_up = false;
        p2praft__apiconn_close(&c->conn, false); /* after_conn follows */
        return;
    }
    after_conn(c);
}

static void async_cb(uv_async_t *h)
{
    struct p2praft_client *c = h->data;
    bool shut;
    pthread_mutex_lock(&c->mu);
    shut = c->shut;
    pthread_mutex_unlock(&c->mu);
    if (shut) {
        if (!c->closing) {
            teardown(c);
        }
        return;
    }
    take_submitted(c);
    if (c->state == ST_DEAD && !c->conn_ok) {
        fail_all(c, false);
        return;
    }
    pump(c);
}

static void *thread_main(void *arg)
{
    struct p2praft_client *c = arg;
    int rv;
    if (uv_async_init(&c->loop, &c->async, async_cb) != 0 ||
        uv_timer_init(&c->loop, &c->timer) != 0) {
        /* uv_async_init failing leaves nothing to close; the timer cannot
         * fail on a live loop. */
        open_done(c, LP2P_EIO, "uv_async_init failed");
        uv_run(&c->loop, UV_RUN_DEFAULT);
        return NULL;
    }
    c->async.data = c->timer.data = c;
    c->handles_ok = true;
    uv_update_time(&c->loop);
    c->connect_deadline = uv_now(&c->loop) + c->timeout_ms;
    uv_timer_start(&c->timer, tick_cb, TICK_MS, TICK_MS);
    rv = start_connect(c);
    (void)rv; /* a failure already reported and tore down */
    uv_run(&c->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* ---- API ----------------------------------------------------------------- */

void p2praft_client_config_init(struct p2praft_client_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->timeout_ms = DEFAULT_TIMEOUT_MS;
    cfg->max_inflight = DEFAULT_INFLIGHT;
}

static void client_free(struct p2praft_client *c)
{
    struct lp2p__list *l;
    while ((l = lp2p__list_first(&c->submitted)) != NULL) {
        creq_free(LP2P__CONTAINER_OF(l, struct creq, link));
    }
    lp2p__free(c->api_path);
    lp2p__free(c->node);
    lp2p_key_wipe(&c->key);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    lp2p__free(c);
}

int p2praft_client_open(struct p2praft_client **out,
                        const struct p2praft_client_config *cfg, char *errmsg,
                        size_t errmsg_len)
{
    struct p2praft_client *c;
    int rv;
    if (errmsg != NULL && errmsg_len > 0) {
        errmsg[0] = '\0';
    }
    if (out == NULL || cfg == NULL ||
        (cfg->api_path == NULL) == (cfg->node == NULL)) {
        if (errmsg != NULL) {
            snprintf(errmsg, errmsg_len,
                     "give a node's API socket or its multiaddr (one)");
        }
        return LP2P_EINVAL;
    }
    c = lp2p__calloc(1, sizeof(*c));
    if (c == NULL) {
        return LP2P_ENOMEM;
    }
    c->timeout_ms = cfg->timeout_ms != 0 ? cfg->timeout_ms : DEFAULT_TIMEOUT_MS;
    c->max_inflight = cfg->max_inflight != 0 ? cfg->max_inflight
                                             : DEFAULT_INFLIGHT;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    lp2p__list_init(&c->submitted);
    lp2p__list_init(&c->queue);
    lp2p__list_init(&c->inflight);
    c->hello_id = 1;
    c->next_id = 2;
    c->state = ST_CONNECTING;
    if (cfg->key != NULL) {
        c->key = *cfg->key;
        c->has_key = true;
    }
    c->api_path = cfg->api_path != NULL ? lp2p__strdup(cfg->api_path) : NULL;
    c->node = cfg->node != NULL ? lp2p__strdup(cfg->node) : NULL;
    if ((cfg->api_path != NULL && c->api_path == NULL) ||
        (cfg->node != NULL && c->node == NULL)) {
        client_free(c);
        return LP2P_ENOMEM;
    }
    if (uv_loop_init(&c->loop) != 0) {
        client_free(c);
        return LP2P_EIO;
    }
    /* SIGPIPE blocked: a node that went away is an error, never a signal. */
    rv = lp2p__thread_create(&c->thread, thread_main, c);
    if (rv != 0) {
        uv_loop_close(&c->loop);
        client_free(c);
        if (errmsg != NULL) {
            snprintf(errmsg, errmsg_len, "cannot create the client thread");
        }
        return LP2P_EIO;
    }
    pthread_mutex_lock(&c->mu);
    while (!c->opened) {
        pthread_cond_wait(&c->cv, &c->mu);
    }
    rv = c->open_rv;
    pthread_mutex_unlock(&c->mu);
    if (rv != 0) {
        if (errmsg != NULL) {
            snprintf(errmsg, errmsg_len, "%s", c->errmsg);
        }
        pthread_join(c->thread, NULL);
        uv_loop_close(&c->loop);
        client_free(c);
        return rv;
    }
    *out = c;
    return 0;
}

void p2praft_client_close(struct p2praft_client *c)
{
    if (c == NULL || pthread_equal(pthread_self(), c->thread)) {
        return;
    }
    pthread_mutex_lock(&c->mu);
    c->shut = true;
    pthread_mutex_unlock(&c->mu);
    uv_async_send(&c->async);
    pthread_join(c->thread, NULL);
    if (uv_loop_close(&c->loop) != 0) {
        LOG_WARN(MODULE, "client loop closed with handles still open");
    }
    client_free(c);
}

const char *p2praft_client_node_id(const struct p2praft_client *c)
{
    return c->peer;
}

/* Check `rq` and encode it with id 0 (patched by submit). */
static int encode(const struct p2praft_request *rq, struct creq *q)
{
    struct p2praft__api_req r;
    memset(&r, 0, sizeof(r));
    switch ((int)rq->op) {
    case P2PRAFT_API_GET:
    case P2PRAFT_API_SET:
    case P2PRAFT_API_DEL:
    case P2PRAFT_API_CAS:
        if (rq->key == NULL || rq->key[0] == '\0' ||
            strlen(rq->key) > P2PRAFT_KV_KEY_MAX) {
            return LP2P_EINVAL;
        }
        break;
    case P2PRAFT_API_LS:
        if ((rq->key != NULL && strlen(rq->key) > P2PRAFT_KV_KEY_MAX) ||
            (rq->after != NULL && strlen(rq->after) > P2PRAFT_KV_KEY_MAX)) {
            return LP2P_EINVAL;
        }
        break;
    case P2PRAFT_API_SNAPSHOT:
        /* the cursor of a paged backup, or NULL: the whole backup */
        if (rq->key != NULL && strlen(rq->key) > P2PRAFT_KV_KEY_MAX) {
            return LP2P_EINVAL;
        }
        break;
    case P2PRAFT_API_STATUS:
    case P2PRAFT_API_METRICS:
    case P2PRAFT_API_CLUSTER:
    case P2PRAFT_API_HEALTH:
    case P2PRAFT_API_SNAPSHOT_NOW:
    case P2PRAFT_API_PEERS:
        break;
    case P2PRAFT_API_PEER_ADD:
    case P2PRAFT_API_PEER_RM:
    case P2PRAFT_API_TRANSFER:
        /* the argument: a multiaddr, a peer ID (TRANSFER: may be empty) */
        if ((rq->key == NULL || rq->key[0] == '\0') &&
            rq->op != P2PRAFT_API_TRANSFER) {
            return LP2P_EINVAL;
        }
        if (rq->key != NULL && strlen(rq->key) > P2PRAFT_KV_KEY_MAX) {
            return LP2P_EINVAL;
        }
        break;
    default:
        return LP2P_EINVAL;
    }
    if ((rq->value == NULL && rq->len > 0) ||
        (rq->expected == NULL && rq->expected_len > 0) ||
        rq->len > P2PRAFT_KV_VALUE_MAX ||
        rq->expected_len > P2PRAFT_KV_VALUE_MAX) {
        return LP2P_EINVAL;
    }
    r.op = (uint8_t)rq->op;
    r.key = (char *)rq->key;
    if (rq->op == P2PRAFT_API_SET || rq->op == P2PRAFT_API_CAS) {
        r.val = (uint8_t *)rq->value;
        r.vlen = rq->len;
    }
    if (rq->op == P2PRAFT_API_CAS) {
        r.exp = (uint8_t *)rq->expected;
        r.elen = rq->expected_len;
    }
    if ((rq->op == P2PRAFT_API_GET || rq->op == P2PRAFT_API_LS) &&
        rq->consistent) {
        r.flags |= P2PRAFT__API_CONSISTENT;
    }
    if (rq->op == P2PRAFT_API_LS) {
        r.after = (char *)rq->after;
        r.limit = rq->limit;
        if (rq->keys_only) {
            r.flags |= P2PRAFT__API_KEYS_ONLY;
        }
    }
    q->op = r.op;
    q->frame = p2praft__api_request_encode(&r, &q->flen);
    return q->frame != NULL ? 0 : LP2P_ENOMEM;
}

/* Hand q (encoded with id 0) to the loop; its id is set here. */
static int submit(struct p2praft_client *c, struct creq *q)
{
    int rv = 0;
    pthread_mutex_lock(&c->mu);
    if (c->shut) {
        rv = LP2P_ESHUTDOWN;
    } else if (c->dead) {
        rv = LP2P_ECLOSED;
    } else {
        if (c->next_id == 0) {
            c->next_id = 1;
        }
        q->id = c->next_id++;
        lp2p__put32(q->frame + P2PRAFT__API_PREFIX + P2PRAFT__API_REQ_ID,
                    q->id);
        lp2p__list_insert_tail(&c->submitted, &q->link);
    }
    pthread_mutex_unlock(&c->mu);
    if (rv == 0) {
        uv_async_send(&c->async);
    }
    return rv;
}

static struct creq *creq_new(void)
{
    struct creq *q = lp2p__calloc(1, sizeof(*q));
    if (q != NULL) {
        lp2p__list_init(&q->link);
    }
    return q;
}

int p2praft_client_send(struct p2praft_client *c,
                        const struct p2praft_request *rq, p2praft_result_cb cb,
                        void *ctx, uint32_t *id)
{
    struct creq *q;
    int rv;
    if (c == NULL || rq == NULL || cb == NULL) {
        return LP2P_EINVAL;
    }
    q = creq_new();
    if (q == NULL) {
        return LP2P_ENOMEM;
    }
    rv = encode(rq, q);
    if (rv == 0) {
        q->cb = cb;
        q->ctx = ctx;
        rv = submit(c, q);
    }
    if (rv != 0) {
        creq_free(q);
        return rv;
    }
    if (id != NULL) {
        *id = q->id;
    }
    return 0;
}

int p2praft_client_call(struct p2praft_client *c,
                        const struct p2praft_request *rq,
                        struct p2praft_result **res)
{
    struct waiter w;
    struct creq *q;
    int rv;
    if (res == NULL) {
        return LP2P_EINVAL;
    }
    *res = NULL;
    if (c == NULL || rq == NULL || pthread_equal(pthread_self(), c->thread)) {
        return LP2P_EINVAL;
    }
    q = creq_new();
    if (q == NULL) {
        return LP2P_ENOMEM;
    }
    rv = encode(rq, q);
    if (rv != 0) {
        creq_free(q);
        return rv;
    }
    memset(&w, 0, sizeof(w));
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    q->cb = wait_cb;
    q->ctx = &w;
    rv = submit(c, q);
    if (rv != 0) {
        creq_free(q);
    } else {
        pthread_mutex_lock(&w.mu);
        while (!w.done) {
            pthread_cond_wait(&w.cv, &w.mu);
        }
        pthread_mutex_unlock(&w.mu);
        rv = w.rv;
        *res = w.res;
    }
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
    return rv;
}

int p2praft_client_watch(struct p2praft_client *c, const char *prefix,
                         p2praft_watch_cb cb, void *ctx, uint32_t *id)
{
    struct p2praft__api_req r;
    struct creq *q;
    int rv;
    if (c == NULL || cb == NULL ||
        (prefix != NULL && strlen(prefix) > P2PRAFT_KV_KEY_MAX)) {
        return LP2P_EINVAL;
    }
    q = creq_new();
    if (q == NULL) {
        return LP2P_ENOMEM;
    }
    memset(&r, 0, sizeof(r));
    r.op = P2PRAFT_API_WATCH;
    r.key = (char *)prefix;
    q->op = r.op;
    q->frame = p2praft__api_request_encode(&r, &q->flen);
    if (q->frame == NULL) {
        creq_free(q);
        return LP2P_ENOMEM;
    }
    q->wcb = cb;
    q->ctx = ctx;
    rv = submit(c, q);
    if (rv != 0) {
        creq_free(q);
        return rv;
    }
    if (id != NULL) {
        *id = q->id;
    }
    return 0;
}

int p2praft_client_unwatch(struct p2praft_client *c, uint32_t id)
{
    struct p2praft__api_req r;
    struct creq *q;
    int rv;
    if (c == NULL || id == 0) {
        return LP2P_EINVAL;
    }
    q = creq_new();
    if (q == NULL) {
        return LP2P_ENOMEM;
    }
    memset(&r, 0, sizeof(r));
    r.op = P2PRAFT_API_UNWATCH;
    r.target = id;
    q->op = r.op;
    q->frame = p2praft__api_request_encode(&r, &q->flen);
    if (q->frame == NULL) {
        creq_free(q);
        return LP2P_ENOMEM;
    }
    rv = submit(c, q);
    if (rv != 0) {
        creq_free(q);
    }
    return rv;
}
