/*
 * The ordered map of the key-value store (src/raft/kvmap.c), against a
 * simple model (a sorted array searched in full): random sets, replaces and
 * deletes over short keys that are prefixes of one another and hold bytes
 * above 0x7f; after each step the tree's invariants, get, full and prefix
 * iteration with a limit, clone and the O(n) build. Then failure
 * atomicity: every allocation of a set failed in turn leaves the map
 * exactly as it was.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oom.h"
#include "p2praft.h"
#include "raft/kvmap.h"
#include "test.h"

#define KMAX 5
#define VMAX 24

struct mentry {
    char key[KMAX + 1];
    size_t klen;
    uint8_t val[VMAX];
    size_t vlen;
    bool vnil;
};

struct model {
    struct mentry *e;
    size_t n, cap;
};

static uint64_t rng_state = 0x853c49e6748fea9bu;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

static int kcmp(const char *a, size_t al, const char *b, size_t bl)
{
    size_t m = al < bl ? al : bl;
    int c = m > 0 ? memcmp(a, b, m) : 0;
    if (c != 0) {
        return c;
    }
    return al < bl ? -1 : al > bl;
}

/* Index of the first entry not below key. */
static size_t m_lower(const struct model *m, const char *key, size_t klen)
{
    size_t i = 0;
    while (i < m->n && kcmp(m->e[i].key, m->e[i].klen, key, klen) < 0) {
        i++;
    }
    return i;
}

static void m_set(struct model *m, const char *key, size_t klen,
                  const uint8_t *v, size_t vlen, bool vnil)
{
    size_t i = m_lower(m, key, klen);
    if (i == m->n || kcmp(m->e[i].key, m->e[i].klen, key, klen) != 0) {
        if (m->n == m->cap) {
            m->cap = m->cap ? m->cap * 2 : 64;
            m->e = realloc(m->e, m->cap * sizeof(*m->e));
            ASSERT(m->e != NULL);
        }
        memmove(&m->e[i + 1], &m->e[i], (m->n - i) * sizeof(*m->e));
        m->n++;
        memcpy(m->e[i].key, key, klen);
        m->e[i].key[klen] = '\0';
        m->e[i].klen = klen;
    }
    if (vlen > 0) {
        memcpy(m->e[i].val, v, vlen);
    }
    m->e[i].vlen = vlen;
    m->e[i].vnil = vnil && vlen == 0;
}

static bool m_del(struct model *m, const char *key, size_t klen)
{
    size_t i = m_lower(m, key, klen);
    if (i == m->n || kcmp(m->e[i].key, m->e[i].klen, key, klen) != 0) {
        return false;
    }
    memmove(&m->e[i], &m->e[i + 1], (m->n - i - 1) * sizeof(*m->e));
    m->n--;
    return true;
}

/* A key of 0..KMAX bytes from a small alphabet: many shared prefixes,
 * bytes above 0x7f (which must sort after the ASCII ones). */
static size_t rand_key(char *k)
{
    static const char alpha[] = {'a', 'b', 'z', (char)0x80, (char)0xff};
    size_t n = rnd(KMAX + 1), i;
    for (i = 0; i < n; i++) {
        k[i] = alpha[rnd(sizeof(alpha))];
    }
    k[n] = '\0';
    return n;
}

static void same_entry(const struct p2praft__kvnode *n, const struct mentry *e)
{
    ASSERT(n != NULL);
    ASSERT_EQ(n->klen, e->klen);
    ASSERT_MEM_EQ(n->key, e->key, e->klen);
    ASSERT_EQ(n->key[n->klen], '\0');
    ASSERT_EQ(n->vlen, e->vlen);
    ASSERT_MEM_EQ(p2praft__kvnode_value(n), e->val, e->vlen);
    ASSERT_EQ(n->vnil, e->vnil);
}

