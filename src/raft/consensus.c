/*
 * Consensus (state mode) and OpLog (op mode), and the raft FSM behind them.
 *
 * Happy path of a commit (loop thread):
 *   commit_*()  encodes the value, queues a `struct commit` and starts an
 *               idle handle;
 *   flush()     (idle phase of the same loop turn) packs every queued commit
 *               into ONE raft entry -- group commit -- and raft_apply()s it;
 *   fsm_apply() applies each sub-entry in order and stores each commit's own
 *               result (status, and a copy of the state right after it, or,
 *               for an op type that applies in place, the op's result);
 *   apply_cb()  raft confirms the entry: every commit's callback runs.
 *
 * Entry format (version 1):
 *   u8 0x01 | u64be batch id | varint n | n x (u8 kind | varint len | bytes)
 *   | 0..7 zero bytes (raft_uv wants entry sizes in multiples of 8)
 * kind is op, state or rollback: a rollback is explicit, never guessed from
 * a decode failure (seed issue #27). The batch id (a per-node random nonce
 * plus a counter) lets the FSM find the leader's waiting commits without
 * relying on raft's result pointer, which followers would leak.
 *
 * Failure modes, and what each says about the outcome (the one rule:
 * P2PRAFT_ENOTLEADER and the other "not applied" codes only where nothing
 * reached raft's log; see p2praft_outcome_unknown()):
 *   - no actor or raft when the commit is made -> ENOACTOR, ENORAFT,
 *     returned by the call (no callback); no leadership when the group is
 *     flushed -> ENOTLEADER: nothing submitted;
 *   - this node's storage stalled or too far behind (raft/io.h) -> ERAFT:
 *     nothing submitted;
 *   - raft_apply() refusing in its early checks (not leader, no disk space
 *     on a majority) -> ENOTLEADER / ERAFT: nothing submitted; failing
 *     later (the entry may sit in raft's log and be replicated) ->
 *     EUNKNOWN;
 *   - raft failing a submitted entry (leadership lost, I/O) -> EUNKNOWN, or
 *     ESHUTDOWN when raft is closing: the entry may still be committed by
 *     the next leader;
 *   - the per-commit deadline (1 s default) -> ETIMEDOUT, outcome unknown,
 *     and a later apply of that entry is simply not reported.
 *
 * Two ways to apply an op (struct p2praft_op_type): apply_to builds a new
 * state from the current one, which then replaces it (every op costs a
 * state's worth of copying, and the commit callback gets another copy);
 * apply_in_place changes the current state under `mu` and yields a small
 * result, which the commit callback and the update subscribers get instead.
 * Either way a failed apply marks the node inconsistent and answers
 * EAPPLY; apply_in_place promises to leave the state as it was when it
 * fails, so no half-applied op is ever visible.
 *
 * Threads: the FSM, the queues and the callbacks live on the loop thread.
 * `mu` guards what other threads read: the state and its flags, and the
 * subscribers. Blocking commits from other threads cross over on a
 * loop-call bridge (util/bridge.h). A prepare handle runs once per loop
 * turn (consensus_turn.c): it records the thread running the loop (so that
 * a blocking call on it is refused, whichever thread created the
 * consensus), reports leader changes, and completes snapshot requests
 * (p2praft_consensus_snapshot(), which lowers raft's snapshot threshold
 * to 1 until a snapshot covers them).
 *
 * Files: this one holds the commits, the blocking forms, the reads and the
 * lifecycle; fsm.c the FSM, consensus_sub.c the subscribers,
 * consensus_turn.c the per-turn work; consensus_int.h their shared
 * structures.
 */
#include <string.h>

#include "raft/consensus.h"
#include "raft/consensus_int.h"
#include "raft/io.h"
#include "util/buf.h"
#include "util/byteorder.h"
#include "util/heap.h"
#include "util/log.h"
#include "util/varint.h"

#define MODULE "consensus"

static void complete(struct p2praft_consensus *c, struct commit *cm,
                     int status, const char *errmsg);
static void xsnap_cb(void *ctx, int status, uint64_t index);

/* ---- commits ------------------------------------------------------------ */

static const char *status_msg(int status)
{
    return lp2p_strerror(status);
}

