/*
 * The node's request state machine. A request (struct p2praft__req) comes
 * from an API connection, a forward stream or another thread (its owner,
 * see req.h), and goes through these steps:
 *   GET, LS        read the local state (borrowed, never copied), answer.
 *   GET, LS consistent
 *                  barrier: on the leader commit a NOP op (not
 *                  raft_barrier(), whose libraft 0.22 entry carries
 *                  uninitialised bytes), elsewhere forward BARRIER to the
 *                  leader; then wait until the local applied index reaches
 *                  the barrier's, then read locally.
 *   SET/DEL/CAS    on the leader commit the op (p2praft_consensus_commit_op)
 *                  and read its outcome from the op's result that the
 *                  commit callback gets (the KV applies in place: no copy
 *                  of the state); elsewhere forward it to the leader (forward.c),
 *                  then wait until the local applied index reaches the
 *                  commit's.
 *   STATUS         answer with the status text (status.c).
 * When there is no leader yet, the leader cannot be reached, or the peer
 * answers NOT LEADER or BUSY, nothing was submitted and the request is
 * retried every RETRY_MS until its deadline, then answered FAILED. Every
 * decision is made on codes (p2praft_outcome_unknown()), never on message
 * text. A write that was handed to raft or to a leader (maybe_applied) and
 * then has no answer -- timed out, leadership lost, leader replaced or
 * connection lost while forwarding, shutting down -- is answered UNKNOWN,
 * never FAILED and never retried: it may have been applied. Reads and
 * barriers are simply retried.
 *
 * A plain GET is served only once the node has caught up (node.h): until
 * then it gets NOT CAUGHT UP, since a restarted node's state may miss
 * writes it had acknowledged before. An internal barrier request
 * (p2praft__reqs_catch_up) gets it there as soon as a leader answers.
 *
 * A request is freed once it has answered AND its commit callback (if any)
 * ran: `pending` counts it. A forwarding attempt lives on its own
 * (forward.c) and lets go of the request when it ends. The owner may go
 * away earlier (p2praft__req_detach); the answer is then dropped.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "raft/consensus.h"
#include "raft/forward.h"
#include "raft/kv.h"
#include "raft/members.h"
#include "raft/node.h"
#include "raft/req.h"
#include "raft/status.h"
#include "util/heap.h"
#include "util/log.h"

#define MODULE "node"
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
    lp2p__list_init(&r->olink);
    uv_update_time(&n->loop);
    r->deadline = uv_now(&n->loop) + n->cfg.timeout_ms;
    r->t0_us = uv_hrtime() / 1000;
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
    if (r->api_counted) {
        r->node->api_reqs--;
    }
    p2praft__api_req_release(&r->q);
    lp2p__free(r);
}

/* Answer with `frame` (owned; NULL when out of memory or when nobody is
 * listening), once. */
static void reply_frame(struct p2praft__req *r, uint8_t *frame, size_t flen)
{
    if (r->phase == P2PRAFT__REQ_DONE) {
        lp2p__free(frame);
        return;
    }
    r->phase = P2PRAFT__REQ_DONE;
    p2praft__forward_abort(r); /* an attempt still running lets go */
    if (r->owner != NULL) {
        void *owner = r->owner;
        r->owner = NULL;
        r->owner_ops->reply(owner, r, frame, flen);
        frame = NULL;
    }
    lp2p__free(frame);
    p2praft__req_maybe_free(r);
}

void p2praft__req_reply(struct p2praft__req *r, uint8_t status,
                        const void *payload, size_t len)
{
    uint8_t *frame = NULL;
    size_t flen = 0;
    if (r->phase != P2PRAFT__REQ_DONE && p2praft__req_is_write(r->q.op)) {
        bool applied = status == P2PRAFT_API_OK ||
                       status == P2PRAFT_API_NOTFOUND ||
                       status == P2PRAFT_API_MISMATCH;
        if (applied || status == P2PRAFT_API_FAILED ||
            status == P2PRAFT_API_UNKNOWN) {
            p2praft__metrics_commit(&r->node->metrics, applied,
                                    uv_hrtime() / 1000 - r->t0_us);
        }
    }
    if (r->phase != P2PRAFT__REQ_DONE && r->owner != NULL) {
        frame = p2praft__api_response_encode(status, r->q.id, r->index,
                                             payload, len, &flen);
    }
    reply_frame(r, frame, flen);
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
    /* Every path here knows that nothing was submitted, and one that may
     * have submitted a write never comes here (it answers UNKNOWN): so no
     * earlier attempt of this request was submitted either. */
    r->maybe_applied = false;
    r->phase = P2PRAFT__REQ_RETRY;
    r->retry_at = uv_now(&r->node->loop) + RETRY_MS;
}

