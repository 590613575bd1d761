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
 * loop-call bridge (util/bridge.h). A prepare handle (turn_cb()) runs once
 * per loop turn: it records the thread running the loop (so that a
 * blocking call on it is refused, whichever thread created the
 * consensus), reports leader changes, and completes snapshot requests
 * (p2praft_consensus_snapshot(), which lowers raft's snapshot threshold
 * to 1 until a snapshot covers them).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "raft/codec.h"
#include "raft/consensus.h"
#include "raft/io.h"
#include "raft/snapshot.h"
#include "util/bridge.h"
#include "util/buf.h"
#include "util/byteorder.h"
#include "util/heap.h"
#include "util/list.h"
#include "util/log.h"
#include "util/varint.h"

#define MODULE "consensus"

struct batch;

struct commit {
    struct lp2p__list link;  /* all live commits, in deadline order */
    struct lp2p__list qlink; /* in a queue waiting to be flushed, if linked */
    struct p2praft_actor *actor; /* submits it */
    struct batch *batch;
    size_t slot;
    uint64_t deadline;
    uint8_t kind;
    uint8_t *payload;
    size_t len;
    p2praft_commit_cb cb;
    void *ctx;
    bool applied; /* the FSM stored result/state */
    int result;
    void *state;
    uint64_t index; /* the raft index of the entry that applied it */
};

struct batch {
    struct raft_apply req;
    struct lp2p__list link; /* in c->batches once submitted */
    struct p2praft_consensus *c;
    uint64_t id;
    size_t n;
    struct commit **commits;
};

/* One blocking commit from another thread, on the caller's stack. */
struct xcall {
    struct lp2p__loopcall lc;
    uint8_t kind;
    uint8_t *payload; /* owned until the loop takes it (then NULL) */
    size_t len;
    void *state; /* the answer */
    uint64_t index; /* a snapshot's */
    char errmsg[256];
};

/* xcall kind of a blocking snapshot (not an entry kind). */
#define XCALL_SNAPSHOT 0xff

/* One snapshot asked for (p2praft_consensus_snapshot()). */
struct snapreq {
    struct lp2p__list link;
    uint64_t target; /* the applied index when asked */
    p2praft_snapshot_cb cb;
    void *ctx;
};

struct p2praft_sub {
    struct p2praft_sub *next;
    struct p2praft_consensus *c;
    unsigned cap;
    unsigned pending;
    uint64_t dropped;
    pthread_cond_t cv;
    void (*notify)(void *ctx, struct p2praft_sub *sub);
    /* An update subscriber (p2praft_consensus_subscribe_updates()) has no
     * queue: it sees each update as it is applied. */
    void (*on_update)(void *ctx, const struct p2praft_update *u);
    void *ctx;
};

struct p2praft_consensus {
    uv_loop_t *loop;
    pthread_t creator;     /* the thread that created the consensus */
    pthread_t loop_thread; /* the thread seen running the loop (under mu) */
    bool loop_known;       /* loop_thread is set */
    const struct p2praft_type *st;
    const struct p2praft_op_type *op; /* NULL in state mode */
    struct raft_fsm fsm;
    struct p2praft_actor *actor;
    unsigned timeout_ms;
    uint64_t cb_index;    /* see p2praft__consensus_cb_index() */

    pthread_mutex_t mu; /* guards the fields down to `subs` */
    void *state;
    bool initialized;
    bool inconsistent;
    uint64_t applied;
    uint64_t restored;
    uint64_t snapshots;
    uint64_t snapshot_bytes_last, snapshot_bytes_total;
    struct p2praft_sub *subs;
    pthread_cond_t cv;       /* loop_thread or the leader changed */
    uint64_t leader_id;      /* 0: none known */
    bool leader_self;
    char leader[LP2P_PEER_ID_STRMAX];

    p2praft_leader_cb leader_cb; /* loop thread */
    void *leader_ctx;
    bool leader_fresh;           /* cb new: tell it the current leader */
    struct lp2p__list snaps;     /* struct snapreq, waiting */
    struct raft *snap_raft;      /* whose threshold is lowered, or NULL */
    unsigned snap_threshold;     /* its threshold before */
    uint64_t snap_taking;        /* index of the snapshot being taken */
    bool snap_early;             /* threshold put back when it was stored */

    struct lp2p__list commits; /* all live commits (struct commit) */
    struct lp2p__list queue;   /* queued, not yet flushed (qlink) */
    struct lp2p__list batches; /* submitted to raft (struct batch) */
    uint64_t nonce;
    uint64_t next_id;
    bool seed; /* the seed's log format (p2praft_consensus_set_seed_format) */

    uv_idle_t idle;
    uv_timer_t timer;
    uv_prepare_t prepare; /* every loop turn: see turn_cb() */
    struct lp2p__bridge calls; /* blocking commits from other threads */
    int open_handles;
    bool closing;
};