/* The map holds exactly the model, in order. */
static void check_all(const struct p2praft__kvmap *map, const struct model *m)
{
    struct p2praft__kvmap_iter it;
    const struct p2praft__kvnode *n;
    size_t i = 0;
    ASSERT(p2praft__kvmap_valid(map));
    ASSERT_EQ(map->count, m->n);
    p2praft__kvmap_seek(map, &it, "", 0);
    while ((n = p2praft__kvmap_next(&it)) != NULL) {
        ASSERT(i < m->n);
        same_entry(n, &m->e[i]);
        i++;
    }
    ASSERT_EQ(i, m->n);
}

/* A page of `kv ls --prefix P --limit L`: the map and the model agree. */
static void check_prefix(const struct p2praft__kvmap *map,
                         const struct model *m, const char *p, size_t plen,
                         unsigned limit)
{
    struct p2praft__kvmap_iter it;
    const struct p2praft__kvnode *n;
    size_t i = m_lower(m, p, plen);
    unsigned got = 0;
    p2praft__kvmap_seek(map, &it, p, plen);
    while (got < limit && (n = p2praft__kvmap_next(&it)) != NULL &&
           n->klen >= plen && memcmp(n->key, p, plen) == 0) {
        ASSERT(i < m->n);
        same_entry(n, &m->e[i]);
        i++;
        got++;
    }
    /* the model has no further match within the limit */
    if (got < limit) {
        ASSERT(i == m->n || m->e[i].klen < plen ||
               memcmp(m->e[i].key, p, plen) != 0);
    }
}

TEST(kvmap, random_against_model)
{
    struct p2praft__kvmap map, copy;
    struct model m = {NULL, 0, 0};
    char k[KMAX + 1];
    uint8_t v[VMAX];
    unsigned step, j;
    p2praft__kvmap_init(&map);
    for (step = 0; step < 20000; step++) {
        size_t klen = rand_key(k), vlen = rnd(VMAX + 1);
        uint32_t what = rnd(10);
        for (j = 0; j < vlen; j++) {
            v[j] = (uint8_t)rnd(256);
        }
        if (what < 6) {
            bool vnil = rnd(2) == 0;
            ASSERT_OK(p2praft__kvmap_set(&map, k, klen, v, vlen, vnil));
            m_set(&m, k, klen, v, vlen, vnil);
        } else {
            ASSERT_EQ(p2praft__kvmap_del(&map, k, klen), m_del(&m, k, klen));
        }
        {
            const struct p2praft__kvnode *n =
                p2praft__kvmap_get(&map, k, klen);
            size_t i = m_lower(&m, k, klen);
            bool in = i < m.n && kcmp(m.e[i].key, m.e[i].klen, k, klen) == 0;
            ASSERT_EQ(n != NULL, in);
            if (in) {
                same_entry(n, &m.e[i]);
            }
        }
        if (step % 97 == 0) {
            check_all(&map, &m);
            klen = rand_key(k);
            check_prefix(&map, &m, k, klen, 1 + rnd(8));
            check_prefix(&map, &m, k, klen, 1000);
        }
        if (step % 1999 == 0) {
            p2praft__kvmap_init(&copy);
            ASSERT_OK(p2praft__kvmap_clone(&copy, &map));
            check_all(&copy, &m);
            p2praft__kvmap_clear(&copy);
        }
    }
    check_all(&map, &m);
    /* delete everything, in a random order */
    while (m.n > 0) {
        size_t i = rnd((uint32_t)m.n);
        char key[KMAX + 1];
        size_t kl = m.e[i].klen;
        memcpy(key, m.e[i].key, kl + 1);
        ASSERT(p2praft__kvmap_del(&map, key, kl));
        ASSERT(m_del(&m, key, kl));
        ASSERT(p2praft__kvmap_get(&map, key, kl) == NULL);
        ASSERT(p2praft__kvmap_valid(&map));
    }
    ASSERT(map.root == NULL);
    ASSERT_EQ(map.count, 0);
    p2praft__kvmap_clear(&map);
    free(m.e);
}