void p2praft__req_fail(struct p2praft__req *r, const char *why)
{
    if (p2praft__req_may_apply(r->q.op) && r->maybe_applied) {
        p2praft__req_error(r, P2PRAFT_API_UNKNOWN,
                           "%s: the outcome is unknown", why);
    } else {
        p2praft__req_error(r, P2PRAFT_API_FAILED, "%s", why);
    }
}

/* The local state for a read (borrowed, may be NULL: no state yet), or
 * an answer (NOT CAUGHT UP, FAILED) and false. */
static bool local_state(struct p2praft__req *r,
                        const struct p2praft__kv_state **st)
{
    int rv;
    if (!r->node->caught_up) {
        p2praft__req_error(r, P2PRAFT_API_NOTCAUGHTUP,
                           "this node has not caught up with a leader since "
                           "it started: its state may be stale; retry, or "
                           "read with --consistent");
        return false;
    }
    rv = p2praft__consensus_state(r->node->c, (const void **)st);
    if (rv == P2PRAFT_ENOSTATE) {
        *st = NULL;
        rv = 0;
    }
    if (rv != 0) {
        p2praft__req_error(r, P2PRAFT_API_FAILED, "cannot read the state: %s",
                           p2praft_strerror(rv));
        return false;
    }
    if (r->index == 0) {
        r->index = raft_last_applied(&r->node->raft);
    }
    return true;
}

/* Answer a GET from the local state (borrowed: no copy of the state). */
static void read_local(struct p2praft__req *r)
{
    const struct p2praft__kv_state *st = NULL;
    const uint8_t *v;
    size_t vlen;
    if (!local_state(r, &st)) {
        return;
    }
    if (!p2praft__kv_get(st, r->q.key != NULL ? r->q.key : "", &v, &vlen)) {
        p2praft__req_reply(r, P2PRAFT_API_NOTFOUND, NULL, 0);
    } else {
        p2praft__req_reply(r, P2PRAFT_API_OK, v, vlen);
    }
}

/* Answer an LS from the local state: one page of the keys that start with
 * the prefix and sort after `after`, built straight into its frame. */
static void list_local(struct p2praft__req *r)
{
    const struct p2praft__kv_state *st = NULL;
    struct p2praft__kvmap_iter it;
    const char *prefix = r->q.key != NULL ? r->q.key : "", *k;
    const char *after = r->q.after != NULL ? r->q.after : "";
    const uint8_t *v;
    size_t plen = strlen(prefix), klen, vlen, head, bytes = 0;
    uint32_t limit = r->q.limit, count = 0;
    bool keys_only = (r->q.flags & P2PRAFT__API_KEYS_ONLY) != 0, more = false;
    struct lp2p_buf b;
    size_t fstart, flen = 0;
    if (!local_state(r, &st)) {
        return;
    }
    if (r->owner == NULL) {
        p2praft__req_reply(r, P2PRAFT_API_OK, NULL, 0); /* nobody to tell */
        return;
    }
    if (limit == 0 || limit > P2PRAFT__API_LS_PAGE_MAX) {
        limit = P2PRAFT__API_LS_PAGE_MAX;
    }
    lp2p__buf_init(&b);
    fstart = p2praft__api_frame_start(&b, P2PRAFT_API_ANSWER, P2PRAFT_API_OK,
                                      r->q.id, r->index);
    head = b.len;
    if (fstart == (size_t)-1 ||
        lp2p__buf_append(&b, "\0\0\0\0\0", P2PRAFT__API_LS_HEAD) != 0) {
        goto oom;
    }
    /* From the first key with the prefix, or past `after` when that is
     * further: O(log n) to get there, then one step per key listed. */
    if (after[0] != '\0' && strcmp(after, prefix) >= 0) {
        p2praft__kv_seek(st, &it, after);
    } else {
        after = "";
        p2praft__kv_seek(st, &it, prefix);
    }
    while (p2praft__kv_next(&it, &k, &klen, &v, &vlen)) {
        if (after[0] != '\0') {
            bool same = strcmp(k, after) == 0;
            after = ""; /* only the first key can be `after` itself */
            if (same) {
                continue; /* it was on the last page */
            }
        }
        if (strncmp(k, prefix, plen) != 0) {
            break; /* past the keys with the prefix */
        }
        if (count == limit ||
            (count > 0 && bytes >= P2PRAFT__API_LS_PAGE_BYTES)) {
            more = true;
            break;
        }
        if (p2praft__api_ls_put(&b, k, klen, keys_only ? NULL : v,
                                keys_only ? 0 : vlen) != 0) {
            goto oom;
        }
        bytes += klen + (keys_only ? 0 : vlen);
        count++;
    }
    p2praft__api_ls_head(b.data + head, more, count);
    p2praft__api_frame_end(&b, fstart);
    {
        uint8_t *frame = lp2p__buf_detach(&b, &flen);
        reply_frame(r, frame, flen);
    }
    return;
oom:
    lp2p__buf_free(&b);
    p2praft__req_error(r, P2PRAFT_API_FAILED, "out of memory");
}

