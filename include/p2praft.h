/*
 * p2praft: Raft consensus among libp2p peers, the C counterpart of
 * go-libp2p-raft. See README.md for the API at a glance.
 */
#ifndef P2PRAFT_H
#define P2PRAFT_H

#include <stdbool.h>

#include "lp2p.h"

struct uv_loop_s;

#define P2PRAFT_API LP2P_API
#define P2PRAFT_VERSION LP2P_VERSION

/* Every error code of lp2p.h, under its P2PRAFT_ name. */
enum p2praft_errno {
#define P2PRAFT__ERR_ENUM(name, code, msg) P2PRAFT_E##name = code,
    LP2P_ERRNO_MAP(P2PRAFT__ERR_ENUM)
#undef P2PRAFT__ERR_ENUM
};

/* Same as lp2p_strerror(). */
P2PRAFT_API const char *p2praft_strerror(int rv);

/*
 * Did an operation that changes the replicated state (a commit, a node
 * write) end without its outcome being known? Decide on this, never on
 * message text. For the status of such an operation:
 *   0, and P2PRAFT_EAPPLY (committed, apply_to failed): it was committed;
 *   p2praft_outcome_unknown(rv) true -- P2PRAFT_EUNKNOWN (submitted, then
 *     leadership or the connection to the leader was lost),
 *     P2PRAFT_ETIMEDOUT (no answer in time), P2PRAFT_ESHUTDOWN (shut down
 *     before the answer): it may or may not have been applied, now or
 *     later. Retrying may apply it twice: read first, or make the
 *     operation idempotent (compare-and-set);
 *   any other code (P2PRAFT_ENOTLEADER, P2PRAFT_ENOLEADER, P2PRAFT_ERAFT,
 *     P2PRAFT_ELIMIT, P2PRAFT_EINVAL, ...): it was surely not applied and
 *     may be retried.
 */
P2PRAFT_API bool p2praft_outcome_unknown(int rv);

/* Same as lp2p_log_set(): one log hook serves both layers. */
P2PRAFT_API void p2praft_log_set(enum lp2p_log_level level, lp2p_log_cb cb,
                                 void *ctx);

struct raft;
struct raft_io;
struct raft_tracer;
struct raft_fsm;

/* ------------------------------------------------------------------------
 * Types and codecs
 *
 * A state or an operation is a plain C value (usually a struct) described by
 * a `struct p2praft_type`. The default codec walks a static field table and
 * writes a msgpack map keyed by field name, in declaration order, exactly as
 * go-libp2p-raft's default codec (ugorji/go codec, MsgpackHandle{}) writes
 * the equivalent exported Go struct:
 *   - strings and byte strings: raw str (fixstr, str16, str32; never str8);
 *   - int64: -32..127 as a fixint, other negatives in the smallest of
 *     int8..int64, positives above 127 in the smallest of int16, int32,
 *     int64 (ugorji's signed forms, never uint8..);
 *     uint64: fixint up to 127, then the smallest of uint8..uint64;
 *   - double: float 64; bool: c2/c3; nil: c0;
 *   - an empty (NULL) byte string, array or map: nil, as a nil Go slice/map.
 * C storage of each kind:
 *   BOOL bool, INT64 int64_t, UINT64 uint64_t, DOUBLE double,
 *   STRING char * (NUL-terminated, NULL encodes as ""),
 *   BYTES struct p2praft_bytes, STRUCT the nested struct itself (inline),
 *   ARRAY struct p2praft_array (items of the element kind's C storage),
 *   MAP struct p2praft_map (string keys, values of the element kind),
 *   NIL no storage is read or written (encodes as nil, decodes only nil;
 *   an array of NIL uses one placeholder byte per item).
 * Decoding builds a fresh value and replaces the target only on success, so
 * it never merges with old contents. It rejects unknown fields
 * (P2PRAFT_EUNKNOWNFIELD, as the seed's ErrorIfNoField), wrong msgpack types
 * or out-of-range integers (P2PRAFT_ETYPE), short input (P2PRAFT_ETRUNCATED)
 * and bytes after the value (P2PRAFT_ETRAILING); invalid msgpack bytes or a
 * string with an embedded NUL give P2PRAFT_EMALFORMED; nesting deeper than 64
 * gives P2PRAFT_ETOOBIG. Missing fields keep their zero value.
 * ---------------------------------------------------------------------- */

enum p2praft_kind {
    P2PRAFT_KIND_NIL = 0,
    P2PRAFT_KIND_BOOL,
    P2PRAFT_KIND_INT64,
    P2PRAFT_KIND_UINT64,
    P2PRAFT_KIND_DOUBLE,
    P2PRAFT_KIND_STRING,
    P2PRAFT_KIND_BYTES,
    P2PRAFT_KIND_STRUCT,
    P2PRAFT_KIND_ARRAY,
    P2PRAFT_KIND_MAP
};

/* In the three containers below, NULL storage (with len 0) is Go's nil and
 * encodes as msgpack nil; non-NULL storage with len 0 is an empty value.
 * Decoding keeps the distinction. */
struct p2praft_bytes {
    uint8_t *data;
    size_t len;
};

struct p2praft_array {
    void *items; /* len elements of the element kind's C storage */
    size_t len;
};

struct p2praft_map {
    char **keys;  /* len NUL-terminated keys, in wire order */
    void *values; /* len values of the element kind's C storage */
    size_t len;
};

struct p2praft_type;

/* What one value is: its kind, plus the struct type (STRUCT) or the element
 * description (ARRAY, MAP). */
struct p2praft_desc {
    enum p2praft_kind kind;
    const struct p2praft_type *type;
    const struct p2praft_desc *elem;
};

/* One field of a struct: its msgpack name, its offset in the C struct. */
struct p2praft_field {
    const char *name;
    size_t offset;
    struct p2praft_desc desc;
};

/* Sink for custom marshal hooks, the io.Writer of the seed: appends `len`
 * bytes; returns 0 or P2PRAFT_ENOMEM. */
typedef int (*p2praft_write_fn)(void *wctx, const void *data, size_t len);

/*
 * A type. `size` is sizeof the C value. Either `fields` (the default msgpack
 * codec; an empty struct points at any array with n_fields 0) or, with
 * `fields` NULL, both `marshal` and `unmarshal` (the role of
 * go-libp2p-raft's Marshable) must be set. Custom types are used whole
 * (states, ops, snapshots), not as nested fields.
 *   marshal(value, write, wctx): serialize `value` through `write`;
 *     0 or a negative code.
 *   unmarshal(value, data, len): fill the zeroed `value` from all of `data`;
 *     0 or a negative code (then `value` is released with `release`).
 *   release(value): free what a custom value owns (not `value` itself);
 *     may be NULL when the value owns no memory.
 *   copy(dst, src): deep copy into a zeroed dst; when NULL, copies go through
 *     marshal + unmarshal.
 */
struct p2praft_type {
    const char *name;
    size_t size;
    const struct p2praft_field *fields;
    size_t n_fields;
    int (*marshal)(const void *value, p2praft_write_fn write, void *wctx);
    int (*unmarshal)(void *value, const uint8_t *data, size_t len);
    void (*release)(void *value);
    int (*copy)(void *dst, const void *src);
};

/* Encode `value` of type `t`. On success *out (allocated with the heap hook,
 * free with p2praft_free()) and *len are set. 0, P2PRAFT_ENOMEM, P2PRAFT_EINVAL
 * or a marshal hook's error. */
P2PRAFT_API int p2praft_encode(const struct p2praft_type *t, const void *value,
                               uint8_t **out, size_t *len);

/* Decode all of `data` (borrowed) into `value`, replacing its contents
 * completely; on error `value` is unchanged. Errors: see above. */
P2PRAFT_API int p2praft_decode(const struct p2praft_type *t, void *value,
                               const uint8_t *data, size_t len);

/* EncodeSnapshot / DecodeSnapshot: the snapshot bytes are the state's codec
 * output, so they are what go-libp2p-raft writes for the same state.
 * Snapshots that raft stores and sends carry these bytes behind a frame
 * with a SHA-256 (see README, "Operating a node"); DecodeSnapshot accepts
 * both: framed bytes (a snapshot-* file's contents) are checked first, and
 * damaged ones give P2PRAFT_ECORRUPT. */
P2PRAFT_API int p2praft_encode_snapshot(const struct p2praft_type *t,
                                        const void *state, uint8_t **out,
                                        size_t *len);
P2PRAFT_API int p2praft_decode_snapshot(const struct p2praft_type *t,
                                        void *state, const uint8_t *data,
                                        size_t len);

/* Deep copy `src` into `dst` (dst's old contents are not freed: pass a
 * zeroed or released value). 0 or P2PRAFT_ENOMEM (dst left zeroed). */
P2PRAFT_API int p2praft_value_copy(const struct p2praft_type *t, void *dst,
                                   const void *src);

/* Free everything `value` owns and zero it; `value` itself is not freed. */
P2PRAFT_API void p2praft_value_release(const struct p2praft_type *t,
                                       void *value);

/* A new zeroed value of type t (heap hook), or NULL. */
P2PRAFT_API void *p2praft_value_new(const struct p2praft_type *t);

/* A new deep copy of `src`, or NULL on allocation failure. */
P2PRAFT_API void *p2praft_value_dup(const struct p2praft_type *t,
                                    const void *src);

/* Release and free a value from p2praft_value_new/_dup or returned by the
 * consensus calls. NULL is ignored. */
P2PRAFT_API void p2praft_value_destroy(const struct p2praft_type *t,
                                       void *value);

/* Free memory returned by p2praft_encode() and friends. */
P2PRAFT_API void p2praft_free(void *p);

/* The heap (lp2p_heap_set() hook) that values live in. Whatever a value of
 * a field-table type owns (strings, bytes, array and map storage) is freed
 * with it, so an apply_to hook filling a new state must allocate with these.
 * NULL on failure. */
P2PRAFT_API void *p2praft_malloc(size_t size);
P2PRAFT_API void *p2praft_calloc(size_t n, size_t size);
P2PRAFT_API char *p2praft_strdup(const char *s);

/* ------------------------------------------------------------------------
 * Consensus (state mode) and OpLog (op mode)
 * ---------------------------------------------------------------------- */

