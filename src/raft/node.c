/*
 * p2praft_node: one member of the replicated key-value store.
 *
 * Everything runs on the node's loop thread: the libp2p host, the raft
 * transport over it, libraft with raft_uv storage, the OpLog, the unix
 * socket API and the forward protocol. Other threads talk to it through
 * p2praft_node_call(), which queues a request (mutex + uv_async) and waits.
 *
 * A request (struct req) comes from an API connection, a forward stream or
 * another thread, and goes through these steps:
 *   GET            read the local state, answer.
 *   GET consistent barrier: on the leader commit a NOP op (not
 *                  raft_barrier(), whose libraft 0.22 entry carries
 *                  uninitialised bytes), elsewhere forward BARRIER to the
 *                  leader; then wait until the local applied index reaches
 *                  the barrier's, then read locally.
 *   SET/DEL/CAS    on the leader commit the op (p2praft_consensus_commit_op)
 *                  and read its outcome from the state copy of the commit
 *                  callback; elsewhere forward it to the leader, then wait
 *                  until the local applied index reaches the commit's.
 * Forwarding opens one libp2p stream per request to the leader that raft
 * names. When there is no leader yet, the leader cannot be reached, or the
 * peer answers NOT LEADER, nothing was committed and the request is retried
 * every RETRY_MS until its deadline. When a forwarded write is lost after
 * it was sent (stream reset, peer died), or a commit times out, the outcome
 * is unknown and the client is told so (TIMED OUT / ERROR), never "ok".
 *
 * A request is freed once it has answered AND nothing it started (commit,
 * barrier, stream open, stream write, stream close) is still pending:
 * `pending` counts those. Its owner (connection, stream, waiter) may go away
 * earlier; the answer is then dropped.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <raft.h>
#include <raft/uv.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "raft/api.h"
#include "raft/kv.h"
#include "util/buf.h"
#include "util/heap.h"
#include "util/log.h"

#define MODULE "node"
#define RETRY_MS 40
#define TICK_MS 20
#define CONN_IDLE_MS 30000
#define MAX_CONNS 64
#define MAX_FWD_IN 256

enum origin { ORIGIN_CONN = 1, ORIGIN_FWD, ORIGIN_THREAD };
enum phase {
    PH_NEW = 0,
    PH_RETRY,   /* waiting for retry_at */
    PH_BUSY,    /* commit, barrier or forward in flight */
    PH_APPLIED, /* waiting for the local applied index to reach `index` */
    PH_DONE
};

struct node_conn;
struct fwd_in;
struct waiter;

struct req {
    struct req *prev, *next;
    struct p2praft_node *node;
    enum origin origin;
    void *owner; /* conn, fwd_in or waiter; NULL once gone */
    struct p2praft__api_req q;
    bool local_only; /* came over the forward protocol: never forward */
    enum phase phase;
    uint64_t deadline, retry_at;
    uint64_t index;
    uint8_t result; /* response status once known */
    unsigned pending;
    /* forwarding */
    struct lp2p_stream *fwd;
    uint8_t *fwd_out;
    struct lp2p_buf fwd_in;
};

struct node_conn {
    uv_pipe_t pipe;
    struct node_conn *prev, *next;
    struct p2praft_node *node;
    struct lp2p_buf in;
    struct req *cur;
    uint8_t *out; /* response being written */
    uv_write_t wreq;
    uint64_t last;
    bool writing, close_after, closing;
    char rbuf[65536];
};

struct fwd_in {
    struct fwd_in *prev, *next;
    struct p2praft_node *node;
    struct lp2p_stream *stream;
    struct lp2p_buf in;
    struct req *cur;
    uint8_t *out;
    bool writing, closed;
};

struct waiter {
    struct waiter *next;
    uint8_t *body;
    size_t len;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int rv;
    uint8_t *resp;
    size_t resp_len;
};

struct p2praft_node {
    uv_loop_t loop;
    pthread_t thread;
    struct p2praft_node_config cfg;
    struct lp2p_key key;
    char **listen, **peers;
    char *data_dir, *api_path;
    char self[LP2P_PEER_ID_STRMAX];
    raft_id self_id;

    struct lp2p_host *host;
    struct raft_io io;
    struct raft raft;
    struct p2praft_consensus *c;
    struct p2praft_actor *actor;
    bool host_ok, io_ok, raft_ok, raft_started;
    uint64_t restored_at_boot;

    uv_pipe_t api;
    bool api_ok;
    uv_async_t async;
    uv_timer_t tick;
    uv_check_t check;
    bool handles_ok;

    struct req *reqs;
    struct node_conn *conns;
    unsigned n_conns;
    struct fwd_in *fwds;
    unsigned n_fwds;
    uint64_t forwarded, served_fwd;

    pthread_mutex_t mu; /* guards the fields below */
    pthread_cond_t cv;
    struct waiter *xhead, *xtail;
    bool stop, stopping, started, failed;
    int start_rv;
    char errmsg[256];
};

static void req_step(struct req *r);
static void req_reply(struct req *r, uint8_t status, const void *payload,
                      size_t len);
static void req_maybe_free(struct req *r);

/* ---- encoding helpers ---------------------------------------------------- */

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