static struct commit *first_commit(struct p2praft_consensus *c)
{
    struct lp2p__list *q = lp2p__list_first(&c->commits);
    return q != NULL ? LP2P__CONTAINER_OF(q, struct commit, link) : NULL;
}

static void unlink_commit(struct p2praft_consensus *c, struct commit *cm)
{
    (void)c;
    lp2p__list_remove(&cm->link);
    lp2p__list_remove(&cm->qlink); /* from whichever queue holds it */
    if (cm->batch != NULL) {
        cm->batch->commits[cm->slot] = NULL;
        cm->batch = NULL;
    }
}

static void complete(struct p2praft_consensus *c, struct commit *cm,
                     int status, const char *errmsg)
{
    void *st = NULL;
    unlink_commit(c, cm);
    if (status == 0) {
        st = cm->state;
        cm->state = NULL;
    }
    if (status != 0 && errmsg == NULL) {
        errmsg = status_msg(status);
    }
    if (cm->cb != NULL) {
        uint64_t outer = c->cb_index;
        c->cb_index = status == 0 ? cm->index : 0;
        cm->cb(cm->ctx, status, st, status == 0 ? NULL : errmsg);
        c->cb_index = outer;
    } else {
        p2praft_value_destroy(p2praft__answer_type(c, cm->kind), st);
    }
    p2praft_value_destroy(p2praft__answer_type(c, cm->kind), cm->state);
    lp2p__free(cm->payload);
    lp2p__free(cm);
}

static void timer_cb(uv_timer_t *t);

static void rearm(struct p2praft_consensus *c)
{
    struct commit *cm;
    uint64_t now, wait;
    if (c->closing) {
        return;
    }
    cm = first_commit(c);
    if (cm == NULL) {
        uv_timer_stop(&c->timer);
        return;
    }
    now = uv_now(c->loop);
    wait = cm->deadline > now ? cm->deadline - now : 0;
    uv_timer_start(&c->timer, timer_cb, wait, 0);
}

static void timer_cb(uv_timer_t *t)
{
    struct p2praft_consensus *c = t->data;
    uint64_t now = uv_now(c->loop);
    struct commit *cm;
    while ((cm = first_commit(c)) != NULL && cm->deadline <= now) {
        LOG_DEBUG(MODULE, "commit timed out after %u ms", c->timeout_ms);
        complete(c, cm, LP2P_ETIMEDOUT,
                 "commit timed out: the outcome is unknown");
    }
    rearm(c);
}

/* raft_apply() returned rv: did the entry reach raft's log? Only its early
 * checks (leadership, disk capacity of a majority) return before the entry
 * was appended (libraft 0.22 ClientSubmit); any later failure leaves the
 * entry possibly in the log, to be replicated by this or the next leader. */
static int map_submit_error(int rv)
{
    switch (rv) {
    case RAFT_NOTLEADER:
        return LP2P_ENOTLEADER;
    case RAFT_NOSPACE:
        return LP2P_ERAFT;
    default:
        return LP2P_EUNKNOWN;
    }
}

/* Raft failed a submitted entry (apply callback, status rv != 0): its
 * outcome is unknown; ESHUTDOWN when raft is closing (raft_close() fails a
 * leader's pending entries with RAFT_LEADERSHIPLOST). */
static int map_apply_error(struct raft *r, int rv)
{
    if (rv == RAFT_SHUTDOWN || rv == RAFT_CANCELED ||
        (r != NULL && r->legacy.closing)) {
        return LP2P_ESHUTDOWN;
    }
    return LP2P_EUNKNOWN;
}

/* Fail every commit of the queue `group` (the first one each time: a
 * callback may complete others). */
static void fail_all(struct p2praft_consensus *c, struct lp2p__list *group,
                     int status, const char *msg)
{
    struct lp2p__list *q;
    while ((q = lp2p__list_first(group)) != NULL) {
        complete(c, LP2P__CONTAINER_OF(q, struct commit, qlink), status, msg);
    }
}

static void batch_free(struct p2praft_consensus *c, struct batch *b)
{
    (void)c;
    lp2p__list_remove(&b->link);
    lp2p__free(b->commits);
    lp2p__free(b);
}