/*
 * An operation type (consensus.Op): its codec plus how an op applies, by
 * copy (apply_to, the seed's ApplyTo) or in place (apply_in_place). Set at
 * least one; when apply_in_place is set it is the one used. Initialise the
 * struct with designated initialisers: fields may be added at its end.
 *
 * apply_to(op, state, new_state, ctx) is called on the loop thread with the
 * decoded op and the current state (both borrowed). It fills the zeroed
 * `new_state` (of the state type) and returns 0, or returns a negative code
 * (the op stays in the log, the node becomes inconsistent, the committer gets
 * P2PRAFT_EAPPLY). Whatever it left in new_state on failure is released.
 * The commit callback then gets a copy of the new state, and update
 * subscribers the states before and after: every op costs at least a copy
 * of the whole state.
 *
 * apply_in_place(op, state, result, ctx) (optional) changes the state where
 * it is instead, and says what it did in `result`: a write then costs what
 * the op touches, whatever the state holds.
 *   When: on the loop thread, inside raft's FSM apply, once per committed op,
 *     in log order, on every node, with the consensus' lock held (another
 *     thread's get_current_state() copies the state before or after an op,
 *     never in between). It must not call the consensus.
 *   Ownership: `op` is the decoded op, borrowed (freed after the update
 *     subscribers saw it); `state` is the consensus' own current state, to
 *     change in place (allocate what it owns with p2praft_malloc() and
 *     friends, free with p2praft_free()); `result` is a zeroed value of
 *     `result_type` (NULL when result_type is NULL) for apply to fill, and
 *     must not point into `op` or `state`. Neither op nor state may be kept
 *     after the call.
 *   Who sees what: the committer's callback receives `result` as its
 *     `state` argument (owned by the callee: p2praft_value_destroy() with
 *     result_type; NULL when result_type is NULL), and so does
 *     commit_op_wait()'s `agreed`: no copy of the state. Update subscribers
 *     see the op, its result and the state after (`prev` is NULL). Commits of
 *     whole states and rollbacks still hand out state copies.
 *   Failure: return 0, or a negative code leaving `state` exactly as it was
 *     (all or nothing: allocate what the op needs before changing anything).
 *     The consensus then does what a failed apply_to does: the op stays in
 *     the log, the node is marked inconsistent (get_current_state() gives
 *     P2PRAFT_EINCONSISTENT, no snapshot is taken) until a rollback or a
 *     snapshot restore, the committer gets P2PRAFT_EAPPLY, `result` is
 *     released, and no update subscriber sees the op. Later ops still apply,
 *     as in the seed. An allocation failure happens on one node and not on
 *     the others: that node's state no longer matches theirs, hence the
 *     mark.
 *   Determinism: the outcome depends on op, state and ctx alone (no clock,
 *     no randomness, no addresses), so that every node ends with the same
 *     state.
 *   The state type must still encode (snapshots) and copy
 *   (get_current_state(), p2praft_oplog_new()'s `initial`); for a state
 *   that is not a plain field table, custom marshal/unmarshal and copy
 *   hooks do both without going through a flat copy.
 */
struct p2praft_op_type {
    const struct p2praft_type *type;
    int (*apply_to)(const void *op, const void *state, void *new_state,
                    void *ctx);
    void *ctx;
    int (*apply_in_place)(const void *op, void *state, void *result,
                          void *ctx);
    const struct p2praft_type *result_type;
};

struct p2praft_consensus;
struct p2praft_actor;
struct p2praft_sub;

#define P2PRAFT_MAX_SUBSCRIBER_CH 128 /* MaxSubscriberCh */
#define P2PRAFT_COMMIT_TIMEOUT_MS 1000 /* SetStateTimeout */

/*
 * New consensus in state mode (NewConsensus): the replicated value is a
 * whole state of type `state_type`. `initial` (may be NULL) is copied; it is
 * not agreed upon: get_current_state() fails with P2PRAFT_ENOSTATE until a
 * state is committed. `loop` is the libuv loop raft runs on; the consensus
 * owns handles on it (none of them keeps uv_run() going). Call on the
 * thread that runs the loop, or before the loop runs (then any thread may
 * run it: see the blocking forms). 0, P2PRAFT_ENOMEM, P2PRAFT_EINVAL.
 */
P2PRAFT_API int p2praft_consensus_new(struct p2praft_consensus **out,
                                      struct uv_loop_s *loop,
                                      const struct p2praft_type *state_type,
                                      const void *initial);

/*
 * New consensus in op mode (NewOpLog): the log holds operations of type
 * `op_type` (borrowed, must outlive the consensus) applied to the state,
 * starting from a copy of `initial` (may be NULL: a zeroed state). As in the
 * seed, ops apply to that initial state before any state was agreed.
 */
P2PRAFT_API int p2praft_oplog_new(struct p2praft_consensus **out,
                                  struct uv_loop_s *loop,
                                  const struct p2praft_type *state_type,
                                  const struct p2praft_op_type *op_type,
                                  const void *initial);

/*
 * Free a consensus, on the loop thread, after raft using its FSM has been
 * closed (p2praft_group_close() does it all in order). Pending commits complete with P2PRAFT_ESHUTDOWN, and so do those
 * that raft_close() failed (it fails a leader's pending entries): their
 * outcome is unknown (p2praft_outcome_unknown()). The loop must run
 * afterwards until the internal handles are closed (uv_run until no
 * handles, as usual with libuv).
 */
P2PRAFT_API void p2praft_consensus_free(struct p2praft_consensus *c);

/*
 * The seed's log format, for a cluster shared with go-libp2p-raft nodes
 * (with P2PRAFT_WIRE_HASHICORP): each entry is the bare encoded op, or the
 * encoded state for a commit_state or a rollback, with no envelope and no
 * group commit (one entry per commit); in op mode an entry that does not
 * decode as an op but as a state is a rollback (the seed's rule); snapshots
 * are the bare p2praft_encode_snapshot() bytes, without a checksum. The
 * default format keeps its explicit rollback entry, group commit and
 * snapshot checksums. Set before raft starts (nothing applied or queued):
 * 0 or P2PRAFT_EINVAL. All nodes of a cluster use the same format.
 */
P2PRAFT_API int p2praft_consensus_set_seed_format(struct p2praft_consensus *c,
                                                  bool on);
P2PRAFT_API bool p2praft_consensus_seed_format(
    const struct p2praft_consensus *c);

/* The struct raft_fsm to hand to raft_init() (FSM()). Owned by `c`. */
P2PRAFT_API struct raft_fsm *p2praft_consensus_fsm(struct p2praft_consensus *c);

/* SetActor: the actor (borrowed; NULL unsets) that submits commits.
 * Loop thread. */
P2PRAFT_API void p2praft_consensus_set_actor(struct p2praft_consensus *c,
                                             struct p2praft_actor *actor);

/* How long a commit may wait, in ms (default 1000). Loop thread. */
P2PRAFT_API void p2praft_consensus_set_timeout(struct p2praft_consensus *c,
                                               unsigned ms);

/*
 * Completion of a commit, on the loop thread, exactly once, never before the
 * commit call returned. The rule for errors: what the commit call itself
 * can tell is wrong (no actor, no raft, a raft running another FSM, a
 * value that does not encode, the consensus being freed) is returned by
 * the call, and the callback never runs; the callback reports what
 * happens to a commit once queued. status (see p2praft_outcome_unknown()):
 *   0: committed and applied; P2PRAFT_EAPPLY: committed, apply_to failed;
 *   surely not applied: P2PRAFT_ENOTLEADER (this node was not the leader when the entry was
 *     to be submitted, nothing was; errmsg names the leader when known),
 *     P2PRAFT_ERAFT (raft refused the entry before taking it: a majority
 *     lacks disk space; or p2praft's raft I/O says this node's own storage
 *     has stopped writing, and the leader is handing over), P2PRAFT_ENOMEM
 *     (before submitting);
 *   outcome UNKNOWN (the entry may have been, or may still be, committed):
 *     P2PRAFT_EUNKNOWN (raft took the entry, then lost leadership or failed
 *     to persist it), P2PRAFT_ETIMEDOUT (not applied in time),
 *     P2PRAFT_ESHUTDOWN (raft or the consensus closed first).
 * `state` on success is a copy of the state right after this commit, owned by
 * the callee (p2praft_value_destroy()); for an op whose type applies in
 * place (apply_in_place), it is the op's result instead (destroy it with the
 * op type's result_type; NULL when that is NULL). Otherwise NULL. `errmsg`
 * is borrowed for the call, NULL on success.
 */
typedef void (*p2praft_commit_cb)(void *ctx, int status, void *state,
                                  const char *errmsg);

/*
 * CommitState / CommitOp / Rollback, asynchronous. The value is encoded
 * before the call returns (borrowed only during the call). Commits made in
 * the same loop turn are grouped into one raft entry; each keeps its own
 * result. commit_op needs op mode (else P2PRAFT_EINVAL). Rollback writes an
 * explicit rollback entry carrying the whole state; applying it replaces the
 * state and clears the inconsistent mark. Loop thread only. Returns 0 (cb
 * will run) or, cb never running: P2PRAFT_ENOACTOR (no actor set),
 * P2PRAFT_ENORAFT (the actor has no raft), P2PRAFT_EINVAL (also: the
 * actor's raft runs another FSM), P2PRAFT_ESHUTDOWN (being freed),
 * P2PRAFT_ENOMEM or an encode error. `cb` may be NULL.
 */
P2PRAFT_API int p2praft_consensus_commit_state(struct p2praft_consensus *c,
                                               const void *state,
                                               p2praft_commit_cb cb, void *ctx);
P2PRAFT_API int p2praft_consensus_commit_op(struct p2praft_consensus *c,
                                            const void *op,
                                            p2praft_commit_cb cb, void *ctx);
P2PRAFT_API int p2praft_consensus_rollback(struct p2praft_consensus *c,
                                           const void *state,
                                           p2praft_commit_cb cb, void *ctx);

/*
 * Blocking forms, for any thread OTHER than the loop thread, while the loop
 * runs. They queue the commit onto the loop (uv_async) and wait for its
 * completion. The loop thread is the one seen running the loop: each loop
 * turn records it, so a program may set up on one thread and run the loop
 * on another. Called on the loop thread they return P2PRAFT_ESTATE at once
 * instead of deadlocking. Before the loop has ever turned, the thread that
 * created the consensus may be about to run it: called there, they wait up
 * to a second for another thread to turn the loop, then return
 * P2PRAFT_ESTATE. They return the codes the commit calls return (the
 * errors above), or the status described for p2praft_commit_cb; on success
 * and when
 * `agreed` is not NULL, *agreed receives what the callback's `state` would
 * (a copy of the agreed state, or an in-place op's result; the caller
 * destroys it). `errmsg` (may be NULL) receives the error message.
 */
P2PRAFT_API int p2praft_consensus_commit_state_wait(
    struct p2praft_consensus *c, const void *state, void **agreed,
    char *errmsg, size_t errmsg_len);
P2PRAFT_API int p2praft_consensus_commit_op_wait(struct p2praft_consensus *c,
                                                 const void *op, void **agreed,
                                                 char *errmsg,
                                                 size_t errmsg_len);
P2PRAFT_API int p2praft_consensus_rollback_wait(struct p2praft_consensus *c,
                                                const void *state,
                                                char *errmsg,
                                                size_t errmsg_len);

