/*
 * The replicated key-value store of the cluster node: its state type, its
 * op type (set, delete, compare-and-set) and apply_to, for p2praft_oplog.
 *
 * State (msgpack map, default codec): {"Data": map of key -> bytes (keys in
 * byte order), "Seq": ops applied, "Ok": outcome of the last op}. Keeping
 * the outcome in the state lets the committer of an op read it from the
 * state copy its commit callback receives, and keeps apply_to total: a
 * delete of a missing key or a failed compare-and-set is a successful apply
 * that leaves Data alone and sets Ok to false (never an apply error, which
 * would mark the node inconsistent).
 */
#ifndef P2PRAFT_RAFT_KV_H
#define P2PRAFT_RAFT_KV_H

#include <stdbool.h>
#include <stdint.h>

#include "p2praft.h"

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
    struct p2praft_map data; /* char * keys, struct p2praft_bytes values */
    uint64_t seq;
    bool ok;
};

struct p2praft__kv_op {
    int64_t kind;
    char *key;
    struct p2praft_bytes value;  /* set, cas: the new value */
    struct p2praft_bytes expect; /* cas: the value it must have now */
};

extern const struct p2praft_type p2praft__kv_state_type;
extern const struct p2praft_type p2praft__kv_op_type;
extern const struct p2praft_op_type p2praft__kv_op_ops;

/* The value of `key` in `st` (borrowed), or NULL when absent. */
const struct p2praft_bytes *p2praft__kv_lookup(
    const struct p2praft__kv_state *st, const char *key);

/* The position in st->data of the first key not below `key` (byte order;
 * st->data.len when none). */
size_t p2praft__kv_lower_bound(const struct p2praft__kv_state *st,
                               const char *key);

#endif