static void apply_cb(struct raft_apply *req, int status, void *result)
{
    struct batch *b = req->data;
    struct p2praft_consensus *c = b->c;
    size_t i;
    (void)result;
    for (i = 0; i < b->n; i++) {
        struct commit *cm = b->commits[i];
        if (cm == NULL) {
            continue; /* timed out meanwhile */
        }
        /* Applied means committed, whatever raft says afterwards (an entry
         * of a deposed leader can still be committed by its successor). */
        if (cm->applied) {
            complete(c, cm, cm->result,
                     cm->result == LP2P_EAPPLY
                         ? "committed, but apply_to failed: state inconsistent"
                         : NULL);
        } else {
            struct raft *r = cm->actor != NULL ? cm->actor->raft : NULL;
            int st = map_apply_error(r, status);
            char msg[256];
            if (st == LP2P_ESHUTDOWN) {
                snprintf(msg, sizeof(msg),
                         "shutting down: the outcome is unknown");
            } else {
                snprintf(msg, sizeof(msg), "raft: %s: the outcome is unknown",
                         status != 0 ? raft_strerror(status)
                                     : "entry confirmed but not applied");
            }
            complete(c, cm, st, msg);
        }
    }
    batch_free(c, b);
    rearm(c);
}

/* Is the actor able to submit now? 0 or the error, with a message. */
static int check_actor(struct p2praft_consensus *c, struct p2praft_actor *a,
                       char *msg, size_t len)
{
    char leader[160];
    if (a == NULL) {
        snprintf(msg, len, "%s", lp2p_strerror(LP2P_ENOACTOR));
        return LP2P_ENOACTOR;
    }
    if (a->raft == NULL) {
        snprintf(msg, len, "%s", lp2p_strerror(LP2P_ENORAFT));
        return LP2P_ENORAFT;
    }
    if (a->raft->legacy.closing) {
        /* libraft 0.22 must not be handed entries once raft_close() ran. */
        snprintf(msg, len, "raft is shutting down");
        return LP2P_ESHUTDOWN;
    }
    if (p2praft__fsm_consensus(a->raft->fsm) != c) {
        snprintf(msg, len, "the actor's raft does not run this consensus' FSM");
        return LP2P_EINVAL;
    }
    if (raft_state(a->raft) != RAFT_LEADER) {
        p2praft__actor_leader_msg(a, leader, sizeof(leader));
        if (leader[0] != '\0') {
            snprintf(msg, len, "this actor is not the leader; the leader is %s",
                     leader);
        } else {
            snprintf(msg, len,
                     "this actor is not the leader; the leader is unknown");
        }
        return LP2P_ENOTLEADER;
    }
    if (p2praft__io_storage_behind(a->raft->io, msg, len)) {
        /* Nothing reaches raft: the entry would only queue behind the
         * unwritten ones (raft/io.h). */
        return LP2P_ERAFT;
    }
    return 0;
}

/* Submit the commits of the queue `list` (all of `actor`) as one entry;
 * each leaves `list`, for its batch or its callback. */
static void flush_group(struct p2praft_consensus *c, struct lp2p__list *list,
                        struct p2praft_actor *actor)
{
    struct lp2p__list *q, *next;
    struct lp2p_buf e;
    struct batch *b = NULL;
    struct raft_buffer rb;
    uint8_t hdr[9 + LP2P_VARINT_MAX], vi[LP2P_VARINT_MAX];
    size_t n = 0, i;
    char msg[256];
    int rv, st;

