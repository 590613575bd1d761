/*
 * Watches: a stream of the changes applied on this node, per session and
 * key prefix (see watch.h; format: p2praft.h, "Watch").
 *
 * The node subscribes once to the consensus updates
 * (p2praft_consensus_subscribe_updates()); for each op applied, in apply
 * order, every live watch whose prefix matches gets an event frame with
 * the entry's raft index (raft_last_applied() + 1 while the FSM applies
 * it). Ops that change nothing (a failed cas, a del of a missing key, the
 * NOP barrier) are no events. A snapshot restored, or a whole state
 * committed, says nothing of what changed: every watch reports a loss.
 *
 * Bounded memory: a watch's queue is the event frames handed to its
 * connection and not yet written. Beyond P2PRAFT__WATCH_QUEUE_BYTES or
 * _FRAMES (always one), or when the connection as a whole has
 * P2PRAFT__SESSION_OUT_MAX waiting, events are counted, not queued; once
 * the queue has drained, one DROPPED event with the count goes out, and
 * events flow again. Everything after a loss is dropped until that DROPPED event
 * is queued, so it always comes before any later event: the client knows
 * exactly where to resync.
 *
 * A watch holds one of its session's in-flight slots until its final
 * answer is written (or at once when it ends without one), and counts in
 * node->n_watches while live. Its memory stays with the session until
 * its frames are all written, then it is freed.
 */
#include <string.h>

#include "raft/kv.h"
#include "raft/node.h"
#include "raft/session.h"
#include "raft/watch.h"
#include "util/heap.h"
#include "util/log.h"

#define MODULE "node"

static void maybe_free(struct p2praft__watch *w)
{
    if (w->live || w->answering || w->queued > 0) {
        return;
    }
    lp2p__list_remove(&w->slink);
    lp2p__free(w->prefix);
    lp2p__free(w);
}

/* Queue one event frame for `w`, or count it lost. */
static void emit(struct p2praft__watch *w, uint8_t kind, uint64_t index,
                 const char *key, size_t klen, const void *val, size_t vlen,
                 uint64_t count)
{
    struct lp2p_buf b;
    size_t len = 0, need;
    uint8_t *f;
    need = P2PRAFT__API_PREFIX + P2PRAFT__API_RESP_PAYLOAD +
           2 * P2PRAFT__API_FIELD_PREFIX + klen + vlen;
    if (kind != P2PRAFT_WATCH_DROPPED &&
        (w->dropped > 0 || w->lost_unknown ||
         (w->queued > 0 &&
          (w->queued >= P2PRAFT__WATCH_QUEUE_FRAMES ||
           w->queued_bytes + need > P2PRAFT__WATCH_QUEUE_BYTES ||
           w->s->conn.pending_bytes + need > P2PRAFT__SESSION_OUT_MAX)))) {
        w->dropped++;
        return;
    }
    lp2p__buf_init(&b);
    if (p2praft__api_event_encode(&b, kind, w->id, index, key, klen, val, vlen,
                                  count) != 0) {
        lp2p__buf_free(&b);
        w->dropped++; /* out of memory: still never a silent loss */
        return;
    }
    f = lp2p__buf_detach(&b, &len);
    if (p2praft__session_send(w->s, f, len, P2PRAFT__FRAME_EVENT, w)) {
        w->queued++;
        w->queued_bytes += len;
    } else if (kind != P2PRAFT_WATCH_DROPPED) {
        w->dropped++;
    }
}

/* The queue drained after a loss: say so, then go on. */
static void report_loss(struct p2praft__watch *w)
{
    uint64_t n;
    if (!w->live || w->queued > 0 || (w->dropped == 0 && !w->lost_unknown)) {
        return;
    }
    n = w->lost_unknown ? 0 : w->dropped;
    w->dropped = 0;
    w->lost_unknown = false;
    emit(w, P2PRAFT_WATCH_DROPPED, raft_last_applied(&w->s->node->raft), NULL,
         0, NULL, 0, n);
}