static void complete(struct p2praft_consensus *c, struct commit *cm,
                     int status, const char *errmsg);
static void turn_cb(uv_prepare_t *h);
static void snaps_complete(struct p2praft_consensus *c, int status,
                           uint64_t index, bool all);
static void xsnap_cb(void *ctx, int status, uint64_t index);
static void snaps_stored(struct p2praft_consensus *c);
static int usable_actor(struct p2praft_consensus *c, struct p2praft_actor *a);

/* ---- FSM ---------------------------------------------------------------- */

static void notify_subs(struct p2praft_consensus *c)
{
    struct p2praft_sub *s;
    /* Called with c->mu held. */
    for (s = c->subs; s != NULL; s = s->next) {
        if (s->on_update != NULL) {
            continue;
        }
        if (s->pending < s->cap) {
            s->pending++;
            pthread_cond_broadcast(&s->cv);
        } else {
            s->dropped++;
            if ((s->dropped & (s->dropped - 1)) == 0) { /* 1, 2, 4, ... */
                LOG_WARN(MODULE,
                         "subscriber queue full (%u): %llu updates dropped",
                         s->cap, (unsigned long long)s->dropped);
            }
        }
    }
}

/* Runs the notify callbacks under `mu` (recursive, so a callback may poll
 * or subscribe; it may unsubscribe only its own subscription). */
static void run_notify(struct p2praft_consensus *c)
{
    struct p2praft_sub *s, *next;
    pthread_mutex_lock(&c->mu);
    for (s = c->subs; s != NULL; s = next) {
        next = s->next;
        if (s->notify != NULL) {
            s->notify(s->ctx, s);
        }
    }
    pthread_mutex_unlock(&c->mu);
}

/* Show one update to the update subscribers (loop thread): before the
 * state changes hands (`prev` is still the current state), or right after
 * an op applied in place (`prev` NULL, `state` the current one). */
static void report_update(struct p2praft_consensus *c,
                          enum p2praft_update_kind kind, const void *op,
                          const void *prev, const void *state,
                          const void *result)
{
    struct p2praft_update u;
    struct p2praft_sub *s;
    u.kind = kind;
    u.op = op;
    u.prev = prev;
    u.state = state;
    u.result = result;
    /* Other threads may subscribe meanwhile; `mu` is recursive. */
    pthread_mutex_lock(&c->mu);
    for (s = c->subs; s != NULL; s = s->next) {
        if (s->on_update != NULL) {
            s->on_update(s->ctx, &u);
        }
    }
    pthread_mutex_unlock(&c->mu);
}

/* Swap in a new state (ownership taken). */
static void set_state(struct p2praft_consensus *c, void *st, bool clear,
                      bool notify)
{
    void *old;
    pthread_mutex_lock(&c->mu);
    old = c->state;
    c->state = st;
    c->initialized = true;
    if (clear) {
        c->inconsistent = false;
    }
    if (notify) {
        notify_subs(c);
    }
    pthread_mutex_unlock(&c->mu);
    p2praft_value_destroy(c->st, old);
    if (notify) {
        run_notify(c);
    }
}

static void mark_inconsistent(struct p2praft_consensus *c)
{
    pthread_mutex_lock(&c->mu);
    c->inconsistent = true;
    pthread_mutex_unlock(&c->mu);
}

/* Does this consensus apply ops in place? */
static bool in_place(const struct p2praft_consensus *c)
{
    return c->op != NULL && c->op->apply_in_place != NULL;
}

/* The type of what a commit of `kind` hands its callback: an in-place op's
 * result, or a copy of the state. */
static const struct p2praft_type *answer_type(const struct p2praft_consensus *c,
                                              uint8_t kind)
{
    return kind == P2PRAFT__ENTRY_OP && in_place(c) ? c->op->result_type
                                                    : c->st;
}

/* Apply the decoded op `v` (borrowed) in place. On success the op's result
 * (owned, NULL without a result type) goes to *result. The hook leaves the
 * state as it was when it fails, so only the mark records the failure. */
static int apply_op_in_place(struct p2praft_consensus *c, void *v,
                             void **result)
{
    const struct p2praft_op_type *ot = c->op;
    void *res = NULL;
    int rv;
    if (ot->result_type != NULL) {
        res = p2praft_value_new(ot->result_type);
        if (res == NULL) {
            /* Committed, but this node could not apply it: never ENOMEM,
             * which would say "not applied". */
            mark_inconsistent(c);
            return LP2P_EAPPLY;
        }
    }
    /* Under the lock: other threads copy the state (get_current_state). */
    pthread_mutex_lock(&c->mu);
    rv = ot->apply_in_place(v, c->state, res, ot->ctx);
    if (rv == 0) {
        c->initialized = true;
    } else {
        c->inconsistent = true;
    }
    pthread_mutex_unlock(&c->mu);
    if (rv != 0) {
        LOG_WARN(MODULE,
                 "apply_in_place failed (%d): state marked inconsistent", rv);
        p2praft_value_destroy(ot->result_type, res);
        return LP2P_EAPPLY;
    }
    report_update(c, P2PRAFT_UPDATE_OP, v, NULL, c->state, res);
    pthread_mutex_lock(&c->mu);
    notify_subs(c);
    pthread_mutex_unlock(&c->mu);
    run_notify(c);
    *result = res;
    return 0;
}

