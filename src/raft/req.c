/*
 * The node's request state machine. A request (struct p2praft__req) comes
 * from an API connection, a forward stream or another thread (its owner,
 * see req.h), and goes through these steps:
 *   GET            read the local state, answer.
 *   GET consistent barrier: on the leader commit a NOP op (not
 *                  raft_barrier(), whose libraft 0.22 entry carries
 *                  uninitialised bytes), elsewhere forward BARRIER to the
 *                  leader; then wait until the local applied index reaches
 *                  the barrier's, then read locally.
 *   SET/DEL/CAS    on the leader commit the op (p2praft_consensus_commit_op)
 *                  and read its outcome from the state copy of the commit
 *                  callback; elsewhere forward it to the leader (forward.c),
 *                  then wait until the local applied index reaches the
 *                  commit's.
 *   STATUS         answer with the status text (status.c).
 * When there is no leader yet, the leader cannot be reached, or the peer
 * answers NOT LEADER, nothing was committed and the request is retried
 * every RETRY_MS until its deadline. A commit that times out, or fails
 * after it may have been submitted, has an unknown outcome and the client
 * is told so (TIMED OUT / ERROR), never "ok".
 *
 * A request is freed once it has answered AND nothing it started (commit,
 * stream open, stream write, stream close) is still pending: `pending`
 * counts those. Its owner may go away earlier (p2praft__req_detach); the
 * answer is then dropped.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "raft/forward.h"
#include "raft/kv.h"
#include "raft/node.h"
#include "raft/req.h"
#include "raft/status.h"
#include "util/heap.h"

#define RETRY_MS 40

struct p2praft__req *p2praft__req_new(struct p2praft_node *n,
                                      const struct p2praft__req_owner_ops *ops,
                                      void *owner)
{
    struct p2praft__req *r = lp2p__calloc(1, sizeof(*r));
    if (r == NULL) {
        return NULL;
    }
    r->node = n;
    r->owner_ops = ops;
    r->owner = owner;
    lp2p__buf_init(&r->fwd_in);
    uv_update_time(&n->loop);
    r->deadline = uv_now(&n->loop) + n->cfg.timeout_ms;
    lp2p__list_insert_head(&n->reqs, &r->link);
    return r;
}

void p2praft__req_detach(struct p2praft__req *r)
{
    r->owner = NULL;
}

void p2praft__req_maybe_free(struct p2praft__req *r)
{
    if (r->phase != P2PRAFT__REQ_DONE || r->pending > 0) {
        return;
    }
    lp2p__list_remove(&r->link);
    p2praft__api_req_release(&r->q);
    lp2p__free(r->fwd_out);
    lp2p__buf_free(&r->fwd_in);
    lp2p__free(r);
}

void p2praft__req_reply(struct p2praft__req *r, uint8_t status,
                        const void *payload, size_t len)
{
    uint8_t *frame;
    size_t flen = 0;
    if (r->phase == P2PRAFT__REQ_DONE) {
        return;
    }
    r->phase = P2PRAFT__REQ_DONE;
    frame = p2praft__api_response_encode(status, r->index, payload, len, &flen);
    if (r->owner != NULL) {
        void *owner = r->owner;
        r->owner = NULL;
        r->owner_ops->reply(owner, frame, flen);
        frame = NULL;
    }
    lp2p__free(frame);
    p2praft__req_maybe_free(r);
}

void p2praft__req_error(struct p2praft__req *r, uint8_t status,
                        const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    p2praft__req_reply(r, status, msg, strlen(msg));
}

void p2praft__req_retry(struct p2praft__req *r)
{
    r->phase = P2PRAFT__REQ_RETRY;
    r->retry_at = uv_now(&r->node->loop) + RETRY_MS;
}

bool p2praft__req_is_write(uint8_t op)
{
    return op == P2PRAFT_API_SET || op == P2PRAFT_API_DEL ||
           op == P2PRAFT_API_CAS;
}

/* Answer a GET from the local state. */
static void read_local(struct p2praft__req *r)
{
    struct p2praft__kv_state *st = NULL;
    const struct p2praft_bytes *v;
    int rv = p2praft_consensus_get_current_state(r->node->c, (void **)&st);
    if (rv == P2PRAFT_ENOSTATE) {
        p2praft__req_reply(r, P2PRAFT_API_NOTFOUND, NULL, 0);
        return;
    }
    if (rv != 0) {
        p2praft__req_error(r, P2PRAFT_API_ERROR, "cannot read the state: %s",
                           p2praft_strerror(rv));
        return;
    }
    if (r->index == 0) {
        r->index = raft_last_applied(&r->node->raft);
    }
    v = p2praft__kv_lookup(st, r->q.key);
    if (v == NULL) {
        p2praft__req_reply(r, P2PRAFT_API_NOTFOUND, NULL, 0);
    } else {
        p2praft__req_reply(r, P2PRAFT_API_OK, v->data, v->len);
    }
    p2praft_value_destroy(&p2praft__kv_state_type, st);
}

/* The outcome is known and applied here up to r->index: answer. */
static void finish(struct p2praft__req *r)
{
    if (r->q.op == P2PRAFT_API_GET) {
        read_local(r);
    } else {
        p2praft__req_reply(r, r->result, NULL, 0);
    }
}

void p2praft__req_wait_applied(struct p2praft__req *r)
{
    if (raft_last_applied(&r->node->raft) >= r->index) {
        finish(r);
    } else {
        r->phase = P2PRAFT__REQ_APPLIED;
    }
}