/*
 * GetCurrentState / GetLogHead: a copy of the current state in *out (caller
 * destroys it with p2praft_value_destroy()). Any thread.
 * P2PRAFT_ENOSTATE until a state is agreed (a commit applied or a snapshot
 * restored); P2PRAFT_EINCONSISTENT after a failed apply until a rollback or
 * a restore; P2PRAFT_ENOMEM.
 */
P2PRAFT_API int p2praft_consensus_get_current_state(
    struct p2praft_consensus *c, void **out);
P2PRAFT_API int p2praft_consensus_get_log_head(struct p2praft_consensus *c,
                                               void **out);

/* Number of commits (ops, states, rollbacks) applied since creation,
 * counting failed applies: one per commit call, although the commits of one
 * loop turn share one raft log entry (and raft's own entries, such as
 * configurations and barriers, count nothing). Then the number of
 * snapshots restored. Any thread. */
P2PRAFT_API uint64_t p2praft_consensus_applied(struct p2praft_consensus *c);
P2PRAFT_API uint64_t p2praft_consensus_restored(struct p2praft_consensus *c);
/* Snapshots handed to raft (taken by the FSM). Any thread. */
P2PRAFT_API uint64_t p2praft_consensus_snapshots(struct p2praft_consensus *c);

/*
 * Subscribe: a new independent subscriber that is notified of every applied
 * update (not of snapshot restores, as in the seed). Its queue holds at most
 * `capacity` notifications (0: P2PRAFT_MAX_SUBSCRIBER_CH); when full, new
 * ones are dropped and counted. `notify` (may be NULL) runs on the loop
 * thread after each enqueue; it may poll, subscribe, or unsubscribe its own
 * subscription. Any thread. Returns NULL on P2PRAFT_ENOMEM.
 */
P2PRAFT_API struct p2praft_sub *p2praft_consensus_subscribe(
    struct p2praft_consensus *c, unsigned capacity,
    void (*notify)(void *ctx, struct p2praft_sub *sub), void *ctx);

/* One applied update as an update subscriber sees it; every pointer is
 * borrowed for the callback only. */
enum p2praft_update_kind {
    P2PRAFT_UPDATE_OP = 1,       /* an op applied (op log) */
    P2PRAFT_UPDATE_STATE = 2,    /* a whole state committed */
    P2PRAFT_UPDATE_ROLLBACK = 3, /* a rollback */
    P2PRAFT_UPDATE_RESTORE = 4   /* a snapshot restored: no op tells what
                                  * changed since the previous state */
};

struct p2praft_update {
    enum p2praft_update_kind kind;
    const void *op;    /* P2PRAFT_UPDATE_OP: the op, else NULL */
    const void *prev;  /* the state before (NULL when there was none, and
                        * for an op applied in place) */
    const void *state; /* the state after */
    const void *result; /* an op applied in place: its result (NULL when
                         * the op type has no result_type); else NULL */
};

/*
 * Subscribe to the updates themselves, not just their count: `on_update`
 * runs on the loop thread, inside the FSM, once for every update applied
 * (an op, a state, a rollback: only those that applied without error) and
 * every snapshot restored, in apply order, before the new state replaces
 * the old (an op applied in place: right after it changed the state, which
 * `state` then is, with its `result`). Under libraft the entry's raft index is raft_last_applied() + 1
 * while it runs. It must return quickly and must not commit, subscribe or
 * unsubscribe. Loop thread only; unsubscribe with
 * p2praft_consensus_unsubscribe(). NULL on P2PRAFT_ENOMEM or a NULL
 * argument.
 */
P2PRAFT_API struct p2praft_sub *p2praft_consensus_subscribe_updates(
    struct p2praft_consensus *c,
    void (*on_update)(void *ctx, const struct p2praft_update *u), void *ctx);

/* Unsubscribe and free `sub` (no other thread may be waiting on it). */
P2PRAFT_API void p2praft_consensus_unsubscribe(struct p2praft_consensus *c,
                                               struct p2praft_sub *sub);

/* Take one notification: 1 if one was queued, 0 if none. Any thread. */
P2PRAFT_API int p2praft_sub_poll(struct p2praft_sub *sub);

/* Wait up to timeout_ms for a notification (from a thread other than the
 * loop's). 0 or P2PRAFT_ETIMEDOUT. */
P2PRAFT_API int p2praft_sub_wait(struct p2praft_sub *sub, unsigned timeout_ms);

/* Notifications queued, and dropped because the queue was full. */
P2PRAFT_API unsigned p2praft_sub_pending(struct p2praft_sub *sub);
P2PRAFT_API uint64_t p2praft_sub_dropped(struct p2praft_sub *sub);

/* ---- capi: leadership, snapshots now, teardown (begin) ----------------- */

/*
 * Leadership changes, as this node sees them. `cb` runs on the loop thread
 * whenever the leader known through the consensus' actor changes: `leader`
 * is the new leader's peer ID (as p2praft_actor_leader() gives it; borrowed
 * for the call) and `self` says whether it is this node, or `leader` is
 * NULL when no leader is known any more (an election is running, the
 * leader was lost). It runs at most once per loop turn, after the turn's
 * callbacks: a leader that came and went within one turn goes unseen. The
 * loop turn after the registration reports the current leader, if one is
 * known (then only changes). NULL unregisters. Loop thread.
 */
typedef void (*p2praft_leader_cb)(void *ctx, const char *leader, bool self);
P2PRAFT_API void p2praft_consensus_on_leader(struct p2praft_consensus *c,
                                             p2praft_leader_cb cb, void *ctx);

/*
 * WaitForLeader: block until a leader is known (see above), at most
 * timeout_ms, from any thread but the loop's; the loop must be running.
 * Its peer ID goes to `out` (len bytes, LP2P_PEER_ID_STRMAX suffices; may
 * be NULL) and *self (may be NULL) says whether it is this node. 0;
 * P2PRAFT_ETIMEDOUT; P2PRAFT_ESTATE on the loop thread (see the blocking
 * commits for how it is known); P2PRAFT_EOVERFLOW (`out` too small);
 * P2PRAFT_ESHUTDOWN (the consensus is being freed: the call must have
 * returned before the loop runs on after p2praft_consensus_free(), as for
 * p2praft_sub_wait()); P2PRAFT_EINVAL.
 */
P2PRAFT_API int p2praft_consensus_wait_for_leader(struct p2praft_consensus *c,
                                                  unsigned timeout_ms,
                                                  char *out, size_t len,
                                                  bool *self);

/*
 * Snapshot now (Go's raft.Snapshot()): have raft take a snapshot that
 * covers at least the entries applied on this node when the call is made,
 * on any member, leader or not. libraft 0.22 has no such call: the
 * consensus lowers the actor's raft snapshot threshold to 1 until the
 * snapshot is stored (raft then takes one at its next event, a heartbeat
 * tick at the latest), and puts the threshold back afterwards (a threshold
 * set in between is the one put back). `cb` (may be NULL) runs on the loop
 * thread, never inside the call, with status 0 and the index of raft's
 * latest snapshot (>= the applied index at the call; if a snapshot
 * already covered it, at once), or P2PRAFT_ESHUTDOWN when raft or the
 * consensus closes first. Loop thread. 0 (cb will run); returned, cb never
 * runs: P2PRAFT_ENOACTOR, P2PRAFT_ENORAFT, P2PRAFT_EINVAL (the actor's raft
 * runs another FSM), P2PRAFT_ENOSTATE (no state agreed yet: nothing to
 * snapshot), P2PRAFT_EINCONSISTENT (a failed apply: the consensus takes
 * no snapshot until a rollback or a restore; cb gets this code too when it
 * happens while waiting), P2PRAFT_EBUSY (requests made through another
 * actor's raft still wait), P2PRAFT_ESHUTDOWN, P2PRAFT_ENOMEM.
 */
typedef void (*p2praft_snapshot_cb)(void *ctx, int status, uint64_t index);
P2PRAFT_API int p2praft_consensus_snapshot(struct p2praft_consensus *c,
                                           p2praft_snapshot_cb cb, void *ctx);

/* The same, blocking, from any thread but the loop's (as the blocking
 * commits): the status, and the snapshot's index in *index (may be NULL).
 * P2PRAFT_ESTATE on the loop thread. */
P2PRAFT_API int p2praft_consensus_snapshot_wait(struct p2praft_consensus *c,
                                                uint64_t *index);

/*
 * A consensus group as a program set it up with this API: any part may be
 * NULL (not set up, or not to be closed here).
 *   raft       raft_init() succeeded on it (started or not); the struct
 *              itself stays the caller's memory;
 *   io         p2praft_io_init() succeeded on it (the struct stays the
 *              caller's);
 *   consensus  p2praft_consensus_new() / p2praft_oplog_new();
 *   actor      p2praft_actor_new();
 *   host       lp2p_host_new() (closed last; NULL leaves it open, as when
 *              it serves more than this group).
 */
struct p2praft_group {
    struct raft *raft;
    struct raft_io *io;
    struct p2praft_consensus *consensus;
    struct p2praft_actor *actor;
    struct lp2p_host *host;
};

/*
 * Tear a group down in the one order that is safe, on the loop thread:
 *   1. raft_close(raft), and wait for it to complete: raft still uses its
 *      io, its FSM and the actor until then (closing the io, raft_uv
 *      included, any earlier crashes inside libraft);
 *   2. p2praft_consensus_free(consensus): commits still pending complete
 *      with P2PRAFT_ESHUTDOWN (outcome unknown: p2praft_outcome_unknown()),
 *      as do those raft_close() failed, waiting blocking calls and
 *      snapshot requests too;
 *   3. p2praft_actor_free(actor) (the actor outlives the consensus);
 *   4. p2praft_io_close(io);
 *   5. lp2p_host_close(host): its connections close, its handles too;
 *   6. done(ctx) (may be NULL), on the loop thread.
 * `g` is copied. Keep running the loop (uv_run() returns once every handle
 * is closed: then uv_loop_close() succeeds). 0; P2PRAFT_EINVAL (g NULL);
 * P2PRAFT_ESTATE (raft_close() was already called on that raft: nothing
 * was done); P2PRAFT_ENOMEM (nothing was done).
 */
P2PRAFT_API int p2praft_group_close(const struct p2praft_group *g,
                                    void (*done)(void *ctx), void *ctx);

/* ---- capi (end) --------------------------------------------------------- */

/* ------------------------------------------------------------------------
 * Actor
 * ---------------------------------------------------------------------- */

/*
 * Maps a raft server (id, address) to the peer ID string that leader()
 * reports: write a NUL-terminated string into out (len bytes) and return 0,
 * or return a negative code. Without a resolver the raft address IS the peer
 * ID string (the libp2p transport's convention).
 */
typedef int (*p2praft_resolve_fn)(void *ctx, uint64_t id, const char *address,
                                  char *out, size_t len);

/* NewActor over `raft` (borrowed; may be NULL, then every submission
 * returns P2PRAFT_ENORAFT). 0 or P2PRAFT_ENOMEM. The actor must outlive every
 * consensus it is set on (unset it, or free the consensus, first). */
