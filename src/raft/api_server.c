/*
 * The unix-socket API server. Each connection (struct conn) carries any
 * number of request frames, one at a time: reading stops while a request
 * runs and resumes once its answer is written. The connection owns its
 * current request through the req owner interface; when it closes first,
 * it detaches the request, whose answer is then dropped.
 *
 * Failure modes: a frame over P2PRAFT_API_FRAME_MAX or a malformed body is
 * answered BAD REQUEST and the connection closed; a client that hangs up
 * mid-request only loses its answer; a connection idle for cfg.api_idle_ms
 * is closed (and freed: its slot returns); beyond cfg.api_max_conns a new
 * connection is answered BUSY before anything is read from it, then closed,
 * so that its client knows nothing was done (a bare close after the client
 * sent a write would look like an unknown outcome). Refusals are counted
 * and logged at a bounded rate.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "raft/api.h"
#include "raft/api_server.h"
#include "raft/forward.h"
#include "raft/node.h"
#include "raft/req.h"
#include "util/buf.h"
#include "util/heap.h"
#include "util/log.h"

#define MODULE "node"
#define BACKLOG 128

struct conn {
    uv_pipe_t pipe;
    struct lp2p__list link; /* in node->api.conns */
    struct p2praft_node *node;
    struct lp2p_buf in;
    struct p2praft__req *cur;
    uint8_t *out; /* response being written */
    uv_write_t wreq;
    uint64_t last;
    bool writing, close_after, closing;
    char rbuf[65536];
};

/* A connection refused for lack of room: it gets the BUSY frame (static
 * storage) and is closed. */
struct refusal {
    uv_pipe_t pipe;
    uv_write_t wreq;
};

static void refusal_closed(uv_handle_t *h)
{
    lp2p__free(h->data);
}

static void refusal_written(uv_write_t *w, int status)
{
    struct refusal *f = w->data;
    (void)status;
    uv_close((uv_handle_t *)&f->pipe, refusal_closed);
}

/* Accept the pending connection on `server` and answer it BUSY. */
static void refuse(struct p2praft_node *n, uv_stream_t *server)
{
    struct refusal *f = lp2p__calloc(1, sizeof(*f));
    uint64_t since;
    size_t len;
    uv_buf_t b;
    if (f == NULL || uv_pipe_init(&n->loop, &f->pipe, 0) != 0) {
        /* No memory even for that: the connection stays in the backlog
         * (libuv takes no other until it is accepted). */
        lp2p__free(f);
        return;
    }
    f->pipe.data = f;
    f->wreq.data = f;
    if (uv_accept(server, (uv_stream_t *)&f->pipe) != 0) {
        uv_close((uv_handle_t *)&f->pipe, refusal_closed);
        return;
    }
    if (lp2p__ratelog_hit(&n->api.refused, uv_now(&n->loop),
                          P2PRAFT__REFUSAL_LOG_MS, &since)) {
        LOG_WARN(MODULE,
                 "API socket: %u connections open, refused %" PRIu64
                 " more with BUSY (%" PRIu64 " in all; --api-max-conns)",
                 n->cfg.api_max_conns, since, n->api.refused.total);
    }
    b.base = (char *)p2praft__api_busy_frame(&len);
    b.len = len;
    if (uv_write(&f->wreq, (uv_stream_t *)&f->pipe, &b, 1,
                 refusal_written) != 0) {
        uv_close((uv_handle_t *)&f->pipe, refusal_closed);
    }
}

void p2praft__api_server_init(struct p2praft__api_server *s)
{
    memset(s, 0, sizeof(*s));
    lp2p__list_init(&s->conns);
}

static void conn_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    if (c->cur != NULL) {
        p2praft__req_detach(c->cur);
    }
    lp2p__list_remove(&c->link);
    lp2p__buf_free(&c->in);
    lp2p__free(c->out);
    lp2p__free(c);
}

static void conn_close(struct conn *c)
{
    if (!c->closing) {
        c->closing = true;
        /* The slot returns now, not after the close callback: a client
         * that reconnects as soon as it saw its connection end finds it
         * free. Closing handles are few and short-lived. */
        c->node->api.n_conns--;
        if (c->cur != NULL) {
            p2praft__req_detach(c->cur);
            c->cur = NULL;
        }
        uv_close((uv_handle_t *)&c->pipe, conn_closed);
    }
}

static void conn_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void conn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);
static void conn_parse(struct conn *c);

static void conn_written(uv_write_t *w, int status)
{
    struct conn *c = w->data;
    c->writing = false;
    lp2p__free(c->out);
    c->out = NULL;
    if (c->closing) {
        return;
    }
    if (status != 0 || c->close_after) {
        conn_close(c);
        return;
    }
    c->last = uv_now(&c->node->loop);
    conn_parse(c);
    if (!c->closing && c->cur == NULL && !c->writing) {
        uv_read_start((uv_stream_t *)&c->pipe, conn_alloc, conn_read);
    }
}

static void conn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct conn *c = h->data;
    (void)hint;
    buf->base = c->rbuf;
    buf->len = sizeof(c->rbuf);
}

/* Write `frame` (owned; NULL: out of memory, close instead). */
static void conn_send(struct conn *c, uint8_t *frame, size_t len)
{
    uv_buf_t b;
    if (c->closing) {
        lp2p__free(frame);
        return;
    }
    if (frame == NULL) {
        conn_close(c);
        return;
    }
    c->out = frame;
    b = uv_buf_init((char *)frame, (unsigned)len);
    c->wreq.data = c;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->pipe, &b, 1, conn_written) !=
        0) {
        lp2p__free(c->out);
        c->out = NULL;
        conn_close(c);
        return;
    }
    c->writing = true;
}

