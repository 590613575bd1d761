/*
 * The replicated key-value store of the cluster node: its state type, its
 * op type (set, delete, compare-and-set) applied in place, for
 * p2praft_oplog.
 *
 * State on the wire (msgpack map, what the field-table codec writes for
 * {"Data": map of key -> bytes, "Seq": ops applied, "Ok": outcome of the
 * last op}), keys in byte order. In memory, Data is an ordered map
 * (kvmap.h), so a write costs O(log n + the op's size) whatever the store
 * holds. Keeping the outcome in the state keeps apply total: a delete of a
 * missing key or a failed compare-and-set is a successful apply that leaves
 * Data alone and sets Ok to false (never an apply error, which would mark
 * the node inconsistent). The committer and the watches learn the outcome
 * from the op's result (struct p2praft__kv_result), not from the state.
 *
 * Reading (the node, backups, exports): p2praft__kv_get(), the cursor of
 * p2praft__kv_seek() / p2praft__kv_next() in key order, and
 * p2praft__kv_encode() (or p2praft_encode() with p2praft__kv_state_type),
 * which walks the map to write the state's bytes: those of a snapshot.
 * Everything read is borrowed from the state and valid on the loop thread
 * until the next apply.
 */
#ifndef P2PRAFT_RAFT_KV_H
#define P2PRAFT_RAFT_KV_H

#include <stdbool.h>
#include <stdint.h>

#include "p2praft.h"
#include "raft/kvmap.h"

/* NOP changes nothing but Seq: the node commits one as a read barrier
 * (libraft's raft_barrier() writes an uninitialised payload). */
enum {
    P2PRAFT__KV_SET = 1,
    P2PRAFT__KV_DEL = 2,
    P2PRAFT__KV_CAS = 3,
    P2PRAFT__KV_NOP = 4
};

#define P2PRAFT__KV_KEY_MAX P2PRAFT_KV_KEY_MAX
#define P2PRAFT__KV_VALUE_MAX P2PRAFT_KV_VALUE_MAX

struct p2praft__kv_state {
    struct p2praft__kvmap data;
    uint64_t seq;
    bool ok;
    /* Data encodes as a map even when empty: it was decoded as an empty
     * map and no op ran since (zero: nil, as an empty flat map did). */
    bool data_map;
};

struct p2praft__kv_op {
    int64_t kind;
    char *key;
    struct p2praft_bytes value;  /* set, cas: the new value */
    struct p2praft_bytes expect; /* cas: the value it must have now */
};

/* The result of one op: did it apply (set; del of a present key; cas that
 * matched; NOP)? What the commit callback and the update subscribers get. */
struct p2praft__kv_result {
    bool ok;
};

/* Custom codec (same bytes as the field table above), copy and release. */
extern const struct p2praft_type p2praft__kv_state_type;
extern const struct p2praft_type p2praft__kv_op_type;
extern const struct p2praft_type p2praft__kv_result_type;
/* apply_in_place, result_type = p2praft__kv_result_type; no apply_to. */
extern const struct p2praft_op_type p2praft__kv_op_ops;

/* The value of `key` in `st` (may be NULL: no state), borrowed: true and
 * *value (NULL when empty), *len; false when absent. */
bool p2praft__kv_get(const struct p2praft__kv_state *st, const char *key,
                     const uint8_t **value, size_t *len);

/* Keys in `st` (0 for NULL). */
size_t p2praft__kv_count(const struct p2praft__kv_state *st);

/* Position `it` on the first key not below `from` ("" or NULL: the first
 * key) in byte order; st may be NULL (nothing to iterate). */
void p2praft__kv_seek(const struct p2praft__kv_state *st,
                      struct p2praft__kvmap_iter *it, const char *from);

/* The entry at the cursor and advance: true with *key (NUL-terminated),
 * *klen, *value, *vlen (borrowed), false past the last key. */
bool p2praft__kv_next(struct p2praft__kvmap_iter *it, const char **key,
                      size_t *klen, const uint8_t **value, size_t *vlen);

/* Write the whole state's bytes (its snapshot payload, what p2praft_encode()
 * writes) through `write` in pieces, walking the map in key order. 0,
 * P2PRAFT_ENOMEM or the writer's error. */
int p2praft__kv_encode(const struct p2praft__kv_state *st,
                       p2praft_write_fn write, void *wctx);

/*
 * The raft snapshot threshold (entries between snapshots) for a store like
 * `st` (NULL: no state yet), given the configured one. A snapshot encodes
 * the whole store, so with a fixed threshold each write would pay
 * O(keys / threshold) of it: the threshold grows with the store instead
 * (a quarter of its keys), so that a snapshot is paid for by as many
 * writes as it holds entries / 4, whatever the size, and the log since the
 * last snapshot stays about a quarter of the state. Never below
 * `configured`.
 */
unsigned p2praft__kv_snapshot_threshold(const struct p2praft__kv_state *st,
                                        unsigned configured);

#endif
