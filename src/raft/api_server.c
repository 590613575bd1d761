/*
 * The unix-socket API server: it listens on the node's socket and hands
 * each connection to a session (session.c), which reads its requests,
 * runs them, several at once, and writes their answers.
 *
 * Failure modes: beyond cfg.api_max_conns a new connection is answered
 * BUSY before anything is read from it, then closed, so that its client
 * knows nothing was done (a bare close after the client sent a write would
 * look like an unknown outcome); refusals are counted and logged at a
 * bounded rate. A connection idle for cfg.api_idle_ms is closed (and
 * freed: its slot returns). The rest (bad frames, bounds on requests in
 * flight, clients that vanish) is the session's.
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
#include "raft/session.h"
#include "util/buf.h"
#include "util/heap.h"
#include "util/log.h"

#define MODULE "node"
#define BACKLOG 128

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

/* The session owner interface: the slot returns as soon as the close
 * starts, not after it: a client that reconnects as soon as it saw its
 * connection end finds it free. Closing handles are few and short-lived. */
static void session_closing(struct p2praft__session *s)
{
    s->node->api.n_conns--;
}

static void session_freed(struct p2praft__session *s)
{
    lp2p__list_remove(&s->link);
}

static const struct p2praft__session_owner owner = {session_closing,
                                                    session_freed};

static void on_connection(uv_stream_t *server, int status)
{
    struct p2praft_node *n = server->data;
    struct p2praft__session *s;
    if (status != 0) {
        return;
    }
    if (n->api.n_conns >= n->cfg.api_max_conns) {
        refuse(n, server);
        return;
    }
    s = p2praft__session_new(n, &owner, NULL);
    if (s == NULL) {
        refuse(n, server);
        return;
    }
    if (p2praft__apiconn_pipe_init(&s->conn, &n->loop,
                                   &p2praft__session_conn_ops, s) != 0) {
        lp2p__free(s);
        refuse(n, server);
        return;
    }
    lp2p__list_insert_head(&n->api.conns, &s->link);
    n->api.n_conns++;
    if (uv_accept(server, (uv_stream_t *)&s->conn.pipe) != 0) {
        p2praft__session_close(s, false);
        return;
    }
    p2praft__session_start(s);
}

int p2praft__api_server_start(struct p2praft_node *n, char *err,
                              size_t errlen)
{
    struct p2praft__api_server *s = &n->api;
    int rv;
    if (n->api_path[0] == '\0') {
        return 0;
    }
    if (strlen(n->api_path) >= 100) {
        snprintf(err, errlen, "API socket path too long: %s", n->api_path);
        return LP2P_EINVAL;
    }
    /* Only a stale socket goes; anything else there stops the start. */
    rv = lp2p__sockpath_prepare(n->api_path, err, errlen);
    if (rv != 0) {
        return rv;
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
    lp2p__sockpath_bound(&s->path, n->api_path);
    return 0;
}

void p2praft__api_server_tick(struct p2praft_node *n, uint64_t now)
{
    struct lp2p__list *q, *next;
    LP2P__LIST_FOREACH_SAFE(q, next, &n->api.conns) {
        p2praft__session_tick(
            LP2P__CONTAINER_OF(q, struct p2praft__session, link), now);
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
        lp2p__sockpath_remove(&n->api.path, n->api_path);
    }
    LP2P__LIST_FOREACH_SAFE(q, next, &n->api.conns) {
        p2praft__session_close(
            LP2P__CONTAINER_OF(q, struct p2praft__session, link), false);
    }
}