/* Apply one sub-entry. Returns 0 or the status for its committer; an op
 * applied in place leaves its result (owned) in *result. */
static int apply_one(struct p2praft_consensus *c, uint8_t kind,
                     const uint8_t *p, size_t len, void **result)
{
    void *v, *ns;
    int rv;
    *result = NULL;
    switch (kind) {
    case P2PRAFT__ENTRY_STATE:
    case P2PRAFT__ENTRY_ROLLBACK:
        rv = p2praft__decode_new(c->st, p, len, &v);
        if (rv != 0) {
            LOG_ERROR(MODULE, "cannot decode committed state: %s",
                      lp2p_strerror(rv));
            mark_inconsistent(c);
            return LP2P_EAPPLY;
        }
        /* A whole state replaces the log head exactly: it heals an
         * inconsistent node, whether sent as a state or a rollback. */
        report_update(c,
                      kind == P2PRAFT__ENTRY_STATE ? P2PRAFT_UPDATE_STATE
                                                   : P2PRAFT_UPDATE_ROLLBACK,
                      NULL, c->state, v, NULL);
        set_state(c, v, true, true);
        return 0;
    case P2PRAFT__ENTRY_OP:
        if (c->op == NULL) {
            LOG_ERROR(MODULE, "op entry in a state-mode log");
            mark_inconsistent(c);
            return LP2P_EAPPLY;
        }
        rv = p2praft__decode_new(c->op->type, p, len, &v);
        if (rv != 0) {
            LOG_ERROR(MODULE, "cannot decode committed op: %s",
                      lp2p_strerror(rv));
            mark_inconsistent(c);
            return LP2P_EAPPLY;
        }
        if (in_place(c)) {
            rv = apply_op_in_place(c, v, result);
            p2praft_value_destroy(c->op->type, v);
            return rv;
        }
        ns = p2praft_value_new(c->st);
        if (ns == NULL) {
            /* Out of memory while applying: this node can no longer vouch
             * for its state. The entry IS committed: never ENOMEM, which
             * would say "not applied". */
            p2praft_value_destroy(c->op->type, v);
            mark_inconsistent(c);
            return LP2P_EAPPLY;
        }
        rv = c->op->apply_to(v, c->state, ns, c->op->ctx);
        if (rv != 0) {
            p2praft_value_destroy(c->op->type, v);
            LOG_WARN(MODULE, "apply_to failed (%d): state marked inconsistent",
                     rv);
            p2praft_value_destroy(c->st, ns);
            mark_inconsistent(c);
            return LP2P_EAPPLY;
        }
        /* As in the seed, a later successful op does not clear the
         * inconsistent mark: only a rollback or a restore does. */
        report_update(c, P2PRAFT_UPDATE_OP, v, c->state, ns, NULL);
        p2praft_value_destroy(c->op->type, v);
        set_state(c, ns, false, true);
        return 0;
    default:
        LOG_ERROR(MODULE, "unknown entry kind %u", kind);
        mark_inconsistent(c);
        return LP2P_EAPPLY;
    }
}

static struct batch *find_batch(struct p2praft_consensus *c, uint64_t id)
{
    struct lp2p__list *q, *next;
    LP2P__LIST_FOREACH_SAFE(q, next, &c->batches) {
        struct batch *b = LP2P__CONTAINER_OF(q, struct batch, link);
        if (b->id == id) {
            return b;
        }
    }
    return NULL;
}

/* The raft index of the entry being applied, for its committer cm: libraft
 * counts an entry as applied once the FSM returns. */
static uint64_t applying_index(const struct commit *cm)
{
    return cm->actor != NULL && cm->actor->raft != NULL
               ? (uint64_t)raft_last_applied(cm->actor->raft) + 1
               : 0;
}

/* Record the outcome of sub-entry `kind` for its committer `cm` (if any). */
static void record(struct p2praft_consensus *c, struct commit *cm,
                   uint8_t kind, int status, void *answer)
{
    pthread_mutex_lock(&c->mu);
    c->applied++;
    pthread_mutex_unlock(&c->mu);
    if (cm != NULL) {
        cm->applied = true;
        cm->result = status;
        cm->index = applying_index(cm);
        if (status == 0 && kind == P2PRAFT__ENTRY_OP && in_place(c)) {
            cm->state = answer;
            answer = NULL;
        } else if (status == 0 && cm->cb != NULL) {
            cm->state = p2praft_value_dup(c->st, c->state);
            if (cm->state == NULL) {
                cm->result = LP2P_EUNKNOWN;
            }
        }
    }
    if (answer != NULL) {
        p2praft_value_destroy(c->op->result_type, answer);
    }
}