P2PRAFT_API int p2praft_actor_new(struct p2praft_actor **out, struct raft *raft);
P2PRAFT_API void p2praft_actor_free(struct p2praft_actor *a);
P2PRAFT_API void p2praft_actor_set_resolver(struct p2praft_actor *a,
                                            p2praft_resolve_fn fn, void *ctx);

/*
 * SetState: commit `state` through this actor's raft, whose FSM must be the
 * one of a p2praft consensus (else P2PRAFT_EINVAL). Same semantics, errors
 * and callback as p2praft_consensus_commit_state(): P2PRAFT_ENORAFT (no
 * raft) is returned, and cb never runs. Loop thread.
 */
P2PRAFT_API int p2praft_actor_set_state(struct p2praft_actor *a,
                                        const void *state,
                                        p2praft_commit_cb cb, void *ctx);

/* Leader: the leader's peer ID into out (len bytes). 0, P2PRAFT_ENORAFT,
 * P2PRAFT_ENOLEADER, P2PRAFT_EOVERFLOW (buffer too small) or the resolver's
 * error. Loop thread. */
P2PRAFT_API int p2praft_actor_leader(struct p2praft_actor *a, char *out,
                                     size_t len);

/* IsLeader. Loop thread. */
P2PRAFT_API bool p2praft_actor_is_leader(struct p2praft_actor *a);

/* ------------------------------------------------------------------------
 * Logging of libraft
 * ---------------------------------------------------------------------- */

/* Route raft's diagnostic tracer into the p2praft log hook (module "raft"),
 * raft levels 1..5 mapped to error/warn/info/debug/trace. Call after
 * raft_init() (which installs libraft's stderr tracer). When the p2praft log
 * level is "off" the tracer is removed, so raft formats no messages. */
P2PRAFT_API void p2praft_raft_trace(struct raft *r);

/* The same for raft_uv's own tracer (call after raft_uv_init()); libraft
 * otherwise formats every raft_uv trace message even when nobody reads it.
 * p2praft_io_init() does it for its disk store. */
P2PRAFT_API void p2praft_raft_uv_trace(struct raft_io *io);

/* The tracer itself. */
P2PRAFT_API struct raft_tracer *p2praft_raft_tracer(void);

/* ------------------------------------------------------------------------
 * Raft I/O over libp2p
 *
 * p2praft_io_init() fills a libraft `struct raft_io` (give it to
 * raft_init()) that stores raft's state in a pluggable store and carries
 * raft's messages over libp2p. Each message is encoded by p2praft and
 * written as one frame on one Yamux stream of protocol P2PRAFT_PROTOCOL
 * per pair of peers (format: src/raft/rpc.h); arriving frames are decoded
 * into raft messages and handed to raft in the same loop turn. Large
 * AppendEntries and InstallSnapshot messages are streamed with Yamux flow
 * control, and each peer has its own bounded queue: a slow peer holds back
 * its own messages only (past `peer_buffer` bytes plus one message, further
 * messages to it are dropped and raft resends them, as it does on a lost
 * connection).
 *
 * Stores:
 *   P2PRAFT_STORE_MEM   term, vote, log and snapshot in memory (the seed's
 *                       InmemStore): a `struct p2praft_memstore` that may
 *                       outlive the io, so that a node restarted in the
 *                       same process finds its state; nothing is durable.
 *   P2PRAFT_STORE_DISK  libraft's raft_uv in `dir`: durable. Its storage
 *                       calls are passed through; its own network is never
 *                       used (p2praft_io_store() gives it, for raft_uv_set_*).
 *
 * Addressing: a raft server's address is its peer ID string (base58btc, as
 * lp2p_peer_id_to_string() writes it) and its raft ID is
 * p2praft_server_id() of that peer ID. raft_init() must be given exactly
 * these for the local host (else it fails with RAFT_INVALID). Peers are
 * dialed through the host's peerstore: add their addresses with
 * lp2p_peerstore_add_addr() first. The sender of a message is always the
 * Noise-authenticated peer of its stream, never anything read from it.
 *
 * Admission: a raft stream opened by another peer is accepted only from an
 * admitted peer. Others are reset, counted (p2praft_io_refused()) and
 * logged at warn level (module "transport"). By default a peer is admitted
 * when it is in the member set (p2praft_io_set_members()) or a server
 * (address and ID) of the current or last committed configuration of the
 * raft that uses this io. p2praft_io_set_admit() replaces that rule.
 *
 * Elections: a follower that loses its libp2p connection to the leader
 * forgets that leader (so it grants the (pre-)votes of the others) and
 * shortens its election timer: the surviving voter with the smallest raft
 * ID starts an election at once, the next one half an election timeout
 * later, and so on (the hint). In a freshly bootstrapped cluster (term 1,
 * no vote, only the bootstrap configuration in the log), the voter with the
 * smallest raft ID starts the first election at once instead of waiting
 * for its timeout.
 *
 * libraft 0.22.1 mishandles an InstallSnapshot that arrives while the node
 * is storing a snapshot it took (it crashes), or while it is installing
 * another one (it leaks the message). This io holds the former back until
 * the snapshot is stored, and drops the latter; the leader sends again.
 *
 * Everything runs on the host's loop thread. Order of teardown:
 * raft_close() (which closes the io), then p2praft_io_close(), then
 * lp2p_host_close(). Closing the io never closes the host.
 * ---------------------------------------------------------------------- */

#define P2PRAFT_PROTOCOL "/p2praft/raft/2.0.0"
#define P2PRAFT_DIAL_TIMEOUT_MS 5000 /* default dial_timeout_ms */
#define P2PRAFT_RETRY_MS 100         /* default retry_ms */
#define P2PRAFT_MAX_MESSAGE (1024ull * 1024 * 1024) /* default max_message */
#define P2PRAFT_PEER_BUFFER (32u * 1024 * 1024)     /* default peer_buffer */

/* The raft server ID of a peer: the first 8 bytes of SHA-256 of its peer ID
 * multihash bytes, big endian; never 0 (a 0 result becomes 1). */
P2PRAFT_API uint64_t p2praft_server_id(const struct lp2p_peer_id *peer);

/* Same from a peer ID string. 0 or the errors of lp2p_peer_id_parse(). */
P2PRAFT_API int p2praft_server_id_parse(const char *peer_id, uint64_t *out);

/* An in-memory raft store. It must outlive every io using it, and serves
 * one io at a time. 0, P2PRAFT_ENOMEM, P2PRAFT_EINVAL. */
struct p2praft_memstore;
P2PRAFT_API int p2praft_memstore_new(struct p2praft_memstore **out);
/* Free a store no io uses any more. NULL is ignored. */
P2PRAFT_API void p2praft_memstore_free(struct p2praft_memstore *m);

enum p2praft_store_kind {
    P2PRAFT_STORE_MEM = 0, /* in memory (default) */
    P2PRAFT_STORE_DISK = 1 /* raft_uv in a directory */
};

/* Which raft wire an io speaks: p2praft's own (P2PRAFT_PROTOCOL), or
 * go-libp2p-raft's /raft/1.0.0/rpc (hashicorp/raft's NetworkTransport), so
 * that p2praft nodes join a cluster of go-libp2p-raft nodes. A node serves
 * one of them: nodes of the other wire cannot open a raft stream to it. */
enum p2praft_wire {
    P2PRAFT_WIRE_P2PRAFT = 0,
    P2PRAFT_WIRE_HASHICORP = 1
};
#define P2PRAFT_HC_PROTOCOL "/raft/1.0.0/rpc"

struct p2praft_io_config {
    enum p2praft_store_kind store;
    /* MEM: the store (borrowed). NULL: a private one, freed with the io. */
    struct p2praft_memstore *mem;
    /* DISK: raft_uv's directory, which must exist (copied). */
    const char *dir;
    /* Bound on one dial (connection + stream negotiation); 0: default. */
    unsigned dial_timeout_ms;
    /* After a failed dial, messages to that peer are dropped for this long
     * before the next dial; 0: P2PRAFT_RETRY_MS. */
    unsigned retry_ms;
    /* Largest message payload accepted (entries or snapshot bytes); 0:
     * P2PRAFT_MAX_MESSAGE. A bigger one resets the stream. */
    uint64_t max_message;
    /* Bytes of messages queued toward one peer before new ones to it are
     * dropped (one message past it is let in: a snapshot may be bigger);
     * 0: P2PRAFT_PEER_BUFFER. */
    size_t peer_buffer;
    /* No early election hint when the leader's connection drops. */
    bool no_hint;
    /* A fresh cluster waits for a full election timeout. */
    bool no_fast_start;
    /* The raft wire (default P2PRAFT_WIRE_P2PRAFT). With HASHICORP, pair
     * it with the seed log format in the FSM
     * (p2praft_consensus_set_seed_format()) and libraft's pre-vote off
     * unless every Go node runs hashicorp/raft >= 1.7. */
    enum p2praft_wire wire;
};

/* Fill `cfg` with the defaults (MEM with a private store, every limit 0). */
P2PRAFT_API void p2praft_io_config_init(struct p2praft_io_config *cfg);

/*
 * Fill `io` as a raft_io over `host` (borrowed; must outlive the io) with
 * the store of `cfg` (borrowed for the call; `mem` must outlive the io).
 * Serves P2PRAFT_PROTOCOL on the host from raft_start() until raft closes
 * the io, and observes the host's connection events. 0, P2PRAFT_ENOMEM,
 * P2PRAFT_EINVAL (no host, DISK without dir, a memstore already in use),
 * P2PRAFT_ERAFT (raft_uv refused the directory: see io->errmsg).
 */
P2PRAFT_API int p2praft_io_init(struct raft_io *io, struct lp2p_host *host,
                                const struct p2praft_io_config *cfg);

/* Release the memory of `io`, after raft closed it (raft_close() completed)
 * or if raft never used it. The host and a borrowed memstore are left
 * alone. NULL or a released io is ignored. */
P2PRAFT_API void p2praft_io_close(struct raft_io *io);

/* The storage raft_io inside `io`: for DISK the raft_uv instance (for
 * raft_uv_set_segment_size() and friends, before raft_start()). */
P2PRAFT_API struct raft_io *p2praft_io_store(struct raft_io *io);

/* Enable (default unless cfg.no_hint) or disable the early election on a
 * lost leader connection. */
P2PRAFT_API void p2praft_io_set_hint(struct raft_io *io, bool enabled);

/* Replace the explicit member set with `n` peers (copied). Needed on a node
 * that joins a cluster (its own configuration is still empty). 0 or
 * P2PRAFT_ENOMEM (set unchanged), P2PRAFT_EINVAL. */
P2PRAFT_API int p2praft_io_set_members(struct raft_io *io,
                                       const struct lp2p_peer_id *peers,
                                       size_t n);