static void put64(uint8_t *p, uint64_t v)
{
    int i;
    for (i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    int i;
    for (i = 0; i < 8; i++) {
        v = v << 8 | p[i];
    }
    return v;
}

static int append_field(struct lp2p_buf *b, const void *p, size_t len)
{
    uint8_t hdr[4];
    int rv;
    put32(hdr, (uint32_t)len);
    rv = lp2p__buf_append(b, hdr, 4);
    if (rv == 0 && len > 0) {
        rv = lp2p__buf_append(b, p, len);
    }
    return rv;
}

/* A request frame (length prefix included) for `r`, or NULL. */
static uint8_t *encode_request(const struct req *r, uint8_t op, size_t *len)
{
    struct lp2p_buf b;
    uint8_t hdr[7] = {0, 0, 0, 0, 1, op,
                      op == P2PRAFT_API_GET ? r->q.flags : 0};
    int rv;
    lp2p__buf_init(&b);
    rv = lp2p__buf_append(&b, hdr, sizeof(hdr));
    if (rv == 0 && op != P2PRAFT_API_BARRIER && op != P2PRAFT_API_STATUS) {
        rv = append_field(&b, r->q.key, strlen(r->q.key));
        if (rv == 0 && op == P2PRAFT_API_CAS) {
            rv = append_field(&b, r->q.exp, r->q.elen);
        }
        if (rv == 0 && (op == P2PRAFT_API_SET || op == P2PRAFT_API_CAS)) {
            rv = append_field(&b, r->q.val, r->q.vlen);
        }
    }
    if (rv != 0) {
        lp2p__buf_free(&b);
        return NULL;
    }
    put32(b.data, (uint32_t)(b.len - 4));
    return lp2p__buf_detach(&b, len);
}

/* A response frame (length prefix included), or NULL. */
static uint8_t *encode_response(uint8_t status, uint64_t index,
                                const void *payload, size_t plen, size_t *len)
{
    uint8_t *f = lp2p__malloc(4 + 10 + plen);
    if (f == NULL) {
        return NULL;
    }
    put32(f, (uint32_t)(10 + plen));
    f[4] = 1;
    f[5] = status;
    put64(f + 6, index);
    if (plen > 0) {
        memcpy(f + 14, payload, plen);
    }
    *len = 14 + plen;
    return f;
}

/* ---- requests ----------------------------------------------------------- */

static struct req *req_new(struct p2praft_node *n, enum origin origin,
                           void *owner)
{
    struct req *r = lp2p__calloc(1, sizeof(*r));
    if (r == NULL) {
        return NULL;
    }
    r->node = n;
    r->origin = origin;
    r->owner = owner;
    lp2p__buf_init(&r->fwd_in);
    uv_update_time(&n->loop);
    r->deadline = uv_now(&n->loop) + n->cfg.timeout_ms;
    r->next = n->reqs;
    if (n->reqs != NULL) {
        n->reqs->prev = r;
    }
    n->reqs = r;
    return r;
}

static void req_maybe_free(struct req *r)
{
    struct p2praft_node *n = r->node;
    if (r->phase != PH_DONE || r->pending > 0) {
        return;
    }
    if (r->prev != NULL) {
        r->prev->next = r->next;
    } else {
        n->reqs = r->next;
    }
    if (r->next != NULL) {
        r->next->prev = r->prev;
    }
    p2praft__api_req_release(&r->q);
    lp2p__free(r->fwd_out);
    lp2p__buf_free(&r->fwd_in);
    lp2p__free(r);
}

static void conn_send(struct node_conn *c, uint8_t *frame, size_t len);
static void fwd_in_send(struct fwd_in *f, uint8_t *frame, size_t len);

static void waiter_done(struct waiter *w, int rv, uint8_t *resp, size_t len)
{
    pthread_mutex_lock(&w->mu);
    w->rv = rv;
    w->resp = resp;
    w->resp_len = len;
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* Answer `r` (once) and hand the response to its owner. */
static void req_reply(struct req *r, uint8_t status, const void *payload,
                      size_t len)
{
    uint8_t *frame;
    size_t flen = 0;
    if (r->phase == PH_DONE) {
        return;
    }
    r->phase = PH_DONE;
    frame = encode_response(status, r->index, payload, len, &flen);
    if (r->owner != NULL) {
        switch (r->origin) {
        case ORIGIN_CONN: {
            struct node_conn *c = r->owner;
            c->cur = NULL;
            conn_send(c, frame, flen);
            frame = NULL;
            break;
        }
        case ORIGIN_FWD: {
            struct fwd_in *f = r->owner;
            f->cur = NULL;
            fwd_in_send(f, frame, flen);
            frame = NULL;
            break;
        }
        case ORIGIN_THREAD: {
            struct waiter *w = r->owner;
            if (frame == NULL) {
                waiter_done(w, LP2P_ENOMEM, NULL, 0);
            } else {
                memmove(frame, frame + 4, flen - 4);
                waiter_done(w, 0, frame, flen - 4);
                frame = NULL;
            }
            break;
        }
        }
        r->owner = NULL;
    }
    lp2p__free(frame);
    req_maybe_free(r);
}

static void req_error(struct req *r, uint8_t status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void req_error(struct req *r, uint8_t status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    req_reply(r, status, msg, strlen(msg));
}

static void req_retry(struct req *r)
{
    r->phase = PH_RETRY;
    r->retry_at = uv_now(&r->node->loop) + RETRY_MS;
}

static bool is_write(uint8_t op)
{
    return op == P2PRAFT_API_SET || op == P2PRAFT_API_DEL ||
           op == P2PRAFT_API_CAS;
}

/* Answer a GET from the local state. */
static void read_local(struct req *r)
{
    struct p2praft__kv_state *st = NULL;
    const struct p2praft_bytes *v;
    int rv = p2praft_consensus_get_current_state(r->node->c, (void **)&st);
    if (rv == P2PRAFT_ENOSTATE) {
        req_reply(r, P2PRAFT_API_NOTFOUND, NULL, 0);
        return;
    }
    if (rv != 0) {
        req_error(r, P2PRAFT_API_ERROR, "cannot read the state: %s",
                  p2praft_strerror(rv));
        return;
    }
    if (r->index == 0) {
        r->index = raft_last_applied(&r->node->raft);
    }
    v = p2praft__kv_lookup(st, r->q.key);
    if (v == NULL) {
        req_reply(r, P2PRAFT_API_NOTFOUND, NULL, 0);
    } else {
        req_reply(r, P2PRAFT_API_OK, v->data, v->len);
    }
    p2praft_value_destroy(&p2praft__kv_state_type, st);
}

/* The outcome is known and applied here up to r->index: answer. */
static void req_finish(struct req *r)
{
    if (r->q.op == P2PRAFT_API_GET) {
        read_local(r);
    } else {
        req_reply(r, r->result, NULL, 0);
    }
}

static void wait_applied(struct req *r)
{
    if (raft_last_applied(&r->node->raft) >= r->index) {
        req_finish(r);
    } else {
        r->phase = PH_APPLIED;
    }
}

static void commit_cb(void *ctx, int status, void *state, const char *errmsg)
{
    struct req *r = ctx;
    struct p2praft__kv_state *st = state;
    r->pending--;
    if (r->phase == PH_DONE) {
        p2praft_value_destroy(&p2praft__kv_state_type, st);
        req_maybe_free(r);
        return;
    }
    if (status == 0) {
        r->index = raft_last_applied(&r->node->raft);
        r->result = st->ok ? P2PRAFT_API_OK
                    : r->q.op == P2PRAFT_API_CAS ? P2PRAFT_API_MISMATCH
                                               : P2PRAFT_API_NOTFOUND;
        p2praft_value_destroy(&p2praft__kv_state_type, st);
        req_finish(r);
        return;
    }
    if ((status == P2PRAFT_ENOTLEADER || status == P2PRAFT_ENOLEADER) &&
        (errmsg == NULL || strstr(errmsg, "unknown") == NULL)) {
        /* Not submitted: safe to try again (elsewhere). */
        req_retry(r);
        return;
    }
    req_error(r,
              status == P2PRAFT_ETIMEDOUT ? P2PRAFT_API_TIMEDOUT
                                          : P2PRAFT_API_ERROR,
              "commit failed: %s", errmsg != NULL ? errmsg : "");
}

/* ---- forwarding (client side) ------------------------------------------- */

static void fwd_closed(struct lp2p_stream *s, void *data)
{
    struct req *r = data;
    (void)s;
    r->pending--;
    req_maybe_free(r);
}

static void fwd_end(struct req *r)
{
    struct lp2p_stream *s = r->fwd;
    if (s != NULL) {
        r->fwd = NULL;
        lp2p_stream_close(s, fwd_closed, r);
    }
}

static void fwd_written(struct lp2p_stream *s, int status, void *data)
{
    struct req *r = data;
    (void)s;
    (void)status; /* a failed write shows up on the read side */
    r->pending--;
    lp2p__free(r->fwd_out);
    r->fwd_out = NULL;
    req_maybe_free(r);
}

static void fwd_response(struct req *r, const uint8_t *body, size_t len)
{
    uint8_t status;
    if (len < 10 || body[0] != 1) {
        req_error(r, P2PRAFT_API_ERROR, "malformed answer from the leader");
        return;
    }
    status = body[1];
    r->index = get64(body + 2);
    switch (status) {
    case P2PRAFT_API_OK:
    case P2PRAFT_API_NOTFOUND:
    case P2PRAFT_API_MISMATCH:
        r->result = status;
        wait_applied(r);
        return;
    case P2PRAFT_API_NOTLEADER:
        req_retry(r);
        return;
    default:
        req_reply(r, status, body + 10, len - 10);
        return;
    }
}

static void fwd_read(struct lp2p_stream *s, int status, const uint8_t *buf,
                     size_t len)
{
    struct req *r = lp2p_stream_data(s);
    if (r->phase == PH_DONE) {
        fwd_end(r);
        return;
    }
    if (status == 0) {
        if (lp2p__buf_append(&r->fwd_in, buf, len) != 0) {
            fwd_end(r);
            req_error(r, P2PRAFT_API_ERROR, "out of memory");
            return;
        }
        if (r->fwd_in.len >= 4) {
            uint32_t flen = get32(r->fwd_in.data);
            if (flen > P2PRAFT_API_FRAME_MAX) {
                fwd_end(r);
                req_error(r, P2PRAFT_API_ERROR, "oversized answer from leader");
                return;
            }
            if (r->fwd_in.len >= 4 + (size_t)flen) {
                lp2p_stream_read_stop(s);
                fwd_end(r);
                fwd_response(r, r->fwd_in.data + 4, flen);
            }
        }
        return;
    }
    fwd_end(r);
    if (r->q.op == P2PRAFT_API_GET) {
        req_retry(r); /* a barrier may be repeated */
        return;
    }
    req_error(r, P2PRAFT_API_TIMEDOUT,
              "lost the leader while forwarding (%s): the outcome is unknown",
              lp2p_strerror(status));
}

static void fwd_opened(struct lp2p_stream *s, int status, void *data)
{
    struct req *r = data;
    size_t len = 0;
    uint64_t now;
    r->pending--;
    if (status != 0 || r->phase == PH_DONE) {
        if (s != NULL) {
            r->pending++;
            lp2p_stream_close(s, fwd_closed, r);
        }
        if (r->phase != PH_DONE) {
            LOG_DEBUG(MODULE, "cannot reach the leader: %s",
                      lp2p_strerror(status));
            req_retry(r); /* nothing was sent */
        }
        req_maybe_free(r);
        return;
    }
    r->pending++; /* until the close callback */
    r->fwd = s;
    lp2p_stream_set_data(s, r);
    r->fwd_out = encode_request(
        r, r->q.op == P2PRAFT_API_GET ? P2PRAFT_API_BARRIER : r->q.op, &len);
    if (r->fwd_out == NULL) {
        fwd_end(r);
        req_error(r, P2PRAFT_API_ERROR, "out of memory");
        return;
    }
    now = uv_now(&r->node->loop);
    lp2p_stream_set_deadline(s, r->deadline > now ? r->deadline - now : 1);
    if (lp2p_stream_write(s, r->fwd_out, len, fwd_written, r) != 0) {
        lp2p__free(r->fwd_out);
        r->fwd_out = NULL;
        fwd_end(r);
        req_retry(r);
        return;
    }
    r->pending++;
    r->node->forwarded++;
    lp2p_stream_close_write(s);
    lp2p_stream_read_start(s, fwd_read);
}

static void forward(struct req *r, raft_id leader_id, const char *leader)
{
    static const char *const protos[] = {P2PRAFT_FORWARD_PROTOCOL};
    struct lp2p_peer_id pid;
    int rv;
    (void)leader_id;
    if (lp2p_peer_id_parse(&pid, leader) != 0) {
        req_error(r, P2PRAFT_API_ERROR, "leader address '%s' is no peer ID",
                  leader);
        return;
    }
    lp2p__buf_free(&r->fwd_in);
    lp2p__buf_init(&r->fwd_in);
    rv = lp2p_stream_open(r->node->host, &pid, protos, 1, fwd_opened, r);
    if (rv != 0) {
        req_retry(r);
        return;
    }
    r->pending++;
    r->phase = PH_BUSY;
}

/* ---- the request state machine ------------------------------------------ */

static void status_text(struct p2praft_node *n, struct lp2p_buf *b);

static void req_step(struct req *r)
{
    struct p2praft_node *n = r->node;
    raft_id leader_id = 0;
    const char *leader = NULL;
    bool is_leader;
    int rv;

    if (r->phase == PH_DONE) {
        return;
    }
    if (n->stopping) {
        req_error(r, P2PRAFT_API_ERROR, "shutting down");
        return;
    }
    if (r->q.op == P2PRAFT_API_STATUS) {
        struct lp2p_buf b;
        lp2p__buf_init(&b);
        status_text(n, &b);
        req_reply(r, P2PRAFT_API_OK, b.data, b.len);
        lp2p__buf_free(&b);
        return;
    }
    if (r->q.op == P2PRAFT_API_GET && (r->q.flags & 1) == 0) {
        read_local(r);
        return;
    }
    is_leader = raft_state(&n->raft) == RAFT_LEADER;
    if (is_leader) {
        struct p2praft__kv_op op;
        /* A read barrier is a NOP op: committed and applied, it shows that
         * this node still leads and has applied everything before it. */
        op.kind = r->q.op == P2PRAFT_API_SET   ? P2PRAFT__KV_SET
                  : r->q.op == P2PRAFT_API_DEL ? P2PRAFT__KV_DEL
                  : r->q.op == P2PRAFT_API_CAS ? P2PRAFT__KV_CAS
                                               : P2PRAFT__KV_NOP;
        op.key = op.kind == P2PRAFT__KV_NOP ? NULL : r->q.key;
        op.value.data = r->q.val;
        op.value.len = r->q.vlen;
        op.expect.data = r->q.exp;
        op.expect.len = r->q.elen;
        rv = p2praft_consensus_commit_op(n->c, &op, commit_cb, r);
        if (rv != 0) {
            req_error(r, P2PRAFT_API_ERROR, "cannot commit: %s",
                      p2praft_strerror(rv));
            return;
        }
        r->pending++;
        r->phase = PH_BUSY;
        return;
    }
    if (r->local_only) {
        req_error(r, P2PRAFT_API_NOTLEADER, "not the leader");
        return;
    }
    raft_leader(&n->raft, &leader_id, &leader);
    if (leader_id == 0 || leader == NULL || leader_id == n->self_id) {
        req_retry(r);
        return;
    }
    forward(r, leader_id, leader);
}

/* Timeouts and retries (tick), applied-index waits (check). */
static void tick_cb(uv_timer_t *t)
{
    struct p2praft_node *n = t->data;
    uint64_t now = uv_now(&n->loop);
    struct req *r, *next;
    struct node_conn *c, *cnext;
    for (r = n->reqs; r != NULL; r = next) {
        next = r->next;
        if (r->phase == PH_DONE) {
            continue;
        }
        if (now >= r->deadline) {
            if (r->phase == PH_RETRY) {
                req_error(r, P2PRAFT_API_ERROR,
                          "no leader reachable within %u ms",
                          n->cfg.timeout_ms);
            } else {
                req_error(r, P2PRAFT_API_TIMEDOUT,
                          "timed out after %u ms%s", n->cfg.timeout_ms,
                          is_write(r->q.op) ? ": the outcome is unknown" : "");
            }
        } else if (r->phase == PH_RETRY && now >= r->retry_at) {
            r->phase = PH_NEW;
            req_step(r);
        }
    }
    for (c = n->conns; c != NULL; c = cnext) {
        cnext = c->next;
        if (!c->closing && c->cur == NULL && !c->writing &&
            now - c->last > CONN_IDLE_MS) {
            c->closing = true;
            uv_close((uv_handle_t *)&c->pipe, NULL);
        }
    }
}

static void check_cb(uv_check_t *h)
{
    struct p2praft_node *n = h->data;
    struct req *r, *next;
    raft_index applied;
    if (!n->raft_started) {
        return;
    }
    applied = raft_last_applied(&n->raft);
    for (r = n->reqs; r != NULL; r = next) {
        next = r->next;
        if (r->phase == PH_APPLIED && applied >= r->index) {
            req_finish(r);
        }
    }
}

/* ---- status -------------------------------------------------------------- */

static void bprintf(struct lp2p_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void bprintf(struct lp2p_buf *b, const char *fmt, ...)
{
    char line[600];
    va_list ap;
    int k;
    va_start(ap, fmt);
    k = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (k > 0) {
        lp2p__buf_append(b, line,
                         (size_t)k < sizeof(line) ? (size_t)k
                                                  : sizeof(line) - 1);
    }
}

static void status_text(struct p2praft_node *n, struct lp2p_buf *b)
{
    raft_id lid = 0;
    const char *laddr = NULL;
    struct p2praft__kv_state *st = NULL;
    char addr[LP2P_MULTIADDR_STRMAX];
    unsigned i;
    size_t k;
    raft_leader(&n->raft, &lid, &laddr);
    bprintf(b, "peer_id: %s\n", n->self);
    bprintf(b, "role: %s\n", raft_state_name(raft_state(&n->raft)));
    bprintf(b, "leader: %s\n",
            lid != 0 && laddr != NULL ? laddr : "none");
    bprintf(b, "term: %" PRIu64 "\n", (uint64_t)raft_current_term(&n->raft));
    bprintf(b, "commit_index: %" PRIu64 "\n",
            (uint64_t)raft_commit_index(&n->raft));
    bprintf(b, "applied_index: %" PRIu64 "\n",
            (uint64_t)raft_last_applied(&n->raft));
    bprintf(b, "members: %u\n", n->raft.configuration.n);
    for (i = 0; i < n->raft.configuration.n; i++) {
        const struct raft_server *s = &n->raft.configuration.servers[i];
        bprintf(b, "member: %s %s%s\n", s->address, raft_role_name(s->role),
                s->id == n->self_id ? " (self)" : "");
    }
    for (k = 0; lp2p_host_listen_addr(n->host, k, addr, sizeof(addr)) == 0;
         k++) {
        bprintf(b, "listen: %s/p2p/%s\n", addr, n->self);
    }
    bprintf(b, "snapshots_taken: %" PRIu64 "\n",
            p2praft_consensus_snapshots(n->c));
    bprintf(b, "snapshots_installed: %" PRIu64 "\n",
            p2praft_consensus_restored(n->c) - n->restored_at_boot);
    bprintf(b, "snapshot_loaded_at_start: %s\n",
            n->restored_at_boot > 0 ? "yes" : "no");
    bprintf(b, "forwarded: %" PRIu64 "\n", n->forwarded);
    bprintf(b, "served_forwards: %" PRIu64 "\n", n->served_fwd);
    if (p2praft_consensus_get_current_state(n->c, (void **)&st) == 0) {
        bprintf(b, "keys: %zu\n", st->data.len);
        bprintf(b, "ops_applied: %" PRIu64 "\n", st->seq);
        p2praft_value_destroy(&p2praft__kv_state_type, st);
    } else {
        bprintf(b, "keys: 0\nops_applied: 0\n");
    }
}

/* ---- API connections (unix socket) --------------------------------------- */

static void conn_closed(uv_handle_t *h)
{
    struct node_conn *c = h->data;
    struct p2praft_node *n = c->node;
    if (c->cur != NULL) {
        c->cur->owner = NULL;
    }
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        n->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    n->n_conns--;
    lp2p__buf_free(&c->in);
    lp2p__free(c->out);
    lp2p__free(c);
}

static void conn_close(struct node_conn *c)
{
    if (!c->closing) {
        c->closing = true;
        if (c->cur != NULL) {
            c->cur->owner = NULL;
            c->cur = NULL;
        }
        uv_close((uv_handle_t *)&c->pipe, conn_closed);
    }
}

static void conn_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void conn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);
static void conn_parse(struct node_conn *c);

static void conn_written(uv_write_t *w, int status)
{
    struct node_conn *c = w->data;
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
    struct node_conn *c = h->data;
    (void)hint;
    buf->base = c->rbuf;
    buf->len = sizeof(c->rbuf);
}

static void conn_send(struct node_conn *c, uint8_t *frame, size_t len)
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

/* A bad request: answer with BAD REQUEST, then close. */
static void conn_reject(struct node_conn *c, const char *msg)
{
    size_t len = 0;
    uint8_t *f = encode_response(P2PRAFT_API_BADREQ, 0, msg, strlen(msg), &len);
    uv_read_stop((uv_stream_t *)&c->pipe);
    c->close_after = true;
    conn_send(c, f, len);
}

/* Take one complete request from c->in, if any. */
static void conn_parse(struct node_conn *c)
{
    uint32_t flen;
    struct req *r;
    char err[256];
    if (c->in.len < 4) {
        return;
    }
    flen = get32(c->in.data);
    if (flen > P2PRAFT_API_FRAME_MAX) {
        snprintf(err, sizeof(err),
                 "request of %" PRIu32 " bytes exceeds the limit of %d", flen,
                 P2PRAFT_API_FRAME_MAX);
        conn_reject(c, err);
        return;
    }
    if (c->in.len < 4 + (size_t)flen) {
        return;
    }
    uv_read_stop((uv_stream_t *)&c->pipe);
    r = req_new(c->node, ORIGIN_CONN, c);
    if (r == NULL) {
        conn_reject(c, "out of memory");
        return;
    }
    if (p2praft__api_parse(&r->q, c->in.data + 4, flen, err, sizeof(err)) != 0 ||
        r->q.op == P2PRAFT_API_BARRIER) {
        if (r->q.op == P2PRAFT_API_BARRIER) {
            snprintf(err, sizeof(err), "BARRIER is for the forward protocol");
        }
        r->owner = NULL;
        req_reply(r, P2PRAFT_API_BADREQ, NULL, 0);
        conn_reject(c, err);
        return;
    }
    lp2p__buf_consume(&c->in, 4 + (size_t)flen);
    c->cur = r;
    req_step(r);
}

static void conn_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct node_conn *c = s->data;
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

static void api_connection(uv_stream_t *server, int status)
{
    struct p2praft_node *n = server->data;
    struct node_conn *c;
    if (status != 0) {
        return;
    }
    c = lp2p__calloc(1, sizeof(*c));
    if (c == NULL || uv_pipe_init(&n->loop, &c->pipe, 0) != 0) {
        lp2p__free(c);
        return;
    }
    c->node = n;
    c->pipe.data = c;
    lp2p__buf_init(&c->in);
    c->last = uv_now(&n->loop);
    c->next = n->conns;
    if (n->conns != NULL) {
        n->conns->prev = c;
    }
    n->conns = c;
    n->n_conns++;
    if (uv_accept(server, (uv_stream_t *)&c->pipe) != 0 ||
        n->n_conns > MAX_CONNS) {
        if (n->n_conns > MAX_CONNS) {
            LOG_WARN(MODULE, "too many API connections (%d): refused",
                     MAX_CONNS);
        }
        conn_close(c);
        return;
    }
    uv_read_start((uv_stream_t *)&c->pipe, conn_alloc, conn_read);
}

/* ---- forward protocol (leader side) -------------------------------------- */

static void fwd_in_closed(struct lp2p_stream *s, void *data)
{
    struct fwd_in *f = data;
    struct p2praft_node *n = f->node;
    (void)s;
    if (f->writing) {
        f->closed = true; /* freed by the write callback */
        return;
    }
    if (f->prev != NULL) {
        f->prev->next = f->next;
    } else {
        n->fwds = f->next;
    }
    if (f->next != NULL) {
        f->next->prev = f->prev;
    }
    n->n_fwds--;
    lp2p__buf_free(&f->in);
    lp2p__free(f->out);
    lp2p__free(f);
}

static void fwd_in_end(struct fwd_in *f)
{
    if (f->stream != NULL) {
        struct lp2p_stream *s = f->stream;
        f->stream = NULL;
        if (f->cur != NULL) {
            f->cur->owner = NULL;
            f->cur = NULL;
        }
        lp2p_stream_close(s, fwd_in_closed, f);
    }
}

static void fwd_in_written(struct lp2p_stream *s, int status, void *data)
{
    struct fwd_in *f = data;
    (void)s;
    (void)status;
    f->writing = false;
    lp2p__free(f->out);
    f->out = NULL;
    if (f->closed) {
        f->closed = false;
        fwd_in_closed(NULL, f);
    }
}

static void fwd_in_send(struct fwd_in *f, uint8_t *frame, size_t len)
{
    if (f->stream == NULL || frame == NULL) {
        lp2p__free(frame);
        fwd_in_end(f);
        return;
    }
    f->out = frame;
    if (lp2p_stream_write(f->stream, frame, len, fwd_in_written, f) == 0) {
        f->writing = true;
    } else {
        lp2p__free(f->out);
        f->out = NULL;
    }
    fwd_in_end(f);
}

static void fwd_in_read(struct lp2p_stream *s, int status, const uint8_t *buf,
                        size_t len)
{
    struct fwd_in *f = lp2p_stream_data(s);
    uint32_t flen;
    struct req *r;
    char err[256];
    if (status != 0) {
        fwd_in_end(f);
        return;
    }
    if (lp2p__buf_append(&f->in, buf, len) != 0) {
        lp2p_stream_reset(s);
        fwd_in_end(f);
        return;
    }
    if (f->in.len < 4) {
        return;
    }
    flen = get32(f->in.data);
    if (flen > P2PRAFT_API_FRAME_MAX) {
        LOG_WARN(MODULE, "oversized forward request: reset");
        lp2p_stream_reset(s);
        fwd_in_end(f);
        return;
    }
    if (f->in.len < 4 + (size_t)flen) {
        return;
    }
    lp2p_stream_read_stop(s);
    r = req_new(f->node, ORIGIN_FWD, f);
    if (r == NULL) {
        lp2p_stream_reset(s);
        fwd_in_end(f);
        return;
    }
    r->local_only = true;
    f->cur = r;
    f->node->served_fwd++;
    if (p2praft__api_parse(&r->q, f->in.data + 4, flen, err, sizeof(err)) != 0) {
        req_reply(r, P2PRAFT_API_BADREQ, err, strlen(err));
        return;
    }
    if (r->q.op != P2PRAFT_API_BARRIER && !is_write(r->q.op)) {
        req_error(r, P2PRAFT_API_BADREQ, "operation %u is not forwarded",
                  r->q.op);
        return;
    }
    req_step(r);
}

static void fwd_handler(struct lp2p_stream *s, void *data)
{
    struct p2praft_node *n = data;
    const struct lp2p_peer_id *peer = lp2p_stream_peer(s);
    struct fwd_in *f;
    if (n->stopping || !p2praft_io_admits(&n->io, peer) ||
        n->n_fwds >= MAX_FWD_IN) {
        char id[LP2P_PEER_ID_STRMAX];
        lp2p_peer_id_to_string(peer, id, sizeof(id));
        LOG_WARN(MODULE, "forward stream from %s refused (%s)", id,
                 n->n_fwds >= MAX_FWD_IN ? "too many" : "not a member");
        lp2p_stream_reset(s);
        lp2p_stream_close(s, NULL, NULL);
        return;
    }
    f = lp2p__calloc(1, sizeof(*f));
    if (f == NULL) {
        lp2p_stream_reset(s);
        lp2p_stream_close(s, NULL, NULL);
        return;
    }
    f->node = n;
    f->stream = s;
    lp2p__buf_init(&f->in);
    f->next = n->fwds;
    if (n->fwds != NULL) {
        n->fwds->prev = f;
    }
    n->fwds = f;
    n->n_fwds++;
    lp2p_stream_set_data(s, f);
    lp2p_stream_set_deadline(s, (uint64_t)n->cfg.timeout_ms + 1000);
    lp2p_stream_read_start(s, fwd_in_read);
}

/* ---- requests from other threads ----------------------------------------- */

static void shutdown_node(struct p2praft_node *n);

static void async_cb(uv_async_t *h)
{
    struct p2praft_node *n = h->data;
    struct waiter *w, *next;
    bool stop;
    pthread_mutex_lock(&n->mu);
    w = n->xhead;
    n->xhead = n->xtail = NULL;
    stop = n->stop;
    pthread_mutex_unlock(&n->mu);
    for (; w != NULL; w = next) {
        struct req *r;
        char err[256];
        next = w->next;
        if (n->stopping || stop) {
            waiter_done(w, LP2P_ESHUTDOWN, NULL, 0);
            continue;
        }
        r = req_new(n, ORIGIN_THREAD, w);
        if (r == NULL) {
            waiter_done(w, LP2P_ENOMEM, NULL, 0);
            continue;
        }
        if (p2praft__api_parse(&r->q, w->body, w->len, err, sizeof(err)) != 0 ||
            r->q.op == P2PRAFT_API_BARRIER) {
            req_reply(r, P2PRAFT_API_BADREQ, err, strlen(err));
            continue;
        }
        req_step(r);
    }
    if (stop && !n->stopping) {
        shutdown_node(n);
    }
}

/* ---- start and stop ------------------------------------------------------- */

static void handle_closed(uv_handle_t *h)
{
    (void)h;
}

static void host_closed(struct lp2p_host *h, void *data)
{
    struct p2praft_node *n = data;
    (void)h;
    n->host = NULL;
    if (n->handles_ok) {
        uv_close((uv_handle_t *)&n->async, handle_closed);
        uv_close((uv_handle_t *)&n->tick, handle_closed);
        uv_close((uv_handle_t *)&n->check, handle_closed);
        n->handles_ok = false;
    }
}

/* Second half of the shutdown: raft is closed. */
static void after_raft(struct p2praft_node *n)
{
    struct fwd_in *f, *fnext;
    if (n->io_ok) {
        p2praft_io_close(&n->io);
        n->io_ok = false;
    }
    if (n->c != NULL) {
        p2praft_consensus_free(n->c);
        n->c = NULL;
    }
    p2praft_actor_free(n->actor);
    n->actor = NULL;
    for (f = n->fwds; f != NULL; f = fnext) {
        fnext = f->next;
        if (f->stream != NULL) {
            lp2p_stream_reset(f->stream);
        }
        fwd_in_end(f);
    }
    if (n->host != NULL) {
        lp2p_host_close(n->host, host_closed, n);
    } else {
        host_closed(NULL, n);
    }
}

static void raft_closed(struct raft *r)
{
    after_raft(r->data);
}

static void shutdown_node(struct p2praft_node *n)
{
    struct req *r, *next;
    struct node_conn *c, *cnext;
    n->stopping = true;
    for (r = n->reqs; r != NULL; r = next) {
        next = r->next;
        if (r->fwd != NULL) {
            lp2p_stream_reset(r->fwd);
            fwd_end(r);
        }
        req_error(r, P2PRAFT_API_ERROR, "shutting down");
    }
    if (n->api_ok) {
        uv_close((uv_handle_t *)&n->api, handle_closed);
        n->api_ok = false;
        unlink(n->api_path);
    }
    for (c = n->conns; c != NULL; c = cnext) {
        cnext = c->next;
        conn_close(c);
    }
    if (n->host != NULL) {
        lp2p_host_remove_handler(n->host, P2PRAFT_FORWARD_PROTOCOL);
    }
    if (n->raft_ok) {
        n->raft_ok = false;
        n->raft.data = n;
        raft_close(&n->raft, raft_closed);
    } else {
        after_raft(n);
    }
}

static int fail(struct p2praft_node *n, int rv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct p2praft_node *n, int rv, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(n->errmsg, sizeof(n->errmsg), fmt, ap);
    va_end(ap);
    return rv;
}

static int add_server(struct raft_configuration *conf,
                      const struct lp2p_peer_id *pid)
{
    char s[LP2P_PEER_ID_STRMAX];
    raft_id id = p2praft_server_id(pid);
    unsigned i;
    lp2p_peer_id_to_string(pid, s, sizeof(s));
    for (i = 0; i < conf->n; i++) {
        if (conf->servers[i].id == id) {
            return 0; /* listed twice */
        }
    }
    return raft_configuration_add(conf, id, s, RAFT_VOTER);
}

static int setup(struct p2praft_node *n)
{
    struct lp2p_host_config hc;
    struct lp2p_peer_id *members;
    struct raft_configuration conf;
    struct p2praft_io_config iocfg;
    size_t i, n_members = 0;
    int rv;

    if (uv_async_init(&n->loop, &n->async, async_cb) != 0) {
        return fail(n, LP2P_EIO, "uv_async_init failed");
    }
    uv_timer_init(&n->loop, &n->tick);
    uv_check_init(&n->loop, &n->check);
    n->async.data = n->tick.data = n->check.data = n;
    n->handles_ok = true;

    lp2p_host_config_init(&hc);
    hc.key = &n->key;
    hc.idle_timeout_ms = UINT64_MAX; /* raft keeps its own connections */
    rv = lp2p_host_new(&n->host, &n->loop, &hc);
    if (rv != 0) {
        return fail(n, rv, "cannot create the host: %s", lp2p_strerror(rv));
    }
    lp2p_peer_id_to_string(lp2p_host_id(n->host), n->self, sizeof(n->self));
    n->self_id = p2praft_server_id(lp2p_host_id(n->host));
    for (i = 0; i < n->cfg.n_listen; i++) {
        rv = lp2p_host_listen(n->host, n->listen[i]);
        if (rv != 0) {
            return fail(n, rv, "cannot listen on %s: %s", n->listen[i],
                        lp2p_strerror(rv));
        }
    }
    members = lp2p__calloc(n->cfg.n_peers + 1, sizeof(*members));
    if (members == NULL) {
        return fail(n, LP2P_ENOMEM, "out of memory");
    }
    members[n_members++] = *lp2p_host_id(n->host);
    for (i = 0; i < n->cfg.n_peers; i++) {
        struct lp2p_multiaddr ma;
        char err[LP2P_ERRMSG_MAX] = "";
        lp2p_multiaddr_init(&ma);
        rv = lp2p_multiaddr_parse(&ma, n->peers[i], err, sizeof(err));
        if (rv == 0) {
            rv = lp2p_multiaddr_peer_id(&ma, &members[n_members]);
            if (rv != 0) {
                snprintf(err, sizeof(err), "it does not end in /p2p/<id>");
            }
        }
        lp2p_multiaddr_free(&ma);
        if (rv == 0) {
            rv = lp2p_peerstore_add_addr(n->host, &members[n_members],
                                         n->peers[i], LP2P_TTL_PERMANENT);
            if (rv != 0) {
                snprintf(err, sizeof(err), "%s", lp2p_strerror(rv));
            }
        }
        if (rv != 0) {
            lp2p__free(members);
            return fail(n, LP2P_EINVAL, "bad peer address %s: %s",
                        n->peers[i], err);
        }
        n_members++;
    }
    if (mkdir(n->data_dir, 0700) != 0 && errno != EEXIST) {
        lp2p__free(members);
        return fail(n, LP2P_EIO, "cannot create %s: %s", n->data_dir,
                    strerror(errno));
    }
    p2praft_io_config_init(&iocfg);
    iocfg.store = P2PRAFT_STORE_DISK;
    iocfg.dir = n->data_dir;
    rv = p2praft_io_init(&n->io, n->host, &iocfg);
    if (rv != 0) {
        lp2p__free(members);
        return fail(n, rv, "cannot open the raft storage in %s: %s",
                    n->data_dir, n->io.errmsg);
    }
    n->io_ok = true;
    rv = p2praft_io_set_members(&n->io, members, n_members);
    if (rv != 0) {
        lp2p__free(members);
        return fail(n, rv, "out of memory");
    }
    rv = p2praft_oplog_new(&n->c, &n->loop, &p2praft__kv_state_type,
                           &p2praft__kv_op_ops, NULL);
    if (rv == 0) {
        rv = p2praft_actor_new(&n->actor, &n->raft);
    }
    if (rv != 0) {
        lp2p__free(members);
        return fail(n, rv, "out of memory");
    }
    p2praft_consensus_set_timeout(n->c, n->cfg.timeout_ms);
    rv = raft_init(&n->raft, &n->io, p2praft_consensus_fsm(n->c), n->self_id,
                   n->self);
    if (rv != 0) {
        lp2p__free(members);
        return fail(n, LP2P_ERAFT, "raft_init: %s", raft_strerror(rv));
    }
    n->raft_ok = true;
    p2praft_raft_trace(&n->raft);
    raft_set_election_timeout(&n->raft, n->cfg.election_ms);
    raft_set_heartbeat_timeout(&n->raft, n->cfg.heartbeat_ms);
    raft_set_snapshot_threshold(&n->raft, n->cfg.snapshot_threshold);
    raft_set_snapshot_trailing(&n->raft, n->cfg.snapshot_trailing);
    raft_set_pre_vote(&n->raft, true);
    if (n->cfg.bootstrap) {
        raft_configuration_init(&conf);
        rv = 0;
        for (i = 0; rv == 0 && i < n_members; i++) {
            rv = add_server(&conf, &members[i]);
        }
        if (rv == 0) {
            rv = raft_bootstrap(&n->raft, &conf);
        }
        raft_configuration_close(&conf);
        if (rv == RAFT_CANTBOOTSTRAP) {
            LOG_INFO(MODULE, "%s holds raft state: not bootstrapping",
                     n->data_dir);
        } else if (rv != 0) {
            lp2p__free(members);
            return fail(n, LP2P_ERAFT, "bootstrap: %s",
                        raft_errmsg(&n->raft));
        }
    }
    lp2p__free(members);
    rv = raft_start(&n->raft);
    if (rv != 0) {
        return fail(n, LP2P_ERAFT, "raft_start: %s", raft_errmsg(&n->raft));
    }
    n->raft_started = true;
    if (n->raft.configuration.n == 0) {
        /* Nothing could ever add it: joining is not supported. */
        return fail(n, LP2P_EINVAL,
                    "%s holds no raft state: bootstrap the cluster on first "
                    "start (--bootstrap)",
                    n->data_dir);
    }
    n->restored_at_boot = p2praft_consensus_restored(n->c);
    p2praft_consensus_set_actor(n->c, n->actor);
    rv = lp2p_host_set_handler(n->host, P2PRAFT_FORWARD_PROTOCOL, NULL,
                               fwd_handler, n);
    if (rv != 0) {
        return fail(n, rv, "cannot serve %s: %s", P2PRAFT_FORWARD_PROTOCOL,
                    lp2p_strerror(rv));
    }
    if (n->api_path[0] != '\0') {
        struct stat sb;
        if (strlen(n->api_path) >= 100) {
            return fail(n, LP2P_EINVAL, "API socket path too long: %s",
                        n->api_path);
        }
        /* A socket left by a node that died; never remove anything else. */
        if (lstat(n->api_path, &sb) == 0 && S_ISSOCK(sb.st_mode)) {
            unlink(n->api_path);
        }
        uv_pipe_init(&n->loop, &n->api, 0);
        n->api.data = n;
        n->api_ok = true;
        rv = uv_pipe_bind(&n->api, n->api_path);
        if (rv == 0) {
            rv = uv_listen((uv_stream_t *)&n->api, 64, api_connection);
        }
        if (rv != 0) {
            return fail(n, LP2P_EIO, "cannot serve the API on %s: %s",
                        n->api_path, uv_strerror(rv));
        }
        chmod(n->api_path, 0600);
    }
    uv_timer_start(&n->tick, tick_cb, TICK_MS, TICK_MS);
    uv_check_start(&n->check, check_cb);
    return 0;
}

static void *thread_main(void *arg)
{
    struct p2praft_node *n = arg;
    int rv = setup(n);
    pthread_mutex_lock(&n->mu);
    n->start_rv = rv;
    n->started = true;
    pthread_cond_broadcast(&n->cv);
    pthread_mutex_unlock(&n->mu);
    lp2p_key_wipe(&n->key);
    if (rv != 0) {
        shutdown_node(n);
    }
    uv_run(&n->loop, UV_RUN_DEFAULT);
    return NULL;
}

void p2praft_node_config_init(struct p2praft_node_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->election_ms = 150;
    cfg->heartbeat_ms = 10;
    cfg->snapshot_threshold = 1024;
    cfg->snapshot_trailing = 128;
    cfg->timeout_ms = 5000;
}

static char **dup_list(const char *const *v, size_t n)
{
    char **out = lp2p__calloc(n + 1, sizeof(char *));
    size_t i;
    if (out == NULL) {
        return NULL;
    }
    for (i = 0; i < n; i++) {
        out[i] = lp2p__strdup(v[i]);
        if (out[i] == NULL) {
            return out; /* caught by the caller's check */
        }
    }
    return out;
}

static void free_list(char **v, size_t n)
{
    size_t i;
    if (v != NULL) {
        for (i = 0; i < n; i++) {
            lp2p__free(v[i]);
        }
        lp2p__free(v);
    }
}

static void node_free(struct p2praft_node *n)
{
    struct req *r;
    /* Nothing is pending once the loop ran dry; free stragglers anyway. */
    while ((r = n->reqs) != NULL) {
        r->phase = PH_DONE;
        r->pending = 0;
        req_maybe_free(r);
    }
    free_list(n->listen, n->cfg.n_listen);
    free_list(n->peers, n->cfg.n_peers);
    lp2p__free(n->data_dir);
    lp2p__free(n->api_path);
    pthread_mutex_destroy(&n->mu);
    pthread_cond_destroy(&n->cv);
    lp2p_key_wipe(&n->key);
    lp2p__free(n);
}

int p2praft_node_start(struct p2praft_node **out,
                       const struct p2praft_node_config *cfg, char *errmsg,
                       size_t errmsg_len)
{
    struct p2praft_node *n;
    size_t i;
    int rv;
    if (errmsg != NULL && errmsg_len > 0) {
        errmsg[0] = '\0';
    }
    if (out == NULL || cfg == NULL || cfg->key == NULL ||
        cfg->data_dir == NULL || cfg->n_listen == 0 ||
        cfg->election_ms == 0 || cfg->heartbeat_ms == 0 ||
        cfg->heartbeat_ms >= cfg->election_ms || cfg->timeout_ms == 0 ||
        cfg->snapshot_threshold == 0) {
        if (errmsg != NULL) {
            snprintf(errmsg, errmsg_len, "invalid node configuration");
        }
        return LP2P_EINVAL;
    }
    n = lp2p__calloc(1, sizeof(*n));
    if (n == NULL) {
        return LP2P_ENOMEM;
    }
    n->cfg = *cfg;
    n->key = *cfg->key;
    n->listen = dup_list(cfg->listen, cfg->n_listen);
    n->peers = dup_list(cfg->peers, cfg->n_peers);
    n->data_dir = lp2p__strdup(cfg->data_dir);
    if (cfg->api_path != NULL) {
        n->api_path = lp2p__strdup(cfg->api_path);
    } else if (n->data_dir != NULL) {
        size_t len = strlen(n->data_dir) + sizeof("/api.sock");
        n->api_path = lp2p__malloc(len);
        if (n->api_path != NULL) {
            snprintf(n->api_path, len, "%s/api.sock", n->data_dir);
        }
    }
    pthread_mutex_init(&n->mu, NULL);
    pthread_cond_init(&n->cv, NULL);
    rv = n->listen == NULL || n->peers == NULL || n->data_dir == NULL ||
                 n->api_path == NULL
             ? LP2P_ENOMEM
             : 0;
    for (i = 0; rv == 0 && i < cfg->n_listen; i++) {
        rv = n->listen[i] == NULL ? LP2P_ENOMEM : 0;
    }
    for (i = 0; rv == 0 && i < cfg->n_peers; i++) {
        rv = n->peers[i] == NULL ? LP2P_ENOMEM : 0;
    }
    if (rv == 0 && uv_loop_init(&n->loop) != 0) {
        rv = LP2P_EIO;
    }
    if (rv != 0) {
        if (errmsg != NULL) {
            snprintf(errmsg, errmsg_len, "%s", lp2p_strerror(rv));
        }
        node_free(n);
        return rv;
    }
    if (pthread_create(&n->thread, NULL, thread_main, n) != 0) {
        uv_loop_close(&n->loop);
        node_free(n);
        if (errmsg != NULL) {
            snprintf(errmsg, errmsg_len, "cannot create the node thread");
        }
        return LP2P_EIO;
    }
    pthread_mutex_lock(&n->mu);
    while (!n->started) {
        pthread_cond_wait(&n->cv, &n->mu);
    }
    rv = n->start_rv;
    pthread_mutex_unlock(&n->mu);
    if (rv != 0) {
        if (errmsg != NULL) {
            snprintf(errmsg, errmsg_len, "%s", n->errmsg);
        }
        pthread_join(n->thread, NULL);
        uv_loop_close(&n->loop);
        node_free(n);
        return rv;
    }
    *out = n;
    return 0;
}

void p2praft_node_stop(struct p2praft_node *n)
{
    if (n == NULL) {
        return;
    }
    pthread_mutex_lock(&n->mu);
    n->stop = true;
    pthread_mutex_unlock(&n->mu);
    uv_async_send(&n->async);
    pthread_join(n->thread, NULL);
    if (uv_loop_close(&n->loop) != 0) {
        LOG_WARN(MODULE, "loop closed with handles still open");
    }
    node_free(n);
}

void p2praft_node_peer_id(const struct p2praft_node *n, char *out, size_t len)
{
    snprintf(out, len, "%s", n->self);
}

const char *p2praft_node_api_path(const struct p2praft_node *n)
{
    return n->api_path;
}

int p2praft_node_call(struct p2praft_node *n, const uint8_t *req, size_t len,
                      uint8_t **resp, size_t *resp_len)
{
    struct waiter w;
    int rv;
    if (n == NULL || req == NULL || resp == NULL || resp_len == NULL ||
        pthread_equal(pthread_self(), n->thread)) {
        return LP2P_EINVAL;
    }
    memset(&w, 0, sizeof(w));
    w.body = (uint8_t *)req;
    w.len = len;
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    pthread_mutex_lock(&n->mu);
    if (n->stop) {
        pthread_mutex_unlock(&n->mu);
        rv = LP2P_ESHUTDOWN;
        goto out;
    }
    if (n->xtail != NULL) {
        n->xtail->next = &w;
    } else {
        n->xhead = &w;
    }
    n->xtail = &w;
    pthread_mutex_unlock(&n->mu);
    uv_async_send(&n->async);
    pthread_mutex_lock(&w.mu);
    while (!w.done) {
        pthread_cond_wait(&w.cv, &w.mu);
    }
    pthread_mutex_unlock(&w.mu);
    rv = w.rv;
    if (rv == 0) {
        *resp = w.resp;
        *resp_len = w.resp_len;
    }
out:
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
    return rv;
}

/* Typed calls: build the request, map the response. */
static int kv_call(struct p2praft_node *n, uint8_t op, uint8_t flags,
                   const char *key, const void *exp, size_t elen,
                   const void *val, size_t vlen, uint8_t **out,
                   size_t *out_len, char *errmsg, size_t errmsg_len)
{
    struct req r;
    uint8_t *frame, *resp = NULL;
    size_t flen = 0, rlen = 0;
    int rv;
    if (errmsg != NULL && errmsg_len > 0) {
        errmsg[0] = '\0';
    }
    memset(&r, 0, sizeof(r));
    r.q.flags = flags;
    r.q.key = (char *)key;
    r.q.exp = (uint8_t *)exp;
    r.q.elen = elen;
    r.q.val = (uint8_t *)val;
    r.q.vlen = vlen;
    if (key != NULL &&
        (key[0] == '\0' || strlen(key) > P2PRAFT_KV_KEY_MAX ||
         vlen > P2PRAFT_KV_VALUE_MAX || elen > P2PRAFT_KV_VALUE_MAX)) {
        return LP2P_EINVAL;
    }
    frame = encode_request(&r, op, &flen);
    if (frame == NULL) {
        return LP2P_ENOMEM;
    }
    rv = p2praft_node_call(n, frame + 4, flen - 4, &resp, &rlen);
    lp2p__free(frame);
    if (rv != 0) {
        return rv;
    }
    if (rlen < 10) {
        lp2p__free(resp);
        return LP2P_EPROTO;
    }
    switch (resp[1]) {
    case P2PRAFT_API_OK:
        rv = 0;
        break;
    case P2PRAFT_API_NOTFOUND:
        rv = LP2P_ENOTFOUND;
        break;
    case P2PRAFT_API_MISMATCH:
        rv = LP2P_EMISMATCH;
        break;
    case P2PRAFT_API_TIMEDOUT:
        rv = LP2P_ETIMEDOUT;
        break;
    case P2PRAFT_API_BADREQ:
        rv = LP2P_EINVAL;
        break;
    default:
        rv = LP2P_ERAFT;
        break;
    }
    if (rv != 0 && errmsg != NULL && errmsg_len > 0) {
        size_t k = rlen - 10 < errmsg_len - 1 ? rlen - 10 : errmsg_len - 1;
        memcpy(errmsg, resp + 10, k);
        errmsg[k] = '\0';
    }
    if (rv == 0 && out != NULL) {
        *out_len = rlen - 10;
        *out = NULL;
        if (rlen > 10) {
            *out = lp2p__malloc(rlen - 10 + 1);
            if (*out == NULL) {
                lp2p__free(resp);
                return LP2P_ENOMEM;
            }
            memcpy(*out, resp + 10, rlen - 10);
            (*out)[rlen - 10] = 0;
        }
    }
    lp2p__free(resp);
    return rv;
}

int p2praft_node_get(struct p2praft_node *n, const char *key, bool consistent,
                     uint8_t **value, size_t *len, char *errmsg,
                     size_t errmsg_len)
{
    if (key == NULL || value == NULL || len == NULL) {
        return LP2P_EINVAL;
    }
    return kv_call(n, P2PRAFT_API_GET, consistent ? 1 : 0, key, NULL, 0, NULL,
                   0, value, len, errmsg, errmsg_len);
}

int p2praft_node_set(struct p2praft_node *n, const char *key,
                     const void *value, size_t len, char *errmsg,
                     size_t errmsg_len)
{
    if (key == NULL || (value == NULL && len > 0)) {
        return LP2P_EINVAL;
    }
    return kv_call(n, P2PRAFT_API_SET, 0, key, NULL, 0, value, len, NULL, NULL,
                   errmsg, errmsg_len);
}

int p2praft_node_del(struct p2praft_node *n, const char *key, char *errmsg,
                     size_t errmsg_len)
{
    if (key == NULL) {
        return LP2P_EINVAL;
    }
    return kv_call(n, P2PRAFT_API_DEL, 0, key, NULL, 0, NULL, 0, NULL, NULL,
                   errmsg, errmsg_len);
}

int p2praft_node_cas(struct p2praft_node *n, const char *key,
                     const void *expected, size_t expected_len,
                     const void *value, size_t len, char *errmsg,
                     size_t errmsg_len)
{
    if (key == NULL || (value == NULL && len > 0) ||
        (expected == NULL && expected_len > 0)) {
        return LP2P_EINVAL;
    }
    return kv_call(n, P2PRAFT_API_CAS, 0, key, expected, expected_len, value,
                   len, NULL, NULL, errmsg, errmsg_len);
}

int p2praft_node_status(struct p2praft_node *n, char **text)
{
    uint8_t *out = NULL;
    size_t len = 0;
    int rv;
    if (text == NULL) {
        return LP2P_EINVAL;
    }
    rv = kv_call(n, P2PRAFT_API_STATUS, 0, NULL, NULL, 0, NULL, 0, &out, &len,
                 NULL, 0);
    if (rv != 0) {
        return rv;
    }
    if (out == NULL) {
        out = lp2p__calloc(1, 1);
        if (out == NULL) {
            return LP2P_ENOMEM;
        }
    }
    *text = (char *)out;
    return 0;
}
