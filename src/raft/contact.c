/* Per-peer contact records (see contact.h). */
#include <string.h>

#include "raft/contact.h"
#include "util/heap.h"

static struct p2praft__contact *find(const struct p2praft__contacts *t,
                                     raft_id id)
{
    size_t i;
    for (i = 0; i < t->n; i++) {
        if (t->v[i].id == id) {
            return &t->v[i];
        }
    }
    return NULL;
}

void p2praft__contacts_observe(struct p2praft__contacts *t,
                               const struct raft_message *m, uint64_t now_ms,
                               raft_term term)
{
    struct p2praft__contact *c = find(t, m->server_id);
    if (c == NULL) {
        if (t->n == t->cap) {
            size_t cap = t->cap == 0 ? 8 : 2 * t->cap;
            struct p2praft__contact *v = lp2p__realloc(t->v, cap * sizeof(*v));
            if (v == NULL) {
                return;
            }
            t->v = v;
            t->cap = cap;
        }
        c = &t->v[t->n++];
        memset(c, 0, sizeof(*c));
        c->id = m->server_id;
    }
    c->last_ms = now_ms;
    if (m->type == RAFT_APPEND_ENTRIES_RESULT &&
        m->append_entries_result.rejected == 0) {
        /* A match learned under an older term may belong to a log that
         * has since been cut: start over with each term. */
        if (c->match_term != term ||
            m->append_entries_result.last_log_index > c->match) {
            c->match = m->append_entries_result.last_log_index;
        }
        c->match_term = term;
    }
}

const struct p2praft__contact *
p2praft__contacts_get(const struct p2praft__contacts *t, raft_id id)
{
    return find(t, id);
}

void p2praft__contacts_free(struct p2praft__contacts *t)
{
    lp2p__free(t->v);
    memset(t, 0, sizeof(*t));
}