/* Admission rule: return true to admit `peer` (borrowed, from Noise) whose
 * raft ID would be `id`. Runs on the loop thread for every inbound stream. */
typedef bool (*p2praft_admit_fn)(void *ctx, const struct lp2p_peer_id *peer,
                                 uint64_t id);

/* Replace the default rule with `fn` (NULL restores the default). */
P2PRAFT_API void p2praft_io_set_admit(struct raft_io *io, p2praft_admit_fn fn,
                                      void *ctx);

/* Would a raft stream opened by `peer` be admitted now? */
P2PRAFT_API bool p2praft_io_admits(struct raft_io *io,
                                   const struct lp2p_peer_id *peer);

/* Inbound raft streams refused so far. */
P2PRAFT_API uint64_t p2praft_io_refused(struct raft_io *io);

/* Early-election hints given so far. */
P2PRAFT_API uint64_t p2praft_io_hints(struct raft_io *io);

/* What the io did so far. */
struct p2praft_io_stats {
    uint64_t sent;            /* messages written to a stream */
    uint64_t received;        /* messages handed to raft */
    uint64_t dropped;         /* messages not sent: no connection, full queue */
    uint64_t refused;         /* inbound streams refused (admission) */
    uint64_t bad_streams;     /* streams reset for malformed or oversized data */
    uint64_t hints;           /* early-election hints */
    uint64_t fast_starts;     /* first elections started at once */
    uint64_t installs;        /* InstallSnapshot messages handed to raft */
    uint64_t snapshots_held;  /* InstallSnapshot held while a take was stored */
    uint64_t snapshots_dropped; /* duplicate InstallSnapshot while installing */
    uint64_t peak_peer_bytes; /* most bytes ever queued toward one peer */
    /* Local storage that stops writing (a full disk): see "Storage that
     * stops writing" in the README's Limits. */
    uint64_t storage_stalls;  /* times appends made no progress for 1 s */
    uint64_t appends_refused; /* AppendEntries with entries dropped meanwhile */
    uint64_t votes_withheld;  /* our RequestVotes not sent meanwhile (or
                               * once this node was removed) */
    uint64_t transfers;       /* leadership handed over meanwhile */
    uint64_t vote_requests;   /* RequestVotes (pre-votes included) raft
                               * asked this io to send, withheld or not */
};
P2PRAFT_API void p2praft_io_stats(struct raft_io *io,
                                  struct p2praft_io_stats *out);

/* ------------------------------------------------------------------------
 * Cluster node: one member of a replicated key-value store
 *
 * A node owns a loop thread that runs a libp2p host, p2praft's raft I/O
 * over it, libraft with raft_uv storage in `data_dir` (or in memory), and
 * an OpLog whose ops are set, delete and compare-and-set on a map of string
 * keys to byte values. Snapshots compact the log (threshold configurable), so a node
 * that was away catches up from a snapshot.
 *
 * Writes sent to any node are forwarded to the leader over libp2p, on
 * P2PRAFT_FORWARD_PROTOCOL (only peers the raft I/O admits, i.e.
 * members, may use it), and complete once the receiving node has applied
 * them. Reads are local; consistent reads first commit a read barrier (a
 * no-op entry) on the leader and wait until the receiving node applied up to it.
 *
 * API wire format, version 2 (P2PRAFT_API_VERSION). The unix socket of
 * `api_path`, the client protocol (P2PRAFT_CLIENT_PROTOCOL, the same bytes
 * over a libp2p stream), the forward protocol and p2praft_node_call()
 * share it; struct p2praft_client speaks it for you. Every message is a
 * frame:
 *   u32 big-endian body length | body           (body <= P2PRAFT_API_FRAME_MAX)
 * Request body:
 *   u8 version (2) | u8 op | u8 flags | u32 big-endian id | [u32] | fields
 *   id: chosen by the client, not 0, distinct among its requests in flight
 *       on the connection; every frame of the answer carries it
 *   op: 1 GET (key), 2 SET (key, value), 3 DEL (key),
 *       4 CAS (key, expected, value), 5 STATUS (none),
 *       6 BARRIER (none; forward protocol only),
 *       7 LS (u32 limit; prefix, after): the keys that start with prefix,
 *         after `after` ("" : from the first), in byte order, at most
 *         `limit` (0: a full page) and at most one page,
 *       8 WATCH (prefix): changes as they are applied (below),
 *       9 UNWATCH (u32 id of a watch on this connection): end it,
 *      10 HELLO (none): answered OK with the node's peer ID, once the node
 *         admitted the connection (a client sends it first)
 *      20 SNAPSHOT (none, or a cursor in the key field): a backup of the
 *         node's state at its applied index (p2praft_backup_check() reads
 *         it). Without a cursor, the whole backup in one answer; FAILED
 *         when the state is too large for one frame or not readable.
 *         Paged, for any size: the cursor "" makes a backup that the node
 *         keeps (one per node: a new one replaces it; freed once read
 *         whole, or after 60 s unread), and answers its first page;
 *         "ID:OFFSET" (decimal) answers the page at OFFSET. A page's
 *         payload: u64 ID | u64 total length | u64 offset | up to 4 MiB
 *         of the backup (big-endian), the answer's index the backup's;
 *         FAILED when the backup is gone (start again with "") or the
 *         cursor is past its end, BAD REQUEST for a malformed cursor
 *      21 METRICS (none): the node's metrics, Prometheus text format
 *      22 CLUSTER (none): served by the leader (forwarded there): one
 *         "member: ID role=R state=S reachable=yes|no match=N lag=N
 *         last_contact_ms=N|none" line per member, after "leader:",
 *         "term:", "last_index:" and "commit_index:" lines
 *      23 HEALTH (none): OK when the node knows a leader, heard from it
 *         within two election timeouts (or leads), has caught up since it
 *         started and applied to within 64 entries of its commit index;
 *         FAILED otherwise; the payload (or message) says why in one line
 *      30 SNAPSHOT_NOW (none): take a raft snapshot on this node now
 *         (p2praft_consensus_snapshot()); answered OK, its index in the
 *         answer's raft index, or FAILED
 *   flags: bit 0 = consistent read (GET, LS), bit 1 = keys only (LS: the
 *   values come back empty); other bits must be 0
 *   each field: u32 big-endian length | bytes; a key is 1..4096 bytes
 *   without NUL, a prefix or `after` 0..4096 bytes without NUL, a value at
 *   most P2PRAFT_KV_VALUE_MAX (4 MiB), any bytes. Nothing may follow.
 * Response body:
 *   u8 version (2) | u8 type | u8 code | u32 big-endian id
 *   | u64 big-endian raft index | payload
 *   type 0 ANSWER: code is the status; the last frame for that id
 *   type 1 EVENT: code is a watch event kind; more frames follow
 *   status, and what it says about a write (SET, DEL, CAS):
 *     0 OK            done (applied on this node when answered)
 *     1 NOT FOUND     get, del of a missing key (del: done, nothing removed)
 *     2 MISMATCH      cas: absent or different value; nothing changed
 *     3 FAILED        surely not applied (no leader reachable in time, the
 *                     state is inconsistent, shutting down before submitting)
 *     4 BAD REQUEST   malformed or not allowed; not applied
 *     5 NOT LEADER    forward protocol only: not submitted, ask the leader
 *     6 UNKNOWN       the outcome is unknown: it may have been applied, or
 *                     may still be (timed out after submitting, leader lost
 *                     or replaced while forwarding, shutting down). Retrying
 *                     blindly may apply it twice.
 *     7 BUSY          refused before it was started (too many connections,
 *                     requests in flight or forwarded requests), or a read
 *                     not served because 16 MiB of earlier answers wait
 *                     for the client to read them; not applied
 *     8 NOT CAUGHT UP a plain GET or LS on a node that has not caught up
 *                     with a leader since it started (see the status line
 *                     "caught_up"); retry, or read with the consistent flag
 *   A client that sent a write and got no answer (timeout, connection
 *   lost) must treat it as UNKNOWN. A status byte it does not know too.
 *   payload: the value (GET), "key: value" lines (STATUS), the peer ID
 *   (HELLO), a page (LS: u8 more | u32 big-endian n | n x (key field,
 *   value field); more = 1 when further keys match: ask again after the
 *   last one), or an error message (statuses 3..8); empty otherwise.
 *   index: the commit's (writes), the barrier's, or the applied index the
 *   read was served at.
 * Watch: a WATCH is answered by EVENT frames: STARTED (index: the applied
 *   index it starts after), then, for each change applied on this node in
 *   apply order, SET or CAS (key field, value field; a successful
 *   compare-and-set) or DEL (key field; a delete that removed a key), with
 *   the raft index of the entry. Changes that change nothing (a failed cas,
 *   a del of a missing key) are not events. DROPPED (u64 big-endian count;
 *   0 = unknown) says events were lost -- the client read too slowly and
 *   the node's bounded queue for this watch filled, or a snapshot from the
 *   leader replaced the state -- and comes before any later event: re-read
 *   (LS) to resync. A watch follows local applies, so it survives leader
 *   changes. It ends with an ANSWER: OK after UNWATCH, FAILED when the node
 *   shuts down, BUSY or BAD REQUEST when refused.
 * Connections: the requests of one connection run concurrently and are
 *   answered as each completes, in any order (a write that must follow
 *   another waits for its answer before it is sent). At most
 *   api_max_inflight requests and watches per connection and
 *   api_max_requests on the node run at once; one more is answered BUSY. A
 *   request of version 1 (the former format, without an id) is answered
 *   BAD REQUEST in the version 1 format (u8 1 | u8 status | u64 index |
 *   message) naming the versions, and the connection closed. A frame over
 *   the limit or a malformed body gets BAD REQUEST (id 0 when it cannot be
 *   read) and the connection is closed. An idle connection (nothing in
 *   flight) is closed after api_idle_ms; a connection beyond api_max_conns
 *   gets one BUSY frame, unasked, in the version 1 format (which clients of
 *   both versions read), and is closed (see struct p2praft_node_config).
 * ---------------------------------------------------------------------- */

#define P2PRAFT_FORWARD_PROTOCOL "/p2praft/forward/1.0.0"
#define P2PRAFT_CLIENT_PROTOCOL "/p2praft/client/1.0.0"
#define P2PRAFT_API_VERSION 2
#define P2PRAFT_KV_KEY_MAX 4096
#define P2PRAFT_KV_VALUE_MAX (4 * 1024 * 1024)
#define P2PRAFT_API_FRAME_MAX (2 * P2PRAFT_KV_VALUE_MAX + 16384)