    rv = check_actor(c, actor, msg, sizeof(msg));
    if (rv != 0) {
        fail_all(c, list, rv, msg);
        return;
    }
    LP2P__LIST_FOREACH_SAFE(q, next, list) {
        n++;
    }
    b = lp2p__calloc(1, sizeof(*b));
    if (b == NULL) {
        fail_all(c, list, LP2P_ENOMEM, NULL);
        return;
    }
    b->commits = lp2p__calloc(n, sizeof(*b->commits));
    if (b->commits == NULL) {
        lp2p__free(b);
        fail_all(c, list, LP2P_ENOMEM, NULL);
        return;
    }
    b->c = c;
    b->n = n;
    b->id = c->nonce + c->next_id++;
    if (c->seed) {
        /* One commit, its bare bytes (kept to recognise it when applied). */
        struct commit *cm = LP2P__CONTAINER_OF(lp2p__list_first(list),
                                               struct commit, qlink);
        rb.len = cm->len;
        rb.base = raft_malloc(rb.len > 0 ? rb.len : 1);
        if (rb.base == NULL) {
            lp2p__free(b->commits);
            lp2p__free(b);
            fail_all(c, list, LP2P_ENOMEM, NULL);
            return;
        }
        memcpy(rb.base, cm->payload, cm->len);
        goto submit;
    }
    hdr[0] = P2PRAFT__ENTRY_V1;
    lp2p__put64(hdr + 1, b->id);
    lp2p__buf_init(&e);
    rv = lp2p__buf_append(&e, hdr, 9 + lp2p__varint_encode(n, hdr + 9));
    LP2P__LIST_FOREACH_SAFE(q, next, list) {
        struct commit *cm = LP2P__CONTAINER_OF(q, struct commit, qlink);
        if (rv != 0) {
            break;
        }
        rv = lp2p__buf_append_byte(&e, cm->kind);
        if (rv == 0) {
            rv = lp2p__buf_append(&e, vi, lp2p__varint_encode(cm->len, vi));
        }
        if (rv == 0) {
            rv = lp2p__buf_append(&e, cm->payload, cm->len);
        }
    }
    if (rv != 0) {
        goto err;
    }
    /* raft_uv wants entry sizes in multiples of 8: zero padding. */
    rb.len = (e.len + 7) & ~(size_t)7;
    rb.base = raft_malloc(rb.len);
    if (rb.base == NULL) {
        rv = LP2P_ENOMEM;
        goto err;
    }
    memcpy(rb.base, e.data, e.len);
    memset((uint8_t *)rb.base + e.len, 0, rb.len - e.len);
    lp2p__buf_free(&e);
submit:
    b->req.data = b;
    rv = raft_apply(actor->raft, &b->req, &rb, 1, apply_cb);
    if (rv != 0) {
        /* libraft 0.22 releases the buffer itself when the failure comes
         * from the I/O layer; only its early checks (leadership, disk
         * capacity) return before ownership moved. */
        if (rv == RAFT_NOTLEADER || rv == RAFT_NOSPACE) {
            raft_free(rb.base);
        }
        st = map_submit_error(rv);
        snprintf(msg, sizeof(msg), "raft_apply: %s%s", raft_strerror(rv),
                 st == LP2P_EUNKNOWN ? ": the outcome is unknown" : "");
        lp2p__free(b->commits);
        lp2p__free(b);
        fail_all(c, list, st, msg);
        return;
    }
    /* Registered only now: the FSM cannot apply it before we return. */
    lp2p__list_insert_tail(&c->batches, &b->link);
    for (i = 0; (q = lp2p__list_first(list)) != NULL; i++) {
        struct commit *cm = LP2P__CONTAINER_OF(q, struct commit, qlink);
        lp2p__list_remove(&cm->qlink);
        cm->batch = b;
        cm->slot = i;
        b->commits[i] = cm;
        if (!c->seed) {
            lp2p__free(cm->payload);
            cm->payload = NULL;
        }
    }
    return;

err:
    lp2p__buf_free(&e);
    lp2p__free(b->commits);
    lp2p__free(b);
    fail_all(c, list, rv, NULL);
}

/* Flush the queue: one raft entry per run of commits with the same actor
 * (normally the whole queue). */
static void flush(struct p2praft_consensus *c)
{
    struct lp2p__list rest, group, *q;
    lp2p__list_take(&rest, &c->queue);
    while ((q = lp2p__list_first(&rest)) != NULL) {
        struct p2praft_actor *actor =
            LP2P__CONTAINER_OF(q, struct commit, qlink)->actor;
        lp2p__list_init(&group);
        while ((q = lp2p__list_first(&rest)) != NULL &&
               LP2P__CONTAINER_OF(q, struct commit, qlink)->actor == actor) {
            lp2p__list_remove(q);
            lp2p__list_insert_tail(&group, q);
            if (c->seed) {
                break; /* no group commit in the seed's format */
            }
        }
        flush_group(c, &group, actor);
    }
}

static void idle_cb(uv_idle_t *h)
{
    struct p2praft_consensus *c = h->data;
    uv_idle_stop(&c->idle);
    flush(c);
}

