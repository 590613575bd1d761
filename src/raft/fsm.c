/*
 * The consensus's raft FSM (see consensus.c for the entry format and the
 * design): apply each sub-entry of a raft entry, record each commit's
 * result for the leader's waiting commits, take and restore snapshots,
 * and tell the subscribers.
 */
#include <string.h>

#include "raft/codec.h"
#include "raft/consensus.h"
#include "raft/consensus_int.h"
#include "raft/snapshot.h"
#include "util/byteorder.h"
#include "util/heap.h"
#include "util/log.h"
#include "util/varint.h"

#define MODULE "consensus"

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
const struct p2praft_type *p2praft__answer_type(const struct p2praft_consensus *c,
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
            /* The op's result, not a copy of the whole state. */
            cm->state = answer;
            answer = NULL;
        } else if (status == 0 && cm->cb != NULL) {
            cm->state = p2praft_value_dup(c->st, c->state);
            if (cm->state == NULL) {
                /* Committed and applied, but the committer cannot get its
                 * copy: never a "not applied" code. */
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
        record(c, b != NULL ? b->commits[i] : NULL, kind, status, answer);
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
    p2praft__snaps_stored(c);
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


void p2praft__fsm_init(struct p2praft_consensus *c)
{
    c->fsm.version = 2;
    c->fsm.data = c;
    c->fsm.apply = fsm_apply;
    c->fsm.snapshot = fsm_snapshot;
    c->fsm.snapshot_finalize = fsm_snapshot_finalize;
    c->fsm.restore = fsm_restore;
}