/*
 * The seed's log format: the entry is the bare encoded op, or the encoded
 * state (CommitState, and Rollback, which go-libp2p-raft does not mark):
 * in op mode an entry that does not decode as an op but as a state is a
 * rollback. No batch id: our own waiting commit is the oldest submitted
 * one whose bytes are the entry's (one commit per entry).
 */
static int fsm_apply_seed(struct p2praft_consensus *c,
                          const struct raft_buffer *buf)
{
    struct lp2p__list *q, *next;
    struct commit *cm = NULL;
    uint8_t kind = P2PRAFT__ENTRY_STATE;
    void *answer = NULL, *v;
    int status;
    if (c->op != NULL) {
        if (p2praft__decode_new(c->op->type, buf->base, buf->len, &v) == 0) {
            p2praft_value_destroy(c->op->type, v);
            kind = P2PRAFT__ENTRY_OP;
        } else {
            kind = P2PRAFT__ENTRY_ROLLBACK;
        }
    }
    LP2P__LIST_FOREACH_SAFE(q, next, &c->batches) {
        struct batch *b = LP2P__CONTAINER_OF(q, struct batch, link);
        struct commit *x = b->n == 1 ? b->commits[0] : NULL;
        if (x != NULL && !x->applied && x->len == buf->len &&
            (x->len == 0 || memcmp(x->payload, buf->base, x->len) == 0)) {
            cm = x;
            break;
        }
    }
    status = apply_one(c, kind, buf->base, buf->len, &answer);
    record(c, cm, kind, status, answer);
    return 0;
}

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf,
                     void **result)
{
    struct p2praft_consensus *c = fsm->data;
    const uint8_t *p = buf->base, *end = p + buf->len;
    uint64_t id = 0, n = 0, i, len;
    struct batch *b;
    int rv;

    *result = NULL;
    if (c->seed) {
        return fsm_apply_seed(c, buf);
    }
    if (buf->len < 10 || p[0] != P2PRAFT__ENTRY_V1) {
        goto malformed;
    }
    id = lp2p__get64(p + 1);
    p += 9;
    rv = lp2p__varint_decode(p, (size_t)(end - p), &n);
    if (rv <= 0) {
        goto malformed;
    }
    p += rv;
    b = find_batch(c, id);
    if (b != NULL && b->n != n) {
        b = NULL;
    }
    for (i = 0; i < n; i++) {
        uint8_t kind;
        int status;
        struct commit *cm;
        void *answer;
        if (p >= end) {
            goto malformed;
        }
        kind = *p++;
        rv = lp2p__varint_decode(p, (size_t)(end - p), &len);
        if (rv <= 0 || len > (uint64_t)(end - p - rv)) {
            goto malformed;
        }
        p += rv;
        status = apply_one(c, kind, p, (size_t)len, &answer);
        p += len;
        pthread_mutex_lock(&c->mu);
        c->applied++;
        pthread_mutex_unlock(&c->mu);
        cm = b != NULL ? b->commits[i] : NULL;
        if (cm != NULL) {
            cm->applied = true;
            cm->result = status;
            cm->index = applying_index(cm);
            if (status == 0 && kind == P2PRAFT__ENTRY_OP && in_place(c)) {
                /* The op's result, not a copy of the whole state. */
                cm->state = answer;
                answer = NULL;
            } else if (status == 0 && cm->cb != NULL) {
                cm->state = p2praft_value_dup(c->st, c->state);
                if (cm->state == NULL) {
                    /* Committed and applied, but the committer cannot get
                     * its copy: never a "not applied" code. */
                    cm->result = LP2P_EUNKNOWN;
                }
            }
        }
        if (answer != NULL) {
            p2praft_value_destroy(c->op->result_type, answer);
        }
    }
    /* Only the zero padding may follow. */
    if (end - p >= 8) {
        goto malformed;
    }
    for (; p < end; p++) {
        if (*p != 0) {
            goto malformed;
        }
    }
    return 0;

malformed:
    /* Never fail raft over bad bytes: the entry is agreed upon, so the node
     * just cannot vouch for its state any more. */
    LOG_ERROR(MODULE, "malformed log entry (%zu bytes)", (size_t)buf->len);
    mark_inconsistent(c);
    return 0;
}

/*
 * The one place that decides how this consensus lays out its raft
 * snapshots. Framed (snapshot.h): the state's bytes behind a header with a
 * SHA-256, so damage is refused on load and on install. A cluster that
 * must share snapshots with hashicorp/raft nodes would choose bare bytes
 * here (and lose the check).
 */