TEST(kvmap, build_sorted_and_insert_node)
{
    struct p2praft__kvmap map;
    struct p2praft__kvnode **nodes;
    struct p2praft__kvmap_iter it;
    const struct p2praft__kvnode *n;
    char key[16];
    unsigned i, count = 10000;
    nodes = calloc(count, sizeof(*nodes));
    ASSERT(nodes != NULL);
    for (i = 0; i < count; i++) {
        snprintf(key, sizeof(key), "k%06u", i);
        nodes[i] = p2praft__kvmap_node_new(key, strlen(key), key, 3, false);
        ASSERT(nodes[i] != NULL);
    }
    p2praft__kvmap_init(&map);
    p2praft__kvmap_build_sorted(&map, nodes, count);
    ASSERT(p2praft__kvmap_valid(&map));
    ASSERT_EQ(map.count, count);
    /* perfectly balanced: the height is ceil(log2(n + 1)) */
    ASSERT_EQ(map.root->height, 14);
    /* a detached entry with an existing key replaces it; a new one goes in */
    n = p2praft__kvmap_get(&map, "k000500", 7);
    ASSERT(n != NULL);
    p2praft__kvmap_insert_node(
        &map, p2praft__kvmap_node_new("k000500", 7, "new!", 4, false));
    p2praft__kvmap_insert_node(
        &map, p2praft__kvmap_node_new("k000500x", 8, "", 0, true));
    ASSERT(p2praft__kvmap_valid(&map));
    ASSERT_EQ(map.count, count + 1);
    n = p2praft__kvmap_get(&map, "k000500", 7);
    ASSERT_EQ(n->vlen, 4);
    ASSERT_MEM_EQ(p2praft__kvnode_value(n), "new!", 4);
    p2praft__kvmap_seek(&map, &it, "k000500", 7);
    ASSERT_STR_EQ(p2praft__kvmap_next(&it)->key, "k000500");
    ASSERT_STR_EQ(p2praft__kvmap_next(&it)->key, "k000500x");
    ASSERT_STR_EQ(p2praft__kvmap_next(&it)->key, "k000501");
    /* past the last key */
    p2praft__kvmap_seek(&map, &it, "l", 1);
    ASSERT(p2praft__kvmap_next(&it) == NULL);
    p2praft__kvmap_clear(&map);
    free(nodes);
}

/* Sets (insert, replace by another size, replace in place, empty) with
 * every allocation failed in turn: on failure the map is exactly as it
 * was, and nothing leaks. */
static int oom_set_body(void *ctx)
{
    struct p2praft__kvmap map;
    struct model m = {NULL, 0, 0};
    static const struct {
        const char *k, *v;
    } steps[] = {{"b", "1"},    {"a", "22"}, {"c", "333"}, {"b", "4444"},
                 {"b", "5555"}, {"a", ""},   {"d", "6"},   {"aa", "7"}};
    size_t i;
    int rv = 0;
    (void)ctx;
    p2praft__kvmap_init(&map);
    for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        size_t kl = strlen(steps[i].k), vl = strlen(steps[i].v);
        rv = p2praft__kvmap_set(&map, steps[i].k, kl, steps[i].v, vl, true);
        if (rv == 0) {
            m_set(&m, steps[i].k, kl, (const uint8_t *)steps[i].v, vl, true);
        } else {
            ASSERT_EQ(rv, P2PRAFT_ENOMEM);
        }
        check_all(&map, &m); /* the failed set changed nothing */
        if (rv != 0) {
            break;
        }
    }
    if (rv == 0) {
        ASSERT(p2praft__kvmap_del(&map, "c", 1)); /* cannot fail */
    }
    p2praft__kvmap_clear(&map);
    free(m.e);
    return rv;
}

TEST(kvmap, oom_set_is_atomic)
{
    /* 7 sets allocate; the same-size replace does not */
    ASSERT_EQ(test__oom_sweep(oom_set_body, NULL), 7);
}
