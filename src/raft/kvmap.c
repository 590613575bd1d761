/*
 * The ordered map of the key-value store: an AVL tree (see kvmap.h).
 *
 * Insert and delete walk down once, remembering the slots (the parent's
 * link fields) on the way, change the tree at the bottom, then rebalance
 * every slot of the path from the bottom up: no recursion, no parent
 * pointers. An entry is one block, so a replaced value of another size is a
 * new block swapped into the same slot (same links, same height); one of
 * the same size is overwritten where it is.
 */
#include <string.h>

#include "lp2p.h"
#include "raft/kvmap.h"
#include "util/heap.h"

typedef struct p2praft__kvnode node_t;

static int cmp(const void *key, size_t klen, const node_t *n)
{
    size_t m = klen < n->klen ? klen : n->klen;
    int c = m > 0 ? memcmp(key, n->key, m) : 0;
    if (c != 0) {
        return c;
    }
    return klen < n->klen ? -1 : klen > n->klen;
}

static unsigned height(const node_t *n)
{
    return n != NULL ? n->height : 0;
}

static void update(node_t *n)
{
    unsigned a = height(n->link[0]), b = height(n->link[1]);
    n->height = (uint8_t)((a > b ? a : b) + 1);
}

/* The child on side d takes the place of the node in *slot. */
static void rotate(node_t **slot, int d)
{
    node_t *x = *slot, *c = x->link[d];
    x->link[d] = c->link[!d];
    c->link[!d] = x;
    update(x);
    update(c);
    *slot = c;
}

/* Restore the AVL balance of the subtree in *slot, whose children are
 * balanced and differ in height by at most 2. */
static void fix(node_t **slot)
{
    node_t *x = *slot;
    int bal = (int)height(x->link[0]) - (int)height(x->link[1]);
    if (bal > 1 || bal < -1) {
        int d = bal > 1 ? 0 : 1; /* the heavy side */
        node_t *c = x->link[d];
        if (height(c->link[!d]) > height(c->link[d])) {
            rotate(&x->link[d], !d);
        }
        rotate(slot, d);
    } else {
        update(x);
    }
}

node_t *p2praft__kvmap_node_new(const void *key, size_t klen,
                                const void *value, size_t vlen, bool vnil)
{
    node_t *n;
    if (klen > UINT32_MAX || vlen > SIZE_MAX - sizeof(*n) - klen - 1) {
        return NULL;
    }
    n = lp2p__malloc(sizeof(*n) + klen + 1 + vlen);
    if (n == NULL) {
        return NULL;
    }
    n->link[0] = NULL;
    n->link[1] = NULL;
    n->vlen = vlen;
    n->klen = (uint32_t)klen;
    n->height = 1;
    n->vnil = vnil && vlen == 0;
    if (klen > 0) {
        memcpy(n->key, key, klen);
    }
    n->key[klen] = '\0';
    if (vlen > 0) {
        memcpy(n->key + klen + 1, value, vlen);
    }
    return n;
}

static void free_tree(node_t *n)
{
    /* Depth is bounded by the tree's height: recursion is fine. */
    if (n != NULL) {
        free_tree(n->link[0]);
        free_tree(n->link[1]);
        lp2p__free(n);
    }
}

void p2praft__kvmap_clear(struct p2praft__kvmap *m)
{
    free_tree(m->root);
    m->root = NULL;
    m->count = 0;
}

const node_t *p2praft__kvmap_get(const struct p2praft__kvmap *m,
                                 const void *key, size_t klen)
{
    const node_t *n = m->root;
    while (n != NULL) {
        int c = cmp(key, klen, n);
        if (c == 0) {
            return n;
        }
        n = n->link[c > 0];
    }
    return NULL;
}

/* Walk down to `key`: the slot that holds it (or where it would go) and
 * the slots above it, root first, in path[0..*depth). */
static node_t **descend(struct p2praft__kvmap *m, const void *key,
                        size_t klen, node_t **path[], unsigned *depth)
{
    node_t **slot = &m->root;
    unsigned n = 0;
    int c;
    while (*slot != NULL && (c = cmp(key, klen, *slot)) != 0) {
        path[n++] = slot;
        slot = &(*slot)->link[c > 0];
    }
    *depth = n;
    return slot;
}

static void rebalance(node_t **path[], unsigned n)
{
    while (n > 0) {
        fix(path[--n]);
    }
}

/* Put `fresh` where `old` is (same links and height) and free `old`. */
static void swap_in(node_t **slot, node_t *fresh)
{
    node_t *old = *slot;
    fresh->link[0] = old->link[0];
    fresh->link[1] = old->link[1];
    fresh->height = old->height;
    *slot = fresh;
    lp2p__free(old);
}

int p2praft__kvmap_set(struct p2praft__kvmap *m, const void *key, size_t klen,
                       const void *value, size_t vlen, bool vnil)
{
    node_t **path[P2PRAFT__KVMAP_MAX_HEIGHT], **slot, *fresh;
    unsigned n;
    if (klen > UINT32_MAX) {
        return LP2P_ETOOBIG;
    }
    slot = descend(m, key, klen, path, &n);
    if (*slot != NULL && (*slot)->vlen == vlen) {
        /* Same size: overwrite in place, nothing to allocate. */
        if (vlen > 0) {
            memcpy((*slot)->key + klen + 1, value, vlen);
        }
        (*slot)->vnil = vnil && vlen == 0;
        return 0;
    }
    fresh = p2praft__kvmap_node_new(key, klen, value, vlen, vnil);
    if (fresh == NULL) {
        return LP2P_ENOMEM;
    }
    if (*slot != NULL) {
        swap_in(slot, fresh);
        return 0;
    }
    *slot = fresh;
    m->count++;
    rebalance(path, n);
    return 0;
}

