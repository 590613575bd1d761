/*
 * An ordered map of byte-string keys to byte-string values: an AVL tree,
 * one heap block per entry (node, key and value together).
 *
 * Keys compare as bytes (memcmp, then the shorter first: for keys without
 * NUL this is strcmp's order). Every operation is O(log n) plus the size
 * of what it copies; nothing is ever proportional to the whole map except
 * clear and clone.
 *
 * Failure atomicity: set is the only operation that allocates, and it
 * allocates the one block it needs before it changes anything, so on
 * LP2P_ENOMEM the map is exactly as it was. del and clear cannot fail.
 * The shape of the tree depends only on the sequence of operations (no
 * randomness), and iteration is in key order whatever the shape.
 *
 * Not thread-safe; entries (and pointers to their keys and values) stay
 * valid until the map changes.
 */
#ifndef P2PRAFT_RAFT_KVMAP_H
#define P2PRAFT_RAFT_KVMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Deeper than any AVL tree that fits in memory: height < 1.45 log2(n + 2),
 * so 64 levels hold more than 2^43 entries. */
#define P2PRAFT__KVMAP_MAX_HEIGHT 64

struct p2praft__kvnode {
    struct p2praft__kvnode *link[2]; /* smaller keys, larger keys */
    size_t vlen;
    uint32_t klen;
    uint8_t height;
    uint8_t vnil; /* the value is nil, not an empty string (codec) */
    /* klen key bytes, a NUL, then vlen value bytes */
    char key[];
};

struct p2praft__kvmap {
    struct p2praft__kvnode *root;
    size_t count;
};

/* In-order cursor (see seek/next). */
struct p2praft__kvmap_iter {
    const struct p2praft__kvnode *stack[P2PRAFT__KVMAP_MAX_HEIGHT];
    unsigned depth;
};

/* An entry's value: vlen bytes (borrowed; valid while the entry is). */
static inline const uint8_t *p2praft__kvnode_value(
    const struct p2praft__kvnode *n)
{
    return (const uint8_t *)n->key + n->klen + 1;
}

static inline void p2praft__kvmap_init(struct p2praft__kvmap *m)
{
    m->root = NULL;
    m->count = 0;
}

/* Free every entry; the map is empty afterwards. */
void p2praft__kvmap_clear(struct p2praft__kvmap *m);

/* The entry of `key` (klen bytes), or NULL. */
const struct p2praft__kvnode *p2praft__kvmap_get(const struct p2praft__kvmap *m,
                                                 const void *key, size_t klen);

/*
 * Insert `key` with a copy of `value` (vlen bytes; may be NULL when vlen is
 * 0), or replace the value of an existing key. `vnil` marks an empty value
 * that encodes as nil. 0, or LP2P_ENOMEM / LP2P_ETOOBIG (a key of 4 GiB or
 * more) with the map unchanged.
 */
int p2praft__kvmap_set(struct p2praft__kvmap *m, const void *key, size_t klen,
                       const void *value, size_t vlen, bool vnil);

/* Remove `key`: true if it was there. Cannot fail. */
bool p2praft__kvmap_del(struct p2praft__kvmap *m, const void *key,
                        size_t klen);

/*
 * Build `m` (empty) from n entries whose keys are strictly ascending,
 * taking over the blocks (made by p2praft__kvmap_node_new()) in `nodes`:
 * O(n), a perfectly balanced tree. Cannot fail.
 */
void p2praft__kvmap_build_sorted(struct p2praft__kvmap *m,
                                 struct p2praft__kvnode **nodes, size_t n);

/* A new detached entry (for build_sorted or insert_node), or NULL. */
struct p2praft__kvnode *p2praft__kvmap_node_new(const void *key, size_t klen,
                                                const void *value, size_t vlen,
                                                bool vnil);

/* Insert a detached entry, taking it over; an entry with the same key is
 * replaced (and freed). Cannot fail. */
void p2praft__kvmap_insert_node(struct p2praft__kvmap *m,
                                struct p2praft__kvnode *node);

/* A deep copy of `src` into the empty `dst`, of the same shape. 0, or
 * LP2P_ENOMEM with dst empty. */
int p2praft__kvmap_clone(struct p2praft__kvmap *dst,
                         const struct p2praft__kvmap *src);

/* Position `it` on the first key not below `key` (klen bytes; klen 0: the
 * first key). */
void p2praft__kvmap_seek(const struct p2praft__kvmap *m,
                         struct p2praft__kvmap_iter *it, const void *key,
                         size_t klen);

/* The entry at the cursor, then advance; NULL past the last key. */
const struct p2praft__kvnode *p2praft__kvmap_next(
    struct p2praft__kvmap_iter *it);

/* Check the tree's invariants (order, heights, balance, count), for
 * tests: true when they hold. */
bool p2praft__kvmap_valid(const struct p2praft__kvmap *m);

#endif