static bool snapshot_framed(const struct p2praft_consensus *c)
{
    return !c->seed;
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[],
                        unsigned *n_bufs)
{
    struct p2praft_consensus *c = fsm->data;
    struct raft_buffer *b;
    uint8_t *data, *hdr = NULL;
    size_t len;
    int rv;

    /* Runs on the loop thread between two applies: the encoded state is
     * exactly the one at the index raft labels the snapshot with (#69). */
    if (!c->initialized) {
        LOG_DEBUG(MODULE, "snapshot refused: no state agreed yet");
        return RAFT_INVALID;
    }
    if (c->inconsistent) {
        LOG_WARN(MODULE, "snapshot refused: state is inconsistent");
        return RAFT_INVALID;
    }
    rv = p2praft_encode_snapshot(c->st, c->state, &data, &len);
    if (rv != 0) {
        LOG_ERROR(MODULE, "cannot encode snapshot: %s", lp2p_strerror(rv));
        return rv == LP2P_ENOMEM ? RAFT_NOMEM : RAFT_INVALID;
    }
    /* Framed: two buffers, header then state, which raft writes one after
     * the other (no copy of the state). */
    if (snapshot_framed(c)) {
        hdr = lp2p__malloc(P2PRAFT__SNAP_HEADER);
        rv = hdr == NULL ? LP2P_ENOMEM
                         : p2praft__snapshot_header(hdr, data, len);
        if (rv != 0) {
            lp2p__free(hdr);
            lp2p__free(data);
            return rv == LP2P_ENOMEM ? RAFT_NOMEM : RAFT_INVALID;
        }
    }
    b = lp2p__calloc(2, sizeof(*b));
    if (b == NULL) {
        lp2p__free(hdr);
        lp2p__free(data);
        return RAFT_NOMEM;
    }
    *n_bufs = 0;
    if (hdr != NULL) {
        b[(*n_bufs)++] = (struct raft_buffer){hdr, P2PRAFT__SNAP_HEADER};
    }
    b[(*n_bufs)++] = (struct raft_buffer){data, len};
    pthread_mutex_lock(&c->mu);
    c->snapshots++;
    c->snapshot_bytes_last = len + (hdr != NULL ? P2PRAFT__SNAP_HEADER : 0);
    c->snapshot_bytes_total += c->snapshot_bytes_last;
    pthread_mutex_unlock(&c->mu);
    if (c->snap_raft != NULL) {
        c->snap_taking = raft_last_applied(c->snap_raft);
    }
    *bufs = b;
    return 0;
}

static int fsm_snapshot_finalize(struct raft_fsm *fsm,
                                 struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct p2praft_consensus *c = fsm->data;
    unsigned i;
    snaps_stored(c);
    if (*bufs != NULL) {
        for (i = 0; i < *n_bufs; i++) {
            lp2p__free((*bufs)[i].base);
        }
        lp2p__free(*bufs);
    }
    *bufs = NULL;
    *n_bufs = 0;
    return 0;
}

/* Raft hands over a snapshot it loaded from disk at start, or one the
 * leader sent (install). A framed one must pass its checks; a bare one is
 * taken as it is only where snapshot_framed() says so, or when it was
 * written before frames existed (then a warning says it went unchecked). */
static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    struct p2praft_consensus *c = fsm->data;
    const uint8_t *payload = buf->base;
    size_t plen = buf->len;
    char why[128];
    void *v;
    int rv;
    if (p2praft__snapshot_is_framed(buf->base, buf->len)) {
        rv = p2praft__snapshot_unframe(buf->base, buf->len, &payload, &plen,
                                       why, sizeof(why));
        if (rv != 0) {
            LOG_ERROR(MODULE, "snapshot refused, it is damaged: %s", why);
            return RAFT_CORRUPT;
        }
    } else if (snapshot_framed(c)) {
        LOG_WARN(MODULE,
                 "snapshot without a checksum (written by an older "
                 "p2praft): loaded unchecked");
    }
    rv = p2praft__decode_new(c->st, payload, plen, &v);
    if (rv != 0) {
        LOG_ERROR(MODULE, "cannot decode snapshot: %s", lp2p_strerror(rv));
        return rv == LP2P_ENOMEM ? RAFT_NOMEM : RAFT_MALFORMED;
    }
    report_update(c, P2PRAFT_UPDATE_RESTORE, NULL, c->state, v, NULL);
    set_state(c, v, true, false);
    pthread_mutex_lock(&c->mu);
    c->restored++;
    pthread_mutex_unlock(&c->mu);
    raft_free(buf->base);
    return 0;
}

struct p2praft_consensus *p2praft__fsm_consensus(struct raft_fsm *fsm)
{
    if (fsm == NULL || fsm->apply != fsm_apply) {
        return NULL;
    }
    return fsm->data;
}

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
        p2praft_value_destroy(answer_type(c, cm->kind), st);
    }
    p2praft_value_destroy(answer_type(c, cm->kind), cm->state);
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
    rv = usable_actor(c, actor);
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
 * thread: the one seen running the loop (turn_cb()), or, before the loop
 * ever turned, the creator's, which may be about to run it. The creator
 * waits up to a second for some thread to turn the loop: a program that
 * set up on one thread and runs the loop on another may call at once.
 * 0 or LP2P_ESTATE.
 */