/* The req owner interface: the current request answered. */
static void conn_reply(void *owner, uint8_t *frame, size_t len)
{
    struct conn *c = owner;
    c->cur = NULL;
    conn_send(c, frame, len);
}

static const struct p2praft__req_owner_ops conn_owner = {conn_reply};

/* A bad request: answer with BAD REQUEST, then close. */
static void conn_reject(struct conn *c, const char *msg)
{
    size_t len = 0;
    uint8_t *f =
        p2praft__api_response_encode(P2PRAFT_API_BADREQ, 0, msg, strlen(msg),
                                     &len);
    uv_read_stop((uv_stream_t *)&c->pipe);
    c->close_after = true;
    conn_send(c, f, len);
}

/* Take one complete request from c->in, if any. */
static void conn_parse(struct conn *c)
{
    uint32_t flen = 0;
    struct p2praft__req *r;
    char err[256];
    int rv = p2praft__api_frame(c->in.data, c->in.len, &flen);
    if (rv == LP2P_ETOOBIG) {
        snprintf(err, sizeof(err),
                 "request of %" PRIu32 " bytes exceeds the limit of %d", flen,
                 P2PRAFT_API_FRAME_MAX);
        conn_reject(c, err);
        return;
    }
    if (rv != 0) {
        return;
    }
    uv_read_stop((uv_stream_t *)&c->pipe);
    r = p2praft__req_new(c->node, &conn_owner, c);
    if (r == NULL) {
        conn_reject(c, "out of memory");
        return;
    }
    if (p2praft__api_request_parse(&r->q, c->in.data + P2PRAFT__API_PREFIX,
                                   flen, err, sizeof(err)) != 0 ||
        r->q.op == P2PRAFT_API_BARRIER) {
        if (r->q.op == P2PRAFT_API_BARRIER) {
            snprintf(err, sizeof(err), "BARRIER is for the forward protocol");
        }
        p2praft__req_detach(r);
        p2praft__req_reply(r, P2PRAFT_API_BADREQ, NULL, 0);
        conn_reject(c, err);
        return;
    }
    lp2p__buf_consume(&c->in, P2PRAFT__API_PREFIX + (size_t)flen);
    c->cur = r;
    p2praft__req_step(r);
}

static void conn_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    if (nread == 0) {
        return;
    }
    c->last = uv_now(&c->node->loop);
    if (lp2p__buf_append(&c->in, buf->base, (size_t)nread) != 0) {
        conn_close(c);
        return;
    }
    conn_parse(c);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct p2praft_node *n = server->data;
    struct conn *c;
    if (status != 0) {
        return;
    }
    if (n->api.n_conns >= n->cfg.api_max_conns) {
        refuse(n, server);
        return;
    }
    c = lp2p__calloc(1, sizeof(*c));
    if (c == NULL || uv_pipe_init(&n->loop, &c->pipe, 0) != 0) {
        lp2p__free(c);
        refuse(n, server);
        return;
    }
    c->node = n;
    c->pipe.data = c;
    lp2p__buf_init(&c->in);
    c->last = uv_now(&n->loop);
    lp2p__list_insert_head(&n->api.conns, &c->link);
    n->api.n_conns++;
    if (uv_accept(server, (uv_stream_t *)&c->pipe) != 0) {
        conn_close(c);
        return;
    }
    uv_read_start((uv_stream_t *)&c->pipe, conn_alloc, conn_read);
}

int p2praft__api_server_start(struct p2praft_node *n, char *err,
                              size_t errlen)
{
    struct p2praft__api_server *s = &n->api;
    struct stat sb;
    int rv;
    if (n->api_path[0] == '\0') {
        return 0;
    }
    if (strlen(n->api_path) >= 100) {
        snprintf(err, errlen, "API socket path too long: %s", n->api_path);
        return LP2P_EINVAL;
    }
    /* A socket left by a node that died; never remove anything else. */
    if (lstat(n->api_path, &sb) == 0 && S_ISSOCK(sb.st_mode)) {
        unlink(n->api_path);
    }
    uv_pipe_init(&n->loop, &s->pipe, 0);
    s->pipe.data = n;
    s->ok = true;
    rv = uv_pipe_bind(&s->pipe, n->api_path);
    if (rv == 0) {
        rv = uv_listen((uv_stream_t *)&s->pipe, BACKLOG, on_connection);
    }
    if (rv != 0) {
        snprintf(err, errlen, "cannot serve the API on %s: %s", n->api_path,
                 uv_strerror(rv));
        return LP2P_EIO;
    }
    chmod(n->api_path, 0600);
    return 0;
}

void p2praft__api_server_tick(struct p2praft_node *n, uint64_t now)
{
    struct lp2p__list *q, *next;
    LP2P__LIST_FOREACH_SAFE(q, next, &n->api.conns) {
        struct conn *c = LP2P__CONTAINER_OF(q, struct conn, link);
        if (!c->closing && c->cur == NULL && !c->writing &&
            now - c->last >= n->cfg.api_idle_ms) {
            conn_close(c);
        }
    }
}

static void listener_closed(uv_handle_t *h)
{
    (void)h;
}

void p2praft__api_server_close(struct p2praft_node *n)
{
    struct lp2p__list *q, *next;
    if (n->api.ok) {
        uv_close((uv_handle_t *)&n->api.pipe, listener_closed);
        n->api.ok = false;
        unlink(n->api_path);
    }
    LP2P__LIST_FOREACH_SAFE(q, next, &n->api.conns) {
        conn_close(LP2P__CONTAINER_OF(q, struct conn, link));
    }
}