void p2praft__kvmap_insert_node(struct p2praft__kvmap *m, node_t *node)
{
    node_t **path[P2PRAFT__KVMAP_MAX_HEIGHT], **slot;
    unsigned n;
    slot = descend(m, node->key, node->klen, path, &n);
    if (*slot != NULL) {
        swap_in(slot, node);
        return;
    }
    node->link[0] = NULL;
    node->link[1] = NULL;
    node->height = 1;
    *slot = node;
    m->count++;
    rebalance(path, n);
}

bool p2praft__kvmap_del(struct p2praft__kvmap *m, const void *key,
                        size_t klen)
{
    node_t **path[P2PRAFT__KVMAP_MAX_HEIGHT], **slot, *t;
    unsigned n;
    slot = descend(m, key, klen, path, &n);
    t = *slot;
    if (t == NULL) {
        return false;
    }
    if (t->link[0] == NULL || t->link[1] == NULL) {
        *slot = t->link[t->link[0] == NULL];
    } else {
        /* Two children: the successor (the smallest key on the right)
         * takes t's place, links and height. */
        unsigned at = n;
        node_t **s = &t->link[1], *succ;
        path[n++] = slot;
        while ((*s)->link[0] != NULL) {
            path[n++] = s;
            s = &(*s)->link[0];
        }
        succ = *s;
        *s = succ->link[1];
        succ->link[0] = t->link[0];
        succ->link[1] = t->link[1];
        succ->height = t->height;
        *slot = succ;
        if (n > at + 1) {
            path[at + 1] = &succ->link[1]; /* was &t->link[1] */
        }
    }
    lp2p__free(t);
    m->count--;
    rebalance(path, n);
    return true;
}

static node_t *build(node_t **nodes, size_t n)
{
    size_t mid;
    node_t *x;
    if (n == 0) {
        return NULL;
    }
    mid = n / 2;
    x = nodes[mid];
    x->link[0] = build(nodes, mid);
    x->link[1] = build(nodes + mid + 1, n - mid - 1);
    update(x);
    return x;
}

void p2praft__kvmap_build_sorted(struct p2praft__kvmap *m, node_t **nodes,
                                 size_t n)
{
    m->root = build(nodes, n);
    m->count = n;
}

static int clone_tree(node_t **dst, const node_t *src)
{
    node_t *c;
    int rv;
    *dst = NULL;
    if (src == NULL) {
        return 0;
    }
    c = lp2p__malloc(sizeof(*c) + src->klen + 1 + src->vlen);
    if (c == NULL) {
        return LP2P_ENOMEM;
    }
    memcpy(c, src, sizeof(*c) + src->klen + 1 + src->vlen);
    c->link[0] = NULL;
    c->link[1] = NULL;
    *dst = c;
    rv = clone_tree(&c->link[0], src->link[0]);
    if (rv == 0) {
        rv = clone_tree(&c->link[1], src->link[1]);
    }
    return rv;
}

int p2praft__kvmap_clone(struct p2praft__kvmap *dst,
                         const struct p2praft__kvmap *src)
{
    int rv = clone_tree(&dst->root, src->root);
    if (rv != 0) {
        free_tree(dst->root);
        dst->root = NULL;
        dst->count = 0;
        return rv;
    }
    dst->count = src->count;
    return 0;
}

void p2praft__kvmap_seek(const struct p2praft__kvmap *m,
                         struct p2praft__kvmap_iter *it, const void *key,
                         size_t klen)
{
    const node_t *n = m->root;
    it->depth = 0;
    while (n != NULL) {
        if (cmp(key, klen, n) <= 0) {
            it->stack[it->depth++] = n;
            n = n->link[0];
        } else {
            n = n->link[1];
        }
    }
}

const node_t *p2praft__kvmap_next(struct p2praft__kvmap_iter *it)
{
    const node_t *n, *c;
    if (it->depth == 0) {
        return NULL;
    }
    n = it->stack[--it->depth];
    for (c = n->link[1]; c != NULL; c = c->link[0]) {
        it->stack[it->depth++] = c;
    }
    return n;
}

/* Height of a valid subtree, or -1; checks the order against the previous
 * key in order (*prev) and counts the entries. */
static int check(const node_t *n, const node_t **prev, size_t *count)
{
    int a, b;
    if (n == NULL) {
        return 0;
    }
    a = check(n->link[0], prev, count);
    if (a < 0) {
        return -1;
    }
    if (*prev != NULL && cmp(n->key, n->klen, *prev) <= 0) {
        return -1;
    }
    if (n->key[n->klen] != '\0') {
        return -1;
    }
    *prev = n;
    (*count)++;
    b = check(n->link[1], prev, count);
    if (b < 0 || a - b > 1 || b - a > 1 ||
        n->height != (a > b ? a : b) + 1) {
        return -1;
    }
    return n->height;
}

bool p2praft__kvmap_valid(const struct p2praft__kvmap *m)
{
    const node_t *prev = NULL;
    size_t count = 0;
    return check(m->root, &prev, &count) >= 0 && count == m->count;
}