/* Queue a commit whose payload (owned) is already encoded. */
static int enqueue(struct p2praft_consensus *c, struct p2praft_actor *actor,
                   uint8_t kind, uint8_t *payload, size_t len,
                   p2praft_commit_cb cb, void *ctx)
{
    struct commit *cm;
    int rv;
    if (c->closing) {
        lp2p__free(payload);
        return LP2P_ESHUTDOWN;
    }
    /* The rule: what the call can see is wrong is returned, and the
     * callback never runs; the callback reports what happens later. */
    rv = p2praft__usable_actor(c, actor);
    if (rv != 0) {
        lp2p__free(payload);
        return rv;
    }
    cm = lp2p__calloc(1, sizeof(*cm));
    if (cm == NULL) {
        lp2p__free(payload);
        return LP2P_ENOMEM;
    }
    cm->actor = actor;
    cm->kind = kind;
    cm->payload = payload;
    cm->len = len;
    cm->cb = cb;
    cm->ctx = ctx;
    cm->deadline = uv_now(c->loop) + c->timeout_ms;
    lp2p__list_insert_tail(&c->commits, &cm->link);
    lp2p__list_insert_tail(&c->queue, &cm->qlink);
    if (!uv_is_active((uv_handle_t *)&c->idle)) {
        uv_idle_start(&c->idle, idle_cb);
    }
    if (!uv_is_active((uv_handle_t *)&c->timer)) {
        rearm(c);
    }
    return 0;
}

static int submit(struct p2praft_consensus *c, struct p2praft_actor *actor,
                  uint8_t kind,
                  const struct p2praft_type *t, const void *value,
                  p2praft_commit_cb cb, void *ctx)
{
    uint8_t *payload;
    size_t len;
    int rv;
    if (c == NULL || value == NULL) {
        return LP2P_EINVAL;
    }
    rv = p2praft_encode(t, value, &payload, &len);
    if (rv != 0) {
        return rv;
    }
    return enqueue(c, actor, kind, payload, len, cb, ctx);
}

int p2praft_consensus_commit_state(struct p2praft_consensus *c,
                                   const void *state, p2praft_commit_cb cb,
                                   void *ctx)
{
    if (c == NULL) {
        return LP2P_EINVAL;
    }
    return submit(c, c->actor, P2PRAFT__ENTRY_STATE, c->st, state, cb, ctx);
}

int p2praft_consensus_commit_op(struct p2praft_consensus *c, const void *op,
                                p2praft_commit_cb cb, void *ctx)
{
    if (c == NULL || c->op == NULL) {
        return LP2P_EINVAL;
    }
    return submit(c, c->actor, P2PRAFT__ENTRY_OP, c->op->type, op, cb, ctx);
}

int p2praft_consensus_rollback(struct p2praft_consensus *c, const void *state,
                               p2praft_commit_cb cb, void *ctx)
{
    if (c == NULL) {
        return LP2P_EINVAL;
    }
    return submit(c, c->actor, P2PRAFT__ENTRY_ROLLBACK, c->st, state, cb, ctx);
}

/* ---- blocking forms ------------------------------------------------------ */

/* The commit of an xcall completed: wake its thread. */
static void xcall_cb(void *ctx, int status, void *state, const char *errmsg)
{
    struct xcall *x = ctx;
    x->state = state;
    snprintf(x->errmsg, sizeof(x->errmsg), "%s", errmsg != NULL ? errmsg : "");
    lp2p__loopcall_done(&x->lc, status);
}

/* A snapshot of an xcall was stored (or failed): wake its thread. */
static void xsnap_cb(void *ctx, int status, uint64_t index)
{
    struct xcall *x = ctx;
    x->index = index;
    lp2p__loopcall_done(&x->lc, status);
}

/*
 * May this thread block until the loop answers? Not on the loop's own
 * thread: the one seen running the loop (p2praft__turn_cb()), or, before the loop
 * ever turned, the creator's, which may be about to run it. The creator
 * waits up to a second for some thread to turn the loop: a program that
 * set up on one thread and runs the loop on another may call at once.
 * 0 or LP2P_ESTATE.
 */
int p2praft__may_block(struct p2praft_consensus *c)
{
    pthread_t self = pthread_self();
    struct timespec ts;
    int rv;
    pthread_mutex_lock(&c->mu);
    if (!c->loop_known && pthread_equal(self, c->creator)) {
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        while (!c->loop_known &&
               pthread_cond_timedwait(&c->cv, &c->mu, &ts) != ETIMEDOUT) {
        }
        if (!c->loop_known) {
            pthread_mutex_unlock(&c->mu);
            return LP2P_ESTATE;
        }
    }
    rv = c->loop_known && pthread_equal(self, c->loop_thread) ? LP2P_ESTATE
                                                              : 0;
    pthread_mutex_unlock(&c->mu);
    return rv;
}