static void on_update(void *ctx, const struct p2praft_update *u)
{
    struct p2praft_node *n = ctx;
    const struct p2praft__kv_op *op = u->op;
    const struct p2praft__kv_state *st = u->state;
    struct lp2p__list *q, *next;
    uint64_t index = raft_last_applied(&n->raft) + 1;
    uint8_t kind;
    size_t klen;
    if (lp2p__list_empty(&n->watches)) {
        return;
    }
    if (u->kind != P2PRAFT_UPDATE_OP) {
        /* The whole state was replaced: what changed is unknown. */
        LP2P__LIST_FOREACH_SAFE(q, next, &n->watches) {
            struct p2praft__watch *w =
                LP2P__CONTAINER_OF(q, struct p2praft__watch, link);
            w->lost_unknown = true;
            report_loss(w);
        }
        return;
    }
    if (!st->ok || op->key == NULL) {
        return; /* nothing changed */
    }
    switch (op->kind) {
    case P2PRAFT__KV_SET:
        kind = P2PRAFT_WATCH_SET;
        break;
    case P2PRAFT__KV_DEL:
        kind = P2PRAFT_WATCH_DEL;
        break;
    case P2PRAFT__KV_CAS:
        kind = P2PRAFT_WATCH_CAS;
        break;
    default:
        return;
    }
    klen = strlen(op->key);
    LP2P__LIST_FOREACH_SAFE(q, next, &n->watches) {
        struct p2praft__watch *w = LP2P__CONTAINER_OF(q, struct p2praft__watch,
                                                      link);
        if (klen >= w->plen && memcmp(op->key, w->prefix, w->plen) == 0) {
            emit(w, kind, index, op->key, klen, op->value.data,
                 kind == P2PRAFT_WATCH_DEL ? 0 : op->value.len, 0);
        }
    }
}

int p2praft__watches_init(struct p2praft_node *n)
{
    n->watch_sub = p2praft_consensus_subscribe_updates(n->c, on_update, n);
    return n->watch_sub != NULL ? 0 : LP2P_ENOMEM;
}

int p2praft__watch_start(struct p2praft__session *s,
                         struct p2praft__api_req *q)
{
    struct p2praft_node *n = s->node;
    struct p2praft__watch *w = lp2p__calloc(1, sizeof(*w));
    if (w == NULL) {
        return LP2P_ENOMEM;
    }
    w->s = s;
    w->id = q->id;
    w->prefix = q->key != NULL ? q->key : lp2p__strdup("");
    q->key = NULL;
    if (w->prefix == NULL) {
        lp2p__free(w);
        return LP2P_ENOMEM;
    }
    w->plen = strlen(w->prefix);
    w->live = true;
    lp2p__list_insert_tail(&n->watches, &w->link);
    lp2p__list_insert_tail(&s->watches, &w->slink);
    n->n_watches++;
    s->inflight++;
    emit(w, P2PRAFT_WATCH_STARTED, raft_last_applied(&n->raft), NULL, 0, NULL,
         0, 0);
    return 0;
}

struct p2praft__watch *p2praft__watch_find(struct p2praft__session *s,
                                           uint32_t id)
{
    struct lp2p__list *q, *next;
    LP2P__LIST_FOREACH_SAFE(q, next, &s->watches) {
        struct p2praft__watch *w = LP2P__CONTAINER_OF(q, struct p2praft__watch,
                                                      slink);
        if ((w->live || w->answering) && w->id == id) {
            return w;
        }
    }
    return NULL;
}

void p2praft__watch_end(struct p2praft__watch *w, bool answer, uint8_t status,
                        const char *msg)
{
    struct p2praft__session *s = w->s;
    if (!w->live) {
        return;
    }
    w->live = false;
    lp2p__list_remove(&w->link);
    s->node->n_watches--;
    if (answer) {
        size_t len = 0;
        uint8_t *f = p2praft__api_response_encode(
            status, w->id, raft_last_applied(&s->node->raft), msg,
            strlen(msg), &len);
        w->answering = true;
        if (!p2praft__session_send(s, f, len, P2PRAFT__FRAME_ANSWER, w)) {
            w->answering = false;
        }
    } else {
        s->inflight--;
    }
    maybe_free(w);
}

void p2praft__watch_sent(struct p2praft__watch *w, bool event, size_t len)
{
    if (event) {
        w->queued--;
        w->queued_bytes -= len;
        report_loss(w);
    } else {
        w->answering = false;
    }
    maybe_free(w);
}

void p2praft__watch_free_all(struct p2praft__session *s)
{
    struct lp2p__list *q;
    /* The connection closed: every frame completed, every watch ended. */
    while ((q = lp2p__list_first(&s->watches)) != NULL) {
        struct p2praft__watch *w = LP2P__CONTAINER_OF(q, struct p2praft__watch,
                                                      slink);
        lp2p__list_remove(&w->slink);
        lp2p__list_remove(&w->link);
        lp2p__free(w->prefix);
        lp2p__free(w);
    }
}

void p2praft__watches_shutdown(struct p2praft_node *n)
{
    struct lp2p__list *q, *next;
    LP2P__LIST_FOREACH_SAFE(q, next, &n->watches) {
        p2praft__watch_end(LP2P__CONTAINER_OF(q, struct p2praft__watch, link),
                           true, P2PRAFT_API_FAILED, "shutting down");
    }
}