static void commit_cb(void *ctx, int status, void *state, const char *errmsg)
{
    struct p2praft__req *r = ctx;
    struct p2praft__kv_state *st = state;
    r->pending--;
    if (r->phase == P2PRAFT__REQ_DONE) {
        p2praft_value_destroy(&p2praft__kv_state_type, st);
        p2praft__req_maybe_free(r);
        return;
    }
    if (status == 0) {
        r->index = raft_last_applied(&r->node->raft);
        r->result = st->ok ? P2PRAFT_API_OK
                    : r->q.op == P2PRAFT_API_CAS ? P2PRAFT_API_MISMATCH
                                                 : P2PRAFT_API_NOTFOUND;
        p2praft_value_destroy(&p2praft__kv_state_type, st);
        finish(r);
        return;
    }
    if ((status == P2PRAFT_ENOTLEADER || status == P2PRAFT_ENOLEADER) &&
        (errmsg == NULL || strstr(errmsg, "unknown") == NULL)) {
        /* Not submitted: safe to try again (elsewhere). */
        p2praft__req_retry(r);
        return;
    }
    p2praft__req_error(r,
                       status == P2PRAFT_ETIMEDOUT ? P2PRAFT_API_TIMEDOUT
                                                   : P2PRAFT_API_ERROR,
                       "commit failed: %s", errmsg != NULL ? errmsg : "");
}

/* On the leader: commit the op (a NOP for a read barrier). */
static void commit(struct p2praft__req *r)
{
    struct p2praft__kv_op op;
    int rv;
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
    rv = p2praft_consensus_commit_op(r->node->c, &op, commit_cb, r);
    if (rv != 0) {
        p2praft__req_error(r, P2PRAFT_API_ERROR, "cannot commit: %s",
                           p2praft_strerror(rv));
        return;
    }
    r->pending++;
    r->phase = P2PRAFT__REQ_BUSY;
}

void p2praft__req_step(struct p2praft__req *r)
{
    struct p2praft_node *n = r->node;
    raft_id leader_id = 0;
    const char *leader = NULL;

    if (r->phase == P2PRAFT__REQ_DONE) {
        return;
    }
    if (n->stopping) {
        p2praft__req_error(r, P2PRAFT_API_ERROR, "shutting down");
        return;
    }
    if (r->q.op == P2PRAFT_API_STATUS) {
        struct lp2p_buf b;
        lp2p__buf_init(&b);
        p2praft__status_text(n, &b);
        p2praft__req_reply(r, P2PRAFT_API_OK, b.data, b.len);
        lp2p__buf_free(&b);
        return;
    }
    if (r->q.op == P2PRAFT_API_GET &&
        (r->q.flags & P2PRAFT__API_CONSISTENT) == 0) {
        read_local(r);
        return;
    }
    if (raft_state(&n->raft) == RAFT_LEADER) {
        commit(r);
        return;
    }
    if (r->local_only) {
        p2praft__req_error(r, P2PRAFT_API_NOTLEADER, "not the leader");
        return;
    }
    raft_leader(&n->raft, &leader_id, &leader);
    if (leader_id == 0 || leader == NULL || leader_id == n->self_id) {
        p2praft__req_retry(r);
        return;
    }
    p2praft__forward_send(r, leader);
}

void p2praft__reqs_tick(struct p2praft_node *n, uint64_t now)
{
    struct lp2p__list *q, *next;
    LP2P__LIST_FOREACH_SAFE(q, next, &n->reqs) {
        struct p2praft__req *r = LP2P__CONTAINER_OF(q, struct p2praft__req,
                                                    link);
        if (r->phase == P2PRAFT__REQ_DONE) {
            continue;
        }
        if (now >= r->deadline) {
            if (r->phase == P2PRAFT__REQ_RETRY) {
                p2praft__req_error(r, P2PRAFT_API_ERROR,
                                   "no leader reachable within %u ms",
                                   n->cfg.timeout_ms);
            } else {
                p2praft__req_error(r, P2PRAFT_API_TIMEDOUT,
                                   "timed out after %u ms%s",
                                   n->cfg.timeout_ms,
                                   p2praft__req_is_write(r->q.op)
                                       ? ": the outcome is unknown"
                                       : "");
            }
        } else if (r->phase == P2PRAFT__REQ_RETRY && now >= r->retry_at) {
            r->phase = P2PRAFT__REQ_NEW;
            p2praft__req_step(r);
        }
    }
}

void p2praft__reqs_check_applied(struct p2praft_node *n)
{
    struct lp2p__list *q, *next;
    raft_index applied = raft_last_applied(&n->raft);
    LP2P__LIST_FOREACH_SAFE(q, next, &n->reqs) {
        struct p2praft__req *r = LP2P__CONTAINER_OF(q, struct p2praft__req,
                                                    link);
        if (r->phase == P2PRAFT__REQ_APPLIED && applied >= r->index) {
            finish(r);
        }
    }
}

void p2praft__reqs_shutdown(struct p2praft_node *n)
{
    struct lp2p__list *q, *next;
    LP2P__LIST_FOREACH_SAFE(q, next, &n->reqs) {
        struct p2praft__req *r = LP2P__CONTAINER_OF(q, struct p2praft__req,
                                                    link);
        p2praft__forward_abort(r);
        p2praft__req_error(r, P2PRAFT_API_ERROR, "shutting down");
    }
}

void p2praft__reqs_free_all(struct p2praft_node *n)
{
    struct lp2p__list *q;
    /* Nothing is pending once the loop ran dry; free stragglers anyway. */
    while ((q = lp2p__list_first(&n->reqs)) != NULL) {
        struct p2praft__req *r = LP2P__CONTAINER_OF(q, struct p2praft__req,
                                                    link);
        r->phase = P2PRAFT__REQ_DONE;
        r->pending = 0;
        p2praft__req_maybe_free(r);
    }
}