/* Loop thread: queue the commit of a blocked thread. */
static void xcall_run(struct lp2p__bridge *b, struct lp2p__loopcall *lc)
{
    struct p2praft_consensus *c =
        LP2P__CONTAINER_OF(b, struct p2praft_consensus, calls);
    struct xcall *x = LP2P__CONTAINER_OF(lc, struct xcall, lc);
    uint8_t *payload = x->payload;
    int rv;
    if (x->kind == XCALL_SNAPSHOT) {
        rv = p2praft_consensus_snapshot(c, xsnap_cb, x);
        if (rv != 0) {
            lp2p__loopcall_done(&x->lc, rv);
        }
        return;
    }
    x->payload = NULL; /* enqueue() takes it, even when it fails */
    rv = enqueue(c, c->actor, x->kind, payload, x->len, xcall_cb, x);
    if (rv != 0) {
        xcall_cb(x, rv, NULL, NULL);
    }
}

static int submit_wait(struct p2praft_consensus *c, uint8_t kind,
                       const struct p2praft_type *t, const void *value,
                       void **agreed, char *errmsg, size_t errmsg_len)
{
    struct xcall x;
    int rv;

    if (errmsg != NULL && errmsg_len > 0) {
        errmsg[0] = '\0';
    }
    if (agreed != NULL) {
        *agreed = NULL;
    }
    if (c == NULL || value == NULL) {
        return LP2P_EINVAL;
    }
    /* Waiting on the loop thread would block the very loop that must
     * answer. */
    rv = p2praft__may_block(c);
    if (rv != 0) {
        return rv;
    }
    memset(&x, 0, sizeof(x));
    rv = p2praft_encode(t, value, &x.payload, &x.len);
    if (rv != 0) {
        return rv;
    }
    x.kind = kind;
    rv = lp2p__bridge_call(&c->calls, &x.lc);
    lp2p__free(x.payload); /* not taken: the bridge was shut */
    if (errmsg != NULL && errmsg_len > 0) {
        snprintf(errmsg, errmsg_len, "%s", x.errmsg);
    }
    if (agreed != NULL) {
        *agreed = x.state;
    } else {
        p2praft_value_destroy(p2praft__answer_type(c, kind), x.state);
    }
    return rv;
}

int p2praft_consensus_commit_state_wait(struct p2praft_consensus *c,
                                        const void *state, void **agreed,
                                        char *errmsg, size_t errmsg_len)
{
    if (c == NULL) {
        return LP2P_EINVAL;
    }
    return submit_wait(c, P2PRAFT__ENTRY_STATE, c->st, state, agreed, errmsg,
                       errmsg_len);
}

int p2praft_consensus_commit_op_wait(struct p2praft_consensus *c,
                                     const void *op, void **agreed,
                                     char *errmsg, size_t errmsg_len)
{
    if (c == NULL || c->op == NULL) {
        return LP2P_EINVAL;
    }
    return submit_wait(c, P2PRAFT__ENTRY_OP, c->op->type, op, agreed, errmsg,
                       errmsg_len);
}

int p2praft_consensus_rollback_wait(struct p2praft_consensus *c,
                                    const void *state, char *errmsg,
                                    size_t errmsg_len)
{
    if (c == NULL) {
        return LP2P_EINVAL;
    }
    return submit_wait(c, P2PRAFT__ENTRY_ROLLBACK, c->st, state, NULL, errmsg,
                       errmsg_len);
}

/* ---- reads --------------------------------------------------------------- */