static int may_block(struct p2praft_consensus *c)
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
    rv = may_block(c);
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
        p2praft_value_destroy(answer_type(c, kind), x.state);
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

/* ---- subscribers --------------------------------------------------------- */

struct p2praft_sub *p2praft_consensus_subscribe(
    struct p2praft_consensus *c, unsigned capacity,
    void (*notify)(void *ctx, struct p2praft_sub *sub), void *ctx)
{
    struct p2praft_sub *s;
    if (c == NULL) {
        return NULL;
    }
    s = lp2p__calloc(1, sizeof(*s));
    if (s == NULL) {
        return NULL;
    }
    s->c = c;
    s->cap = capacity != 0 ? capacity : P2PRAFT_MAX_SUBSCRIBER_CH;
    s->notify = notify;
    s->ctx = ctx;
    pthread_cond_init(&s->cv, NULL);
    pthread_mutex_lock(&c->mu);
    s->next = c->subs;
    c->subs = s;
    pthread_mutex_unlock(&c->mu);
    return s;
}

struct p2praft_sub *p2praft_consensus_subscribe_updates(
    struct p2praft_consensus *c,
    void (*on_update)(void *ctx, const struct p2praft_update *u), void *ctx)
{
    struct p2praft_sub *s;
    if (c == NULL || on_update == NULL) {
        return NULL;
    }
    s = lp2p__calloc(1, sizeof(*s));
    if (s == NULL) {
        return NULL;
    }
    s->c = c;
    s->on_update = on_update;
    s->ctx = ctx;
    pthread_cond_init(&s->cv, NULL);
    pthread_mutex_lock(&c->mu);
    s->next = c->subs;
    c->subs = s;
    pthread_mutex_unlock(&c->mu);
    return s;
}

uint64_t p2praft__consensus_cb_index(const struct p2praft_consensus *c)
{
    return c->cb_index;
}

int p2praft__consensus_state(struct p2praft_consensus *c, const void **out)
{
    /* The loop thread is the only writer: no lock to read. */
    *out = NULL;
    if (c->inconsistent) {
        return LP2P_EINCONSISTENT;
    }
    if (!c->initialized) {
        return LP2P_ENOSTATE;
    }
    *out = c->state;
    return 0;
}

void p2praft_consensus_unsubscribe(struct p2praft_consensus *c,
                                   struct p2praft_sub *sub)
{
    struct p2praft_sub **pp;
    if (c == NULL || sub == NULL) {
        return;
    }
    pthread_mutex_lock(&c->mu);
    for (pp = &c->subs; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == sub) {
            *pp = sub->next;
            break;
        }
    }
    pthread_mutex_unlock(&c->mu);
    pthread_cond_destroy(&sub->cv);
    lp2p__free(sub);
}

int p2praft_sub_poll(struct p2praft_sub *sub)
{
    int got = 0;
    pthread_mutex_lock(&sub->c->mu);
    if (sub->pending > 0) {
        sub->pending--;
        got = 1;
    }
    pthread_mutex_unlock(&sub->c->mu);
    return got;
}

int p2praft_sub_wait(struct p2praft_sub *sub, unsigned timeout_ms)
{
    struct timespec ts;
    int rv = 0;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&sub->c->mu);
    while (sub->pending == 0 && rv == 0) {
        if (pthread_cond_timedwait(&sub->cv, &sub->c->mu, &ts) == ETIMEDOUT) {
            rv = LP2P_ETIMEDOUT;
        }
    }
    if (sub->pending > 0) {
        sub->pending--;
        rv = 0;
    }
    pthread_mutex_unlock(&sub->c->mu);
    return rv;
}

unsigned p2praft_sub_pending(struct p2praft_sub *sub)
{
    unsigned n;
    pthread_mutex_lock(&sub->c->mu);
    n = sub->pending;
    pthread_mutex_unlock(&sub->c->mu);
    return n;
}

uint64_t p2praft_sub_dropped(struct p2praft_sub *sub)
{
    uint64_t n;
    pthread_mutex_lock(&sub->c->mu);
    n = sub->dropped;
    pthread_mutex_unlock(&sub->c->mu);
    return n;
}

/* ---- every loop turn: loop thread, leader, snapshots --------------------- */

/* Complete the snapshot requests whose target `index` covers (all of them
 * when `all`), then put the threshold back once none waits. */