enum p2praft_api_op {
    P2PRAFT_API_GET = 1,
    P2PRAFT_API_SET = 2,
    P2PRAFT_API_DEL = 3,
    P2PRAFT_API_CAS = 4,
    P2PRAFT_API_STATUS = 5,
    P2PRAFT_API_BARRIER = 6,
    P2PRAFT_API_LS = 7,
    P2PRAFT_API_WATCH = 8,
    P2PRAFT_API_UNWATCH = 9,
    P2PRAFT_API_HELLO = 10,
    /* Operator requests (20..29), no fields; see the format above. */
    P2PRAFT_API_SNAPSHOT = 20,
    P2PRAFT_API_METRICS = 21,
    P2PRAFT_API_CLUSTER = 22,
    P2PRAFT_API_HEALTH = 23,
    /* ---- capi (begin) ---- */
    P2PRAFT_API_SNAPSHOT_NOW = 30
    /* ---- capi (end) ---- */
};

enum p2praft_api_flag {
    P2PRAFT_API_FLAG_CONSISTENT = 0x01,
    P2PRAFT_API_FLAG_KEYS_ONLY = 0x02
};

enum p2praft_api_type { P2PRAFT_API_ANSWER = 0, P2PRAFT_API_EVENT = 1 };

enum p2praft_api_status {
    P2PRAFT_API_OK = 0,
    P2PRAFT_API_NOTFOUND = 1,
    P2PRAFT_API_MISMATCH = 2,
    P2PRAFT_API_FAILED = 3,
    P2PRAFT_API_BADREQ = 4,
    P2PRAFT_API_NOTLEADER = 5,
    P2PRAFT_API_UNKNOWN = 6,
    P2PRAFT_API_BUSY = 7,
    P2PRAFT_API_NOTCAUGHTUP = 8,
    /* Former names of 3 and 6. */
    P2PRAFT_API_ERROR = P2PRAFT_API_FAILED,
    P2PRAFT_API_TIMEDOUT = P2PRAFT_API_UNKNOWN
};

/* Watch event kinds (EVENT frames), and END, which only the client library
 * reports (the watch's ANSWER). */
enum p2praft_watch_kind {
    P2PRAFT_WATCH_STARTED = 1,
    P2PRAFT_WATCH_SET = 2,
    P2PRAFT_WATCH_DEL = 3,
    P2PRAFT_WATCH_CAS = 4,
    P2PRAFT_WATCH_DROPPED = 5,
    P2PRAFT_WATCH_END = 6
};

struct p2praft_node;

struct p2praft_node_config {
    /* Identity (borrowed, copied at start). Required. */
    const struct lp2p_key *key;
    /* Listen multiaddrs (borrowed during start). At least one. */
    const char *const *listen;
    size_t n_listen;
    /* raft_uv directory, created if missing (one level). Required. */
    const char *data_dir;
    /* The other members, as multiaddrs ending in /p2p/<peer id>. */
    const char *const *peers;
    size_t n_peers;
    /* First start only: bootstrap the configuration self + peers. Refused
     * (P2PRAFT_EEXIST) when data_dir already holds raft state. Without it
     * the state is loaded; starting without state and without bootstrap
     * (or join) fails (P2PRAFT_EINVAL). */
    bool bootstrap;
    /* Unix socket of the API. NULL: "<data_dir>/api.sock"; "": none. */
    const char *api_path;
    unsigned election_ms;        /* 150 (raft picks 150..300 ms) */
    unsigned heartbeat_ms;       /* 10 (a follower learns of a commit on the
                                  * next heartbeat: this bounds how long a
                                  * write through a follower waits) */
    unsigned snapshot_threshold; /* 1024 entries between snapshots, at
                                  * least: a snapshot encodes the whole
                                  * store, so a node holding more than 4x
                                  * as many keys waits for keys / 4
                                  * entries (each write pays for a few
                                  * keys of it, whatever the size) */
    unsigned snapshot_trailing;  /* 128 entries kept after a snapshot */
    unsigned timeout_ms;         /* bound on one request, 5000 */
    unsigned api_max_conns;      /* API socket connections served at once,
                                  * 64 (0: 64); one more gets BUSY, unasked,
                                  * and is closed */
    unsigned api_idle_ms;        /* an API connection idle this long is
                                  * closed, 30000 (0: 30000) */
    unsigned api_max_inflight;   /* requests and watches in flight on one
                                  * API connection (unix socket or client
                                  * protocol), 128 (0: 128); one more is
                                  * answered BUSY */
    unsigned api_max_requests;   /* the same over all connections of the
                                  * node, 4096 (0: 4096) */
    /* Remote clients: the peer IDs (strings, borrowed during start) that may
     * open P2PRAFT_CLIENT_PROTOCOL on the node's libp2p host and send it
     * what the unix socket takes. Any other peer's stream is reset,
     * counted and logged (at most a line per 10 s). Clients are not
     * members: their connections take the host's unprotected slots
     * (lp2p_host_config.max_unprotected_conns). */
    const char *const *clients;
    size_t n_clients;
    /* More of them: a file with one peer ID per line; blank lines and
     * lines starting with '#' are skipped. NULL: none. Read at start. */
    const char *clients_file;
    /* Where raft's state lives: P2PRAFT_STORE_DISK (the default), raft_uv
     * in data_dir; or P2PRAFT_STORE_MEM, in memory: nothing survives the
     * process, so a restarted node starts empty (with bootstrap: as a
     * fresh member that catches up from the others). */
    enum p2praft_store_kind store;
    /* Membership (see the membership block below): start without raft
     * state and without bootstrap, as a member the leader added (PEER_ADD);
     * `peers` are the members to dial. Ignored when data_dir holds state. */
    bool join;
    /* The raft wire: P2PRAFT_WIRE_P2PRAFT (default), or
     * P2PRAFT_WIRE_HASHICORP to share a cluster with go-libp2p-raft nodes
     * (/raft/1.0.0/rpc, the seed's log format, libraft's pre-vote off as
     * hashicorp/raft 1.6 has none). Every node of a cluster uses the same;
     * a node of the other wire cannot open a raft stream to it. */
    enum p2praft_wire wire;
    /* Called once, on the node's loop thread, when the node learns it was
     * removed from the cluster (told by the leader, or its configuration
     * no longer lists it). The node has then stopped campaigning (no
     * election timeout, no RequestVote), logged one warn line, and its
     * status says "removed: yes"; it stays up, idle, until stopped. The
     * removal is recorded in the data directory (p2praft.removed): a
     * later p2praft_node_start() there fails with P2PRAFT_EREMOVED. The
     * callback must not block nor call p2praft_node_stop() itself (signal
     * another thread: `p2praft node` exits with status 8). NULL: none. */
    void (*on_removed)(void *data);
    void *on_removed_data;
    /* The host's busy polling (lp2p_host_config.busy_poll_us): after
     * network activity or a raft log write, the node's loop polls without
     * sleeping for this many microseconds. CPU for latency, for VMs whose
     * idle vCPUs halt at once or nodes with a core of their own. 0 (the
     * default): off. At most 1000000 (P2PRAFT_EINVAL beyond). */
    uint32_t busy_poll_us;
};

/* Fill `cfg` with the defaults shown above (pointers NULL). */
P2PRAFT_API void p2praft_node_config_init(struct p2praft_node_config *cfg);

/* What p2praft_datadir_check() found in a data directory. */
struct p2praft_datadir_info {
    uint64_t term;            /* current term */
    uint64_t entries;         /* log entries raft will load */
    uint64_t last_index;      /* of the last entry, or of the snapshot */
    unsigned segments;        /* log segment files */
    unsigned snapshots;       /* complete snapshots */
    unsigned unframed;        /* snapshots without a checksum (older
                               * p2praft): not verifiable */
    uint64_t bytes_read;
    char torn[320];           /* "" or the torn write raft will drop */
};

/*
 * Check a node's data directory offline, as p2praft_node_start() checks it
 * before raft loads it: take its lock, verify every raft file (checksums
 * of segments and snapshots, metadata, indexes and terms across files),
 * release the lock. `dir` is borrowed; `info` may be NULL. 0;
 * P2PRAFT_EBUSY while a node (or another check) holds the directory;
 * P2PRAFT_ECORRUPT when a file is damaged or missing (errmsg names it and
 * says how to recover); P2PRAFT_ENOTFOUND, P2PRAFT_EIO, P2PRAFT_ENOMEM.
 * errmsg may be NULL.
 */
P2PRAFT_API int p2praft_datadir_check(const char *dir,
                                      struct p2praft_datadir_info *info,
                                      char *errmsg, size_t errmsg_len);

/*
 * Start a node: spawn its loop thread, lock and check the data directory
 * (see p2praft_datadir_check(); the lock is held until the node is
 * stopped), listen, open the storage, start raft and the API socket;
 * return once it runs or failed. `cfg` is borrowed for the call. On
 * failure `errmsg` (may be NULL, 512 bytes hold any message) says which
 * step failed and what to do. 0, P2PRAFT_EINVAL (also: a peer that names
 * this node itself, a data directory that belongs to another peer ID),
 * P2PRAFT_EBUSY (another process holds the data directory or serves the
 * API socket), P2PRAFT_ECORRUPT (a damaged raft file: errmsg names it),
 * P2PRAFT_EEXIST (bootstrap on a directory with state, or a file that is
 * not a socket at the API path), P2PRAFT_ENOSPACE (no room for one log
 * segment), P2PRAFT_EREMOVED (the node of this data directory learned it
 * was removed from the cluster: see on_removed), P2PRAFT_ENOMEM,
 * P2PRAFT_EIO, P2PRAFT_ERAFT or a host error. The data directory and the key are checked before anything listens;
 * a directory open to group or others is logged at warn level. A running
 * node logs at warn level what an operator must see (leader changes, peers
 * unreachable or with another key than their /p2p/ ID, refused streams).
 */
P2PRAFT_API int p2praft_node_start(struct p2praft_node **out,
                                   const struct p2praft_node_config *cfg,
                                   char *errmsg, size_t errmsg_len);

/* Stop the node (pending requests fail with "shutting down"), join its
 * thread and free it. Not from the node's own thread. NULL is ignored. */
P2PRAFT_API void p2praft_node_stop(struct p2praft_node *node);

/* The node's peer ID string into out (LP2P_PEER_ID_STRMAX suffices). */
P2PRAFT_API void p2praft_node_peer_id(const struct p2praft_node *node,
                                      char *out, size_t len);

/* The API socket path ("" when none). Borrowed from the node. */
P2PRAFT_API const char *p2praft_node_api_path(const struct p2praft_node *node);

/*
 * One API request (a request body, borrowed) from any thread but the
 * node's own: blocks until the node answers. On success *resp (free with
 * p2praft_free()) and *resp_len hold the response body. 0, P2PRAFT_EINVAL,
 * P2PRAFT_ENOMEM, P2PRAFT_ESHUTDOWN.
 */
P2PRAFT_API int p2praft_node_call(struct p2praft_node *node,
                                  const uint8_t *req, size_t len,
                                  uint8_t **resp, size_t *resp_len);