int p2praft_consensus_get_current_state(struct p2praft_consensus *c,
                                        void **out)
{
    int rv = 0;
    if (c == NULL || out == NULL) {
        return LP2P_EINVAL;
    }
    *out = NULL;
    pthread_mutex_lock(&c->mu);
    if (c->inconsistent) {
        rv = LP2P_EINCONSISTENT;
    } else if (!c->initialized) {
        rv = LP2P_ENOSTATE;
    } else {
        *out = p2praft_value_dup(c->st, c->state);
        if (*out == NULL) {
            rv = LP2P_ENOMEM;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return rv;
}

int p2praft_consensus_get_log_head(struct p2praft_consensus *c, void **out)
{
    return p2praft_consensus_get_current_state(c, out);
}

uint64_t p2praft__consensus_cb_index(const struct p2praft_consensus *c)
{
    return c->cb_index;
}

uint64_t p2praft_consensus_applied(struct p2praft_consensus *c)
{
    uint64_t n;
    pthread_mutex_lock(&c->mu);
    n = c->applied;
    pthread_mutex_unlock(&c->mu);
    return n;
}

uint64_t p2praft_consensus_restored(struct p2praft_consensus *c)
{
    uint64_t n;
    pthread_mutex_lock(&c->mu);
    n = c->restored;
    pthread_mutex_unlock(&c->mu);
    return n;
}

void p2praft__consensus_snapshot_bytes(struct p2praft_consensus *c,
                                       uint64_t *last, uint64_t *total)
{
    pthread_mutex_lock(&c->mu);
    *last = c->snapshot_bytes_last;
    *total = c->snapshot_bytes_total;
    pthread_mutex_unlock(&c->mu);
}

uint64_t p2praft_consensus_snapshots(struct p2praft_consensus *c)
{
    uint64_t n;
    pthread_mutex_lock(&c->mu);
    n = c->snapshots;
    pthread_mutex_unlock(&c->mu);
    return n;
}

/* ---- lifecycle ----------------------------------------------------------- */

static uint64_t random_nonce(void)
{
    struct timespec ts;
    uint64_t x;
    FILE *f = fopen("/dev/urandom", "rb");
    if (f != NULL) {
        size_t got = fread(&x, 1, sizeof(x), f);
        fclose(f);
        if (got == sizeof(x)) {
            return x & ~(uint64_t)0xffffffff; /* low half: the counter */
        }
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    x = (uint64_t)ts.tv_sec * 1000000007u ^ (uint64_t)ts.tv_nsec;
    return (x ^ (uint64_t)(uintptr_t)&x) << 32;
}

static int consensus_new(struct p2praft_consensus **out, uv_loop_t *loop,
                         const struct p2praft_type *st,
                         const struct p2praft_op_type *op,
                         const void *initial)
{
    struct p2praft_consensus *c;
    if (out == NULL || loop == NULL || st == NULL || st->size == 0 ||
        (op != NULL && (op->type == NULL || (op->apply_to == NULL &&
                                             op->apply_in_place == NULL)))) {
        return LP2P_EINVAL;
    }
    c = lp2p__calloc(1, sizeof(*c));
    if (c == NULL) {
        return LP2P_ENOMEM;
    }
    c->state = initial != NULL ? p2praft_value_dup(st, initial)
                               : p2praft_value_new(st);
    if (c->state == NULL) {
        lp2p__free(c);
        return LP2P_ENOMEM;
    }
    if (lp2p__bridge_init(&c->calls, loop, xcall_run, NULL) != 0) {
        p2praft_value_destroy(st, c->state);
        lp2p__free(c);
        return LP2P_EIO;
    }
    uv_unref((uv_handle_t *)&c->calls.async);
    lp2p__list_init(&c->commits);
    lp2p__list_init(&c->queue);
    lp2p__list_init(&c->batches);
    c->loop = loop;
    c->creator = pthread_self();
    lp2p__list_init(&c->snaps);
    c->st = st;
    c->op = op;
    c->timeout_ms = P2PRAFT_COMMIT_TIMEOUT_MS;
    c->nonce = random_nonce();
    p2praft__fsm_init(c);
    {
        pthread_mutexattr_t attr;
        pthread_mutexattr_init(&attr);
        pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
        pthread_mutex_init(&c->mu, &attr);
        pthread_mutexattr_destroy(&attr);
    }
    pthread_cond_init(&c->cv, NULL);
    uv_prepare_init(loop, &c->prepare);
    c->prepare.data = c;
    uv_prepare_start(&c->prepare, p2praft__turn_cb);
    uv_unref((uv_handle_t *)&c->prepare);
    uv_idle_init(loop, &c->idle);
    c->idle.data = c;
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    uv_unref((uv_handle_t *)&c->timer);
    c->open_handles = 4;
    *out = c;
    return 0;
}

int p2praft_consensus_new(struct p2praft_consensus **out, uv_loop_t *loop,
                          const struct p2praft_type *state_type,
                          const void *initial)
{
    return consensus_new(out, loop, state_type, NULL, initial);
}

int p2praft_oplog_new(struct p2praft_consensus **out, uv_loop_t *loop,
                      const struct p2praft_type *state_type,
                      const struct p2praft_op_type *op_type,
                      const void *initial)
{
    if (op_type == NULL) {
        return LP2P_EINVAL;
    }
    return consensus_new(out, loop, state_type, op_type, initial);
}

/* One of the three handles (idle, timer, bridge) closed: free `c` after
 * the last. */
static void closed_one(struct p2praft_consensus *c)
{
    struct p2praft_sub *s, *next;
    if (--c->open_handles > 0) {
        return;
    }
    for (s = c->subs; s != NULL; s = next) {
        next = s->next;
        pthread_cond_destroy(&s->cv);
        lp2p__free(s);
    }
    p2praft_value_destroy(c->st, c->state);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    lp2p__free(c);
}

static void handle_closed(uv_handle_t *h)
{
    closed_one(h->data);
}

static void bridge_closed(struct lp2p__bridge *b)
{
    closed_one(LP2P__CONTAINER_OF(b, struct p2praft_consensus, calls));
}

void p2praft_consensus_free(struct p2praft_consensus *c)
{
    struct commit *cm;
    struct lp2p__list *q;
    if (c == NULL) {
        return;
    }
    c->closing = true;
    /* Queued blocking commits fail with P2PRAFT_ESHUTDOWN; new ones too. */
    lp2p__bridge_close(&c->calls, bridge_closed);
    while ((cm = first_commit(c)) != NULL) {
        complete(c, cm, LP2P_ESHUTDOWN, NULL);
    }
    while ((q = lp2p__list_first(&c->batches)) != NULL) {
        batch_free(c, LP2P__CONTAINER_OF(q, struct batch, link));
    }
    /* Raft is closed (the contract): its threshold is left alone. */
    c->snap_raft = NULL;
    p2praft__snaps_complete(c, LP2P_ESHUTDOWN, 0, true);
    c->leader_cb = NULL;
    pthread_mutex_lock(&c->mu);
    pthread_cond_broadcast(&c->cv); /* wait_for_leader() sees `closing` */
    pthread_mutex_unlock(&c->mu);
    uv_timer_stop(&c->timer);
    uv_idle_stop(&c->idle);
    uv_prepare_stop(&c->prepare);
    uv_close((uv_handle_t *)&c->idle, handle_closed);
    uv_close((uv_handle_t *)&c->timer, handle_closed);
    uv_close((uv_handle_t *)&c->prepare, handle_closed);
}

struct raft_fsm *p2praft_consensus_fsm(struct p2praft_consensus *c)
{
    return c != NULL ? &c->fsm : NULL;
}

void p2praft_consensus_set_actor(struct p2praft_consensus *c,
                                 struct p2praft_actor *actor)
{
    if (c != NULL) {
        c->actor = actor;
    }
}

int p2praft_consensus_set_seed_format(struct p2praft_consensus *c, bool on)
{
    if (c == NULL || c->applied > 0 || !lp2p__list_empty(&c->commits)) {
        return LP2P_EINVAL;
    }
    c->seed = on;
    return 0;
}

bool p2praft_consensus_seed_format(const struct p2praft_consensus *c)
{
    return c != NULL && c->seed;
}

void p2praft_consensus_set_timeout(struct p2praft_consensus *c, unsigned ms)
{
    if (c != NULL) {
        c->timeout_ms = ms;
    }
}

/* ---- actor entry point that needs the consensus internals ---------------- */

int p2praft_actor_set_state(struct p2praft_actor *a, const void *state,
                            p2praft_commit_cb cb, void *ctx)
{
    struct p2praft_consensus *c;
    if (a == NULL || state == NULL) {
        return LP2P_EINVAL;
    }
    if (a->raft == NULL) {
        return LP2P_ENORAFT;
    }
    c = p2praft__fsm_consensus(a->raft->fsm);
    if (c == NULL) {
        return LP2P_EINVAL;
    }
    return submit(c, a, P2PRAFT__ENTRY_STATE, c->st, state, cb, ctx);
}