static void snaps_complete(struct p2praft_consensus *c, int status,
                           uint64_t index, bool all)
{
    struct lp2p__list *q, *next;
    struct lp2p__list done;
    lp2p__list_init(&done);
    LP2P__LIST_FOREACH_SAFE(q, next, &c->snaps) {
        struct snapreq *sr = LP2P__CONTAINER_OF(q, struct snapreq, link);
        if (all || sr->target <= index) {
            lp2p__list_remove(q);
            lp2p__list_insert_tail(&done, q);
        }
    }
    if (lp2p__list_first(&c->snaps) == NULL && c->snap_raft != NULL) {
        raft_set_snapshot_threshold(c->snap_raft, c->snap_threshold);
        c->snap_raft = NULL;
    }
    while ((q = lp2p__list_first(&done)) != NULL) {
        struct snapreq *sr = LP2P__CONTAINER_OF(q, struct snapreq, link);
        lp2p__list_remove(q);
        if (sr->cb != NULL) {
            sr->cb(sr->ctx, status, index);
        }
        lp2p__free(sr);
    }
}

/* The snapshot raft took was stored (or failed: raft calls the FSM's
 * finalize either way). Put the threshold back now if it covers every
 * request: else raft, still at 1, takes another one at its next event,
 * before the next turn completes the requests. */
static void snaps_stored(struct p2praft_consensus *c)
{
    struct lp2p__list *q, *next;
    if (c->snap_raft == NULL) {
        return;
    }
    LP2P__LIST_FOREACH_SAFE(q, next, &c->snaps) {
        if (LP2P__CONTAINER_OF(q, struct snapreq, link)->target >
            c->snap_taking) {
            return;
        }
    }
    raft_set_snapshot_threshold(c->snap_raft, c->snap_threshold);
    c->snap_early = true;
}

/* The index of raft's latest snapshot (0: none). */
static uint64_t raft_snapshot_index(struct raft *r)
{
    /* libraft 0.22 keeps it in the public trail, which both a snapshot
     * taken and one installed update. */
    return r->trail.snapshot.index;
}

/* Snapshot requests: done once raft's latest snapshot covers them; until
 * then raft's threshold stays at 1 (raft takes a snapshot after the next
 * event it handles once commit_index - snapshot index >= threshold). */
static void check_snapshots(struct p2praft_consensus *c)
{
    struct raft *r = c->snap_raft;
    if (r == NULL) {
        return;
    }
    if (r->legacy.closing) {
        c->snap_raft = NULL; /* closing: its threshold no longer matters */
        snaps_complete(c, LP2P_ESHUTDOWN, 0, true);
        return;
    }
    if (c->inconsistent) {
        /* fsm_snapshot() refuses now: do not make raft ask at every event. */
        snaps_complete(c, LP2P_EINCONSISTENT, 0, true);
        return;
    }
    snaps_complete(c, 0, raft_snapshot_index(r), false);
    if (c->snap_raft == NULL) {
        c->snap_early = false;
        return; /* all done, threshold back */
    }
    if (r->legacy.snapshot_threshold != 1) {
        if (!c->snap_early) {
            /* Someone set another threshold meanwhile: that one goes
             * back. */
            c->snap_threshold = r->legacy.snapshot_threshold;
        }
        /* (Or the snapshot put it back early, then failed: again.) */
        c->snap_early = false;
        raft_set_snapshot_threshold(r, 1);
    }
}

/* Has the leader changed since the last turn? Tell the waiters and cb. */
static void check_leader(struct p2praft_consensus *c)
{
    struct raft *r = c->actor != NULL ? c->actor->raft : NULL;
    raft_id id = 0;
    const char *address = NULL;
    char peer[LP2P_PEER_ID_STRMAX];
    bool self, fresh = c->leader_fresh;
    c->leader_fresh = false;
    if (r != NULL && !r->legacy.closing) {
        raft_leader(r, &id, &address);
        if (address == NULL) {
            id = 0;
        }
    }
    if (id == c->leader_id && !(fresh && id != 0)) {
        return;
    }
    peer[0] = '\0';
    if (id != 0 && p2praft_actor_leader(c->actor, peer, sizeof(peer)) != 0) {
        peer[0] = '\0';
    }
    self = id != 0 && id == r->id;
    pthread_mutex_lock(&c->mu);
    c->leader_id = id;
    c->leader_self = self;
    memcpy(c->leader, peer, sizeof(peer));
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (c->leader_cb != NULL) {
        c->leader_cb(c->leader_ctx, id != 0 ? peer : NULL, self);
    }
}

/* Prepare phase of every loop turn, after the turn's callbacks: record
 * which thread runs the loop (for the blocking calls), notice a leader
 * change, finish snapshot requests. */
static void turn_cb(uv_prepare_t *h)
{
    struct p2praft_consensus *c = h->data;
    pthread_t self = pthread_self();
    if (!c->loop_known || !pthread_equal(self, c->loop_thread)) {
        pthread_mutex_lock(&c->mu);
        c->loop_thread = self;
        c->loop_known = true;
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
    }
    if (c->closing) {
        return;
    }
    check_leader(c);
    check_snapshots(c);
}