/*
 * Blocking key-value calls, from any thread but the node's own. They return
 * the code of the response status (errmsg, which may be NULL, gets its
 * message): 0 OK, P2PRAFT_ENOTFOUND (get/del: no such key),
 * P2PRAFT_EMISMATCH (cas), P2PRAFT_ERAFT (FAILED: surely not applied),
 * P2PRAFT_EINVAL (BAD REQUEST, or a bad key or value), P2PRAFT_EUNKNOWN
 * (UNKNOWN: the outcome is unknown), P2PRAFT_ENOTCAUGHTUP (get),
 * P2PRAFT_ELIMIT (BUSY); or P2PRAFT_ESHUTDOWN, P2PRAFT_ENOMEM. Decide with
 * p2praft_outcome_unknown(). get: *value (free with p2praft_free(); NULL
 * when empty) and *len; `consistent` reads go through a barrier on the
 * leader.
 */
P2PRAFT_API int p2praft_node_get(struct p2praft_node *node, const char *key,
                                 bool consistent, uint8_t **value, size_t *len,
                                 char *errmsg, size_t errmsg_len);
P2PRAFT_API int p2praft_node_set(struct p2praft_node *node, const char *key,
                                 const void *value, size_t len, char *errmsg,
                                 size_t errmsg_len);
P2PRAFT_API int p2praft_node_del(struct p2praft_node *node, const char *key,
                                 char *errmsg, size_t errmsg_len);
P2PRAFT_API int p2praft_node_cas(struct p2praft_node *node, const char *key,
                                 const void *expected, size_t expected_len,
                                 const void *value, size_t len, char *errmsg,
                                 size_t errmsg_len);

/* The status text ("key: value" lines: peer_id, role, leader, term,
 * commit_index, applied_index, caught_up (yes once this node applied up to
 * an index learned from a leader since it started: a barrier, or a write
 * it forwarded or committed), members and one "member:" line each,
 * removed (yes once this node learned it was removed: membership), ...)
 * into *text (free with p2praft_free()). 0, P2PRAFT_ENOMEM,
 * P2PRAFT_ESHUTDOWN. */
P2PRAFT_API int p2praft_node_status(struct p2praft_node *node, char **text);

/* ==== BEGIN membership (grow, shrink, replace, hand over) ===============
 *
 * A running cluster changes its members through the leader, one change at
 * a time, with libraft's raft_add / raft_assign / raft_remove /
 * raft_transfer. Any node takes these requests and forwards them to the
 * leader (P2PRAFT_FORWARD_PROTOCOL), as it does writes.
 *
 * Growing, the etcd way: first add the new member (PEER_ADD with its
 * multiaddr, ending in /p2p/<peer id>), then start it with an empty data
 * directory and `join` (p2praft node --join MA...: the addresses of
 * members to dial). The leader adds it as a spare, makes it a standby at
 * once (it receives the snapshot and the log, and does not count in the
 * quorum), and promotes it to voter once its match index is within
 * P2PRAFT_PROMOTE_LAG entries of the leader's last index (libraft's
 * catch-up round then closes the gap). An address that is wrong (no
 * /p2p/ part, bad syntax) is refused before anything is submitted; one
 * that cannot be reached stays a standby, never promoted: the quorum is
 * the voters', so it is kept.
 *
 * Addresses: a raft server's address in the configuration is its peer ID
 * string (bootstrapped members, whose addresses come from --peer) or, for
 * a member added with PEER_ADD, the multiaddr it was added with. The
 * configuration entry carries it to every node, and each node adds it to
 * its peerstore when the configuration changes. Admission to the raft and
 * forward protocols is the current and the last committed configuration
 * (the --peer/--join list admits only until the node holds a
 * configuration), so it follows every change on every node.
 *
 * Shrinking: PEER_RM removes a member for good. Removing the leader first
 * hands leadership to another voter, then the new leader removes it. The
 * removed node is told (REMOVED, best effort), or sees its configuration
 * without itself; it then stops campaigning (no election timeout, no
 * RequestVote), logs one line at warn level, says "removed: yes" in its
 * status and calls cfg.on_removed; its streams are refused by the others
 * from then on. The last voter
 * cannot be removed. A lost node is replaced by removing it and adding an
 * empty one (a new key, or the same key with a wiped data directory).
 *
 * Outcome: a change refused before it was submitted (bad address, already
 * or not a member, the last voter) is BAD REQUEST; one that could not be
 * submitted in time (no leader, another change in progress) is FAILED;
 * one submitted whose commit was not seen (leadership lost, timeout) is
 * UNKNOWN: read `peers` before trying again.
 *
 * Users of the raw consensus API (p2praft_consensus_* over a libraft
 * `struct raft` of their own) make the same calls on the loop thread, on
 * the leader: raft_add(r, req, p2praft_server_id(&pid), address, cb)
 * (address: the peer ID string or a multiaddr ending in /p2p/<id>), then
 * raft_assign(..., RAFT_STANDBY) and, once raft_match_index() is close to
 * raft_last_index(), raft_assign(..., RAFT_VOTER); raft_remove() and
 * raft_transfer() likewise. libraft takes one change at a time and asserts
 * (aborts) on a second one in flight or when called on a follower: check
 * raft_state() == RAFT_LEADER and wait for each change callback. A
 * joining node calls p2praft_io_set_members() with the peers it dials
 * (its configuration is empty until the leader's arrives), and
 * raft_start() without raft_bootstrap().
 * ---------------------------------------------------------------------- */

/* API ops (the `op` byte; struct p2praft_request.op takes them too):
 *   11 PEERS (none): the leader's configuration, one line per member:
 *      "PEERID ROLE STATE MATCH ADDRESS": ROLE voter|standby|spare, STATE
 *      leader|follower, MATCH the leader's match index for it, ADDRESS the
 *      one in the configuration ("-": its peer ID only)
 *   12 PEER_ADD (multiaddr ending in /p2p/<peer id>): add a member
 *   13 PEER_RM (peer ID): remove a member
 *   14 TRANSFER (peer ID, or empty: any voter): move leadership; answered
 *      OK with the new leader's peer ID. With P2PRAFT_API_FLAG_HANDOVER it
 *      is not forwarded: a node that does not lead answers OK at once.
 *   15 REMOVED (none; forward protocol only): the leader tells a member
 *      it removed. */
#define P2PRAFT_API_PEERS 11
#define P2PRAFT_API_PEER_ADD 12
#define P2PRAFT_API_PEER_RM 13
#define P2PRAFT_API_TRANSFER 14
#define P2PRAFT_API_REMOVED 15
#define P2PRAFT_API_FLAG_HANDOVER 0x04
/* A standby is promoted once it lags the leader by at most this many
 * entries. */
#define P2PRAFT_PROMOTE_LAG 64

/*
 * The members as the leader sees them: *text (owned, p2praft_free()) gets
 * the PEERS lines. 0, or the codes of the key-value calls (P2PRAFT_ERAFT:
 * no leader reachable in time).
 */
P2PRAFT_API int p2praft_node_peers(struct p2praft_node *node, char **text,
                                   char *errmsg, size_t errmsg_len);

/*
 * Add the member at `multiaddr` (borrowed; ending in /p2p/<peer id>), then
 * start it with `join`. Returns once the leader committed the change: 0;
 * P2PRAFT_EINVAL (a bad address, already a member: nothing submitted);
 * P2PRAFT_ERAFT (not submitted: no leader in time, another change in
 * progress); P2PRAFT_EUNKNOWN (submitted, outcome unknown: read the
 * peers); P2PRAFT_ESHUTDOWN. errmsg (may be NULL) says why.
 */
P2PRAFT_API int p2praft_node_add(struct p2praft_node *node,
                                 const char *multiaddr, char *errmsg,
                                 size_t errmsg_len);

/* Remove the member `peer_id` (borrowed) for good (this node itself too:
 * leaving). Codes as p2praft_node_add(); P2PRAFT_EINVAL also for a peer
 * that is not a member, or the last voter. */
P2PRAFT_API int p2praft_node_remove(struct p2praft_node *node,
                                    const char *peer_id, char *errmsg,
                                    size_t errmsg_len);

/*
 * Move leadership to `peer_id` (borrowed; NULL: any voter). 0 once the
 * leader moved (leader, if not NULL, gets the new leader's peer ID:
 * LP2P_PEER_ID_STRMAX bytes); P2PRAFT_EINVAL (not a voter, or the only
 * one); P2PRAFT_ERAFT (no leader reachable, or it did not move in time);
 * P2PRAFT_EUNKNOWN (the leader stepped down, its successor is not known
 * yet).
 */
P2PRAFT_API int p2praft_node_transfer(struct p2praft_node *node,
                                      const char *peer_id, char *leader,
                                      char *errmsg, size_t errmsg_len);

/*
 * Before stopping (p2praft node does it on SIGTERM): if this node leads
 * and another voter exists, hand leadership over and wait until it moved
 * or libraft gave up (one election timeout; the node's timeout_ms bounds
 * the call). 0 (moved, or nothing to do), or the codes of
 * p2praft_node_transfer() (P2PRAFT_ERAFT: still the leader). Never
 * forwarded.
 */
P2PRAFT_API int p2praft_node_handover(struct p2praft_node *node);

/* ==== END membership ==================================================== */

/* ------------------------------------------------------------------------
 * Client: a node's API from another process, here or on another machine
 *
 * A client holds one connection to one node: its unix socket (api_path),
 * or its libp2p host (node: a multiaddr ending in /p2p/<peer id>) on
 * P2PRAFT_CLIENT_PROTOCOL, where the node must list the client's peer ID
 * (struct p2praft_node_config.clients). It pipelines: any number of
 * requests may be submitted at once, from any thread; at most
 * max_inflight are sent and unanswered, the rest wait in the client, and
 * answers come back in any order. A client owns a thread (SIGPIPE blocked
 * in it; the process's signal handling is left alone) that runs the
 * callbacks. It does not reconnect: once its connection is lost, requests
 * fail with P2PRAFT_ECLOSED; open a new client.
 *
 *   struct p2praft_client_config cfg;
 *   p2praft_client_config_init(&cfg);
 *   cfg.api_path = "n1/api.sock";
 *   p2praft_client_open(&c, &cfg, err, sizeof(err));
 *   struct p2praft_request rq = {.op = P2PRAFT_API_SET, .key = "k",
 *                                .value = "v", .len = 1};
 *   rv = p2praft_client_call(c, &rq, &res);   blocking; or
 *   p2praft_client_send(c, &rq, on_result, ctx, &id);   async
 *   if (p2praft_outcome_unknown(rv)) ...       read before retrying a write
 *   p2praft_result_free(res);
 *   p2praft_client_close(c);
 * ---------------------------------------------------------------------- */

struct p2praft_client;