/* A read served locally: GET or LS. */
static void serve_read(struct p2praft__req *r)
{
    if (r->q.op == P2PRAFT_API_LS) {
        list_local(r);
    } else {
        read_local(r);
    }
}

/* The outcome is known and applied here up to r->index: answer. The index
 * came from a leader (its commit or its barrier), so this node has now
 * caught up. */
static void finish(struct p2praft__req *r)
{
    if (!r->node->caught_up) {
        r->node->caught_up = true;
        LOG_WARN(MODULE, "caught up with the leader at index %llu",
                 (unsigned long long)r->index);
    }
    if (r->q.op == P2PRAFT_API_GET || r->q.op == P2PRAFT_API_LS) {
        serve_read(r);
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
    struct p2praft__kv_result *res = state; /* the op's result */
    r->pending--;
    if (r->phase == P2PRAFT__REQ_DONE) {
        p2praft_value_destroy(&p2praft__kv_result_type, res);
        p2praft__req_maybe_free(r);
        return;
    }
    if (status == 0) {
        /* The entry's own index (the one watches report), not how far
         * raft had applied when it called back: it may have applied
         * later entries in the same turn. */
        r->index = p2praft__consensus_cb_index(r->node->c);
        if (r->index == 0) {
            r->index = raft_last_applied(&r->node->raft);
        }
        r->result = res != NULL && res->ok ? P2PRAFT_API_OK
                    : r->q.op == P2PRAFT_API_CAS ? P2PRAFT_API_MISMATCH
                                                 : P2PRAFT_API_NOTFOUND;
        p2praft_value_destroy(&p2praft__kv_result_type, res);
        finish(r);
        return;
    }
    if (status == P2PRAFT_ENOTLEADER || status == P2PRAFT_ENOLEADER ||
        !p2praft__req_is_write(r->q.op)) {
        /* Not submitted, or a barrier (which may be repeated): try again,
         * here or through the new leader. */
        p2praft__req_retry(r);
        return;
    }
    p2praft__req_error(r,
                       p2praft_outcome_unknown(status) ? P2PRAFT_API_UNKNOWN
                                                       : P2PRAFT_API_FAILED,
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
        /* The callback will not run: nothing was queued. */
        p2praft__req_error(r, P2PRAFT_API_FAILED, "cannot commit: %s",
                           p2praft_strerror(rv));
        return;
    }
    r->pending++;
    r->maybe_applied = true;
    r->phase = P2PRAFT__REQ_BUSY;
}

/* ---- capi: SNAPSHOT (begin) ---- */

static void snapshot_cb(void *ctx, int status, uint64_t index)
{
    struct p2praft__req *r = ctx;
    r->pending--;
    if (r->phase == P2PRAFT__REQ_DONE) {
        p2praft__req_maybe_free(r);
        return;
    }
    if (status != 0) {
        p2praft__req_error(r, P2PRAFT_API_FAILED, "snapshot failed: %s",
                           p2praft_strerror(status));
        return;
    }
    r->index = index;
    p2praft__req_reply(r, P2PRAFT_API_OK, NULL, 0);
}

/* Snapshot now, on this node (leader or not). */
static void take_snapshot(struct p2praft__req *r)
{
    int rv = p2praft_consensus_snapshot(r->node->c, snapshot_cb, r);
    if (rv != 0) {
        p2praft__req_error(r, P2PRAFT_API_FAILED,
                           "cannot take a snapshot: %s",
                           p2praft_strerror(rv));
        return;
    }
    r->pending++;
    r->phase = P2PRAFT__REQ_BUSY;
}

/* ---- capi: SNAPSHOT (end) ---- */

void p2praft__req_step(struct p2praft__req *r)
{
    struct p2praft_node *n = r->node;
    raft_id leader_id = 0;
    const char *leader = NULL;

    if (r->phase == P2PRAFT__REQ_DONE) {
        return;
    }
    if (n->stopping) {
        p2praft__req_fail(r, "shutting down");
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
    if (r->q.op == P2PRAFT_API_SNAPSHOT_NOW) {
        take_snapshot(r);
        return;
    }
    if ((r->q.op == P2PRAFT_API_GET || r->q.op == P2PRAFT_API_LS) &&
        (r->q.flags & P2PRAFT__API_CONSISTENT) == 0) {
        serve_read(r);
        return;
    }
    if (p2praft__api_is_operator(r->q.op) &&
        (r->q.op != P2PRAFT_API_CLUSTER ||
         raft_state(&n->raft) == RAFT_LEADER)) {
        p2praft__req_serve_operator(r);
        return;
    }
    if (p2praft__api_is_member(r->q.op)) {
        /* Served here when this node leads (members.c); else forwarded. */
        if (p2praft__members_serve(r)) {
            return;
        }
    } else if (r->q.op != P2PRAFT_API_GET && r->q.op != P2PRAFT_API_LS &&
               r->q.op != P2PRAFT_API_BARRIER &&
               r->q.op != P2PRAFT_API_CLUSTER &&
               !p2praft__req_is_write(r->q.op)) {
        p2praft__req_error(r, P2PRAFT_API_BADREQ,
                           "operation %u is not served here", r->q.op);
        return;
    }
    if (raft_state(&n->raft) == RAFT_LEADER) {
        commit(r);
        return;
    }
    /* A write, a barrier, CLUSTER or a membership op on a follower: only
     * the leader can serve it, forward it. */
    if (n->members.removed && !r->local_only) {
        /* Nobody would take it from here: nothing is submitted. */
        p2praft__req_error(r, P2PRAFT_API_FAILED,
                           "this node was removed from the cluster: ask a "
                           "member");
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
            char why[128];
            if (r->phase == P2PRAFT__REQ_RETRY) {
                snprintf(why, sizeof(why), "no leader reachable within %u ms",
                         n->cfg.timeout_ms);
            } else {
                snprintf(why, sizeof(why), "timed out after %u ms",
                         n->cfg.timeout_ms);
            }
            p2praft__req_fail(r, why);
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
        p2praft__req_fail(r, "shutting down");
    }
}

/* The catch-up barrier answered (or gave up): nothing to hand anyone. */
static void catchup_reply(void *owner, struct p2praft__req *r,
                          uint8_t *frame, size_t len)
{
    struct p2praft_node *n = owner;
    (void)r;
    (void)len;
    lp2p__free(frame);
    n->catching_up = false;
}

static const struct p2praft__req_owner_ops catchup_owner = {catchup_reply};

void p2praft__reqs_observe(struct p2praft_node *n,
                           const struct raft_message *m)
{
    const struct raft_append_entries *ae = &m->append_entries;
    if (m->type != RAFT_APPEND_ENTRIES || ae->leader_commit == 0 ||
        ae->term < n->seen_commit_term) {
        return;
    }
    if (ae->term > n->seen_commit_term) {
        n->seen_commit_term = ae->term;
        n->seen_commit = 0;
    }
    if (ae->leader_commit > n->seen_commit) {
        n->seen_commit = ae->leader_commit;
    }
}

/* On the hashicorp wire: applied up to what the current leader had
 * committed when it last said so (after this node started, since the
 * counters start at zero). A Go leader answers no barrier; a C leader
 * would, but this is as good and costs nothing. */
static bool caught_up_by_leader_commit(struct p2praft_node *n)
{
    return n->cfg.wire == P2PRAFT_WIRE_HASHICORP && n->seen_commit > 0 &&
           n->seen_commit_term == raft_current_term(&n->raft) &&
           raft_last_applied(&n->raft) >= n->seen_commit;
}

void p2praft__reqs_catch_up(struct p2praft_node *n)
{
    struct p2praft__req *r;
    if (n->caught_up || n->stopping) {
        return;
    }
    if (caught_up_by_leader_commit(n)) {
        n->caught_up = true;
        LOG_WARN(MODULE, "caught up with the leader at index %llu",
                 (unsigned long long)n->seen_commit);
        return;
    }
    if (n->catching_up) {
        return;
    }
    r = p2praft__req_new(n, &catchup_owner, n);
    if (r == NULL) {
        return; /* the next tick tries again */
    }
    r->q.op = P2PRAFT_API_BARRIER;
    n->catching_up = true;
    p2praft__req_step(r);
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