void p2praft_consensus_on_leader(struct p2praft_consensus *c,
                                 p2praft_leader_cb cb, void *ctx)
{
    if (c != NULL) {
        c->leader_cb = cb;
        c->leader_ctx = ctx;
        c->leader_fresh = cb != NULL;
    }
}

int p2praft_consensus_wait_for_leader(struct p2praft_consensus *c,
                                      unsigned timeout_ms, char *out,
                                      size_t len, bool *self)
{
    struct timespec ts;
    int rv;
    if (out != NULL && len > 0) {
        out[0] = '\0';
    }
    if (self != NULL) {
        *self = false;
    }
    if (c == NULL || (out != NULL && len == 0)) {
        return LP2P_EINVAL;
    }
    rv = may_block(c);
    if (rv != 0) {
        return rv;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&c->mu);
    while (c->leader_id == 0 && !c->closing && rv == 0) {
        if (pthread_cond_timedwait(&c->cv, &c->mu, &ts) == ETIMEDOUT) {
            rv = LP2P_ETIMEDOUT;
        }
    }
    if (c->leader_id != 0) {
        rv = 0;
        if (out != NULL) {
            if (strlen(c->leader) >= len) {
                rv = LP2P_EOVERFLOW;
            } else {
                memcpy(out, c->leader, strlen(c->leader) + 1);
            }
        }
        if (self != NULL) {
            *self = c->leader_self;
        }
    } else if (c->closing) {
        rv = LP2P_ESHUTDOWN;
    }
    pthread_mutex_unlock(&c->mu);
    return rv;
}

/* The actor that may act for `c` now: 0, or the error it returns. */
static int usable_actor(struct p2praft_consensus *c, struct p2praft_actor *a)
{
    if (a == NULL) {
        return LP2P_ENOACTOR;
    }
    if (a->raft == NULL) {
        return LP2P_ENORAFT;
    }
    if (p2praft__fsm_consensus(a->raft->fsm) != c) {
        return LP2P_EINVAL;
    }
    return 0;
}

int p2praft_consensus_snapshot(struct p2praft_consensus *c,
                               p2praft_snapshot_cb cb, void *ctx)
{
    struct snapreq *sr;
    struct raft *r;
    int rv;
    if (c == NULL) {
        return LP2P_EINVAL;
    }
    if (c->closing) {
        return LP2P_ESHUTDOWN;
    }
    rv = usable_actor(c, c->actor);
    if (rv != 0) {
        return rv;
    }
    r = c->actor->raft;
    if (r->legacy.closing) {
        return LP2P_ESHUTDOWN;
    }
    if (c->snap_raft != NULL && c->snap_raft != r) {
        /* The actor changed under waiting requests: not worth a second
         * lowered threshold. */
        return LP2P_EBUSY;
    }
    pthread_mutex_lock(&c->mu);
    rv = !c->initialized ? LP2P_ENOSTATE
                         : c->inconsistent ? LP2P_EINCONSISTENT : 0;
    pthread_mutex_unlock(&c->mu);
    if (rv != 0) {
        /* fsm_snapshot() would refuse, at every event raft handles. */
        return rv;
    }
    sr = lp2p__calloc(1, sizeof(*sr));
    if (sr == NULL) {
        return LP2P_ENOMEM;
    }
    sr->target = raft_last_applied(r);
    sr->cb = cb;
    sr->ctx = ctx;
    lp2p__list_insert_tail(&c->snaps, &sr->link);
    if (c->snap_raft == NULL) {
        c->snap_raft = r;
        c->snap_threshold = r->legacy.snapshot_threshold;
        raft_set_snapshot_threshold(r, 1);
    }
    /* Answered on a later turn (turn_cb()). */
    return 0;
}

int p2praft_consensus_snapshot_wait(struct p2praft_consensus *c,
                                    uint64_t *index)
{
    struct xcall x;
    int rv;
    if (index != NULL) {
        *index = 0;
    }
    if (c == NULL) {
        return LP2P_EINVAL;
    }
    rv = may_block(c);
    if (rv != 0) {
        return rv;
    }
    memset(&x, 0, sizeof(x));
    x.kind = XCALL_SNAPSHOT;
    rv = lp2p__bridge_call(&c->calls, &x.lc);
    if (index != NULL) {
        *index = x.index;
    }
    return rv;
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
    c->fsm.version = 2;
    c->fsm.data = c;
    c->fsm.apply = fsm_apply;
    c->fsm.snapshot = fsm_snapshot;
    c->fsm.snapshot_finalize = fsm_snapshot_finalize;
    c->fsm.restore = fsm_restore;
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
    uv_prepare_start(&c->prepare, turn_cb);
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
    snaps_complete(c, LP2P_ESHUTDOWN, 0, true);
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