struct p2praft_client_config {
    /* Where: a node's unix socket path, or a node's multiaddr ending in
     * /p2p/<peer id> (libp2p). Exactly one. Borrowed during open. */
    const char *api_path;
    const char *node;
    /* The client's libp2p identity, for `node` (borrowed, copied). NULL: a
     * fresh key, which no node lists. */
    const struct lp2p_key *key;
    unsigned timeout_ms;   /* connecting, and each request until its
                            * answer (a watch until it started): 10000 */
    unsigned max_inflight; /* requests sent and not yet answered: 64 (0:
                            * 64); more wait in the client, unsent */
};

/* Fill `cfg` with the defaults above (pointers NULL). */
P2PRAFT_API void p2praft_client_config_init(struct p2praft_client_config *cfg);

/*
 * Connect and greet the node (a HELLO request): returns once the node
 * admitted the connection, or failed. `cfg` is borrowed for the call;
 * `errmsg` (may be NULL) says why it failed. Nothing was sent to the store
 * in any case. 0; P2PRAFT_EINVAL (bad config, bad multiaddr);
 * P2PRAFT_EDENIED (over libp2p: the node reset the stream, as it does when
 * it does not list this client's peer ID); P2PRAFT_ECLOSED (the node closed
 * the connection); P2PRAFT_ECONNREFUSED (no node on that socket);
 * P2PRAFT_ELIMIT (the node refused the connection: BUSY);
 * P2PRAFT_ETIMEDOUT; P2PRAFT_EPROTO (the node speaks another API version);
 * P2PRAFT_ENOMEM; P2PRAFT_EIO, or a host error of lp2p_stream_open()
 * (connection refused, peer ID mismatch...).
 */
P2PRAFT_API int p2praft_client_open(struct p2praft_client **out,
                                    const struct p2praft_client_config *cfg,
                                    char *errmsg, size_t errmsg_len);

/*
 * Close the connection, join the thread and free `c`. Requests not sent
 * yet get P2PRAFT_ECANCELED (not applied), requests sent and unanswered
 * P2PRAFT_ESHUTDOWN (outcome unknown), watches their END; those callbacks
 * run before this returns. Not from a callback (the client's thread).
 * NULL is ignored.
 */
P2PRAFT_API void p2praft_client_close(struct p2praft_client *c);

/* The node's peer ID, as it answered the greeting (borrowed from c). */
P2PRAFT_API const char *p2praft_client_node_id(const struct p2praft_client *c);

/* One request. Every pointer is borrowed for the call (copied). */
struct p2praft_request {
    enum p2praft_api_op op; /* GET, SET, DEL, CAS, STATUS, LS, or an
                             * operator request without fields: SNAPSHOT,
                             * METRICS, CLUSTER, HEALTH, SNAPSHOT_NOW (the
                             * snapshot's index in the result's index) */
    /* GET, SET, DEL, CAS: the key (1..P2PRAFT_KV_KEY_MAX bytes, no NUL);
     * LS: the prefix (NULL or "": every key); SNAPSHOT: NULL, or a paged
     * backup's cursor ("" then "ID:OFFSET": op 20 above) */
    const char *key;
    const void *value; /* SET, CAS: the new value (any bytes) */
    size_t len;
    const void *expected; /* CAS: the value it must hold now */
    size_t expected_len;
    bool consistent;   /* GET, LS: through a read barrier on the leader */
    const char *after; /* LS: the keys after this one (NULL: from the first) */
    uint32_t limit;    /* LS: at most this many (0, or over a page: a page) */
    bool keys_only;    /* LS: leave the values out */
};

/* An LS entry: key (NUL-terminated) and value. */
struct p2praft_kv {
    char *key;
    uint8_t *value;
    size_t len;
};

/*
 * The result of one request, answered or not. `rv` is 0 or the code of
 * the answer's status (P2PRAFT_ENOTFOUND, P2PRAFT_EMISMATCH, P2PRAFT_ERAFT
 * = FAILED, P2PRAFT_EINVAL = BAD REQUEST, P2PRAFT_ELIMIT = BUSY,
 * P2PRAFT_ENOTCAUGHTUP, P2PRAFT_EUNKNOWN = UNKNOWN or a status this build
 * does not know), or says why no answer came: P2PRAFT_ECLOSED or
 * P2PRAFT_ECANCELED (not sent: surely not applied), P2PRAFT_ELIMIT (not sent
 * before its timeout: the client had max_inflight requests in flight),
 * P2PRAFT_EUNKNOWN (the connection was lost after it was sent, or the
 * node's answers became unreadable), P2PRAFT_ETIMEDOUT (sent, no answer in
 * time), P2PRAFT_ESHUTDOWN (sent, client closed): for a write, these last
 * three mean the outcome is unknown (outcome_unknown); for a read, only
 * that no answer came. P2PRAFT_EPROTO: an LS page that did not parse.
 */
struct p2praft_result {
    uint32_t id;
    int rv;
    int status;           /* the answer's status (P2PRAFT_API_*); -1: none */
    bool outcome_unknown; /* p2praft_outcome_unknown(rv): a write may have
                           * been applied, or may still be */
    uint64_t index;       /* the answer's raft index */
    /* GET: the value; STATUS, METRICS, CLUSTER, HEALTH: the text;
     * SNAPSHOT: the backup; HELLO: the peer ID; an error: its message. A
     * NUL byte follows (not counted in len). */
    uint8_t *data;
    size_t len;
    /* LS: the entries, and whether more keys match (ask again with
     * `after` = the last key) */
    struct p2praft_kv *entries;
    size_t n_entries;
    bool more;
};

/* Runs once per request, on the client's thread, never inside the call
 * that submitted it. `res` is borrowed for the call. */
typedef void (*p2praft_result_cb)(void *ctx, const struct p2praft_result *res);

/*
 * Submit `rq` (copied) from any thread, the client's own included. 0: `cb`
 * (required) will run once; *id (may be NULL) gets the request's id. On
 * error `cb` never runs and nothing was sent: P2PRAFT_EINVAL (bad request:
 * key, sizes, op), P2PRAFT_ECLOSED (the connection is lost),
 * P2PRAFT_ESHUTDOWN (closing), P2PRAFT_ENOMEM.
 */
P2PRAFT_API int p2praft_client_send(struct p2praft_client *c,
                                    const struct p2praft_request *rq,
                                    p2praft_result_cb cb, void *ctx,
                                    uint32_t *id);

/*
 * Submit `rq` and wait for its result, from any thread but the client's:
 * returns res->rv, with *res (owned: p2praft_result_free()) set whenever
 * the request was submitted; when it was not (the errors of
 * p2praft_client_send(), and P2PRAFT_EINVAL from the client's thread),
 * *res is NULL.
 */
P2PRAFT_API int p2praft_client_call(struct p2praft_client *c,
                                    const struct p2praft_request *rq,
                                    struct p2praft_result **res);

/* Free a result of p2praft_client_call(). NULL is ignored. */
P2PRAFT_API void p2praft_result_free(struct p2praft_result *res);

/* One event of a watch; every pointer is borrowed for the callback. */
struct p2praft_watch_event {
    uint32_t watch;              /* the watch's id */
    enum p2praft_watch_kind kind;
    uint64_t index;              /* raft index of the change (STARTED: the
                                  * applied index it starts after) */
    const char *key;             /* SET, CAS, DEL */
    const uint8_t *value;        /* SET, CAS (a NUL byte follows) */
    size_t len;
    uint64_t dropped;            /* DROPPED: events lost, 0 when unknown
                                  * (a snapshot replaced the state): re-read
                                  * to resync */
    const struct p2praft_result *end; /* END: why it ended (rv 0 after
                                       * p2praft_client_unwatch()) */
};

typedef void (*p2praft_watch_cb)(void *ctx,
                                 const struct p2praft_watch_event *ev);

/*
 * Watch the keys that start with `prefix` (NULL or "": all; copied): `cb`
 * runs on the client's thread for STARTED, then for each change applied on
 * the node (SET, CAS, DEL) and each loss (DROPPED), and last, once, for
 * END. Errors as p2praft_client_send() (cb then never runs).
 */
P2PRAFT_API int p2praft_client_watch(struct p2praft_client *c,
                                     const char *prefix, p2praft_watch_cb cb,
                                     void *ctx, uint32_t *id);

/* End the watch `id` (any thread): its END follows (rv 0). 0, or the
 * errors of p2praft_client_send(). */
P2PRAFT_API int p2praft_client_unwatch(struct p2praft_client *c, uint32_t id);

/* ------------------------------------------------------------------------
 * Backups: what `p2praft snapshot save` writes (a SNAPSHOT answer) and
 * `p2praft restore` seeds a new data directory from. A backup holds the
 * store's state at a raft index, the term and the raft configuration,
 * under a SHA-256 of the whole file (format: src/raft/backup.h).
 * ---------------------------------------------------------------------- */

/* The first 8 bytes of every backup. */
#define P2PRAFT_BACKUP_MAGIC "p2prbak\n"
#define P2PRAFT_BACKUP_MAGIC_LEN 8

#define P2PRAFT_BACKUP_MEMBERS_MAX 64

struct p2praft_backup_info {
    uint64_t index, term;   /* of the state */
    uint64_t keys;          /* in the store */
    uint64_t state_bytes;   /* the store's encoded size */
    size_t n_members;       /* in the configuration (the first
                             * P2PRAFT_BACKUP_MEMBERS_MAX are listed) */
    char members[P2PRAFT_BACKUP_MEMBERS_MAX][LP2P_PEER_ID_STRMAX];
};

/*
 * Check a backup (`data`, borrowed) whole: header, checksum, configuration
 * and state. 0 with *info (may be NULL) filled; P2PRAFT_ECORRUPT with
 * `errmsg` (may be NULL) saying what is wrong (truncated, not a backup,
 * changed bytes...); P2PRAFT_ENOMEM.
 */
P2PRAFT_API int p2praft_backup_check(const uint8_t *data, size_t len,
                                     struct p2praft_backup_info *info,
                                     char *errmsg, size_t errmsg_len);

/*
 * Offline: seed the data directory `data_dir` (created when missing) of a
 * node of a new cluster from a backup (`data`, borrowed): its state
 * becomes a raft snapshot at the backup's index and term. The raft
 * configuration is the backup's when n_members is 0, else the peer ID
 * strings members[0..n_members) (borrowed), all voters. The node then
 * starts on the directory without --bootstrap. Nothing is written unless
 * the backup passes p2praft_backup_check(). 0; P2PRAFT_ECORRUPT (the
 * backup); P2PRAFT_EBUSY (a node holds the directory's lock);
 * P2PRAFT_EEXIST (the directory holds raft state); P2PRAFT_EINVAL (a bad
 * member); P2PRAFT_EIO, P2PRAFT_ENOSPACE, P2PRAFT_ENOMEM. `errmsg` says
 * which and why.
 */
P2PRAFT_API int p2praft_restore(const char *data_dir, const uint8_t *data,
                                size_t len, const char *const *members,
                                size_t n_members, char *errmsg,
                                size_t errmsg_len);

#endif /* P2PRAFT_H */
