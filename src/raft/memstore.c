/*
 * The in-memory raft store (contract: memstore.h).
 *
 * State changes happen in the call itself (an append is in the log when
 * append() returns), so ordering between appends, truncations and
 * snapshots is the call order. Only the completions are deferred, to a
 * queue drained on the same loop turn: by the check handle when the call
 * came from an I/O callback (the poll phase), or by the idle handle, which
 * also keeps the loop from blocking in between, when it came from a timer
 * or another phase. Store memory comes from the lp2p heap; what is handed
 * to raft (load, snapshot_get) from the raft heap.
 */
#include <string.h>

#include "raft/memstore.h"
#include "util/heap.h"

struct ment {
    raft_term term;
    enum raft_entry_type type;
    size_t len;
    uint8_t *data; /* NULL when len == 0 */
};

struct msnap {
    raft_index index;
    raft_term term;
    raft_index conf_index;
    uint8_t *conf; /* raft_configuration_encode() bytes */
    size_t conf_len;
    uint8_t *data;
    size_t len;
};

enum { PEND_APPEND = 1, PEND_PUT, PEND_GET };

struct pend {
    int kind;
    void *req;
    struct raft_snapshot *snap; /* PEND_GET: handed over on success */
};

struct p2praft_memstore {
    raft_term term;
    raft_id vote;
    raft_index start;   /* index of ents[head] */
    struct ment *ents;
    size_t head, n, cap;
    struct msnap *snap;
    struct mio *io;     /* the raft_io using this store, if any */
    bool hold_puts;
    bool hold_appends; /* test hook: appends stay pending */
    struct pend *held;
    unsigned n_held;
    uint64_t appended, snapshots;
};

struct mio {
    struct raft_io *io;
    struct p2praft_memstore *m;
    uv_loop_t *loop;
    bool inited;
    uv_idle_t idle;
    uv_check_t check;
    struct pend *q; /* ring of pending completions */
    size_t q_head, q_len, q_cap;
    bool draining;
    bool closing;
    unsigned handles_open;
    raft_io_close_cb close_cb;
};

/* ---- the store ---------------------------------------------------------- */

int p2praft_memstore_new(struct p2praft_memstore **out)
{
    struct p2praft_memstore *m;
    if (out == NULL) {
        return LP2P_EINVAL;
    }
    m = lp2p__calloc(1, sizeof(*m));
    if (m == NULL) {
        return LP2P_ENOMEM;
    }
    m->start = 1;
    *out = m;
    return 0;
}

static void ents_free_range(struct p2praft_memstore *m, size_t from,
                            size_t to)
{
    size_t i;
    for (i = from; i < to; i++) {
        lp2p__free(m->ents[m->head + i].data);
    }
}

static void snap_free(struct msnap *s)
{
    if (s != NULL) {
        lp2p__free(s->conf);
        lp2p__free(s->data);
        lp2p__free(s);
    }
}

void p2praft_memstore_free(struct p2praft_memstore *m)
{
    if (m == NULL) {
        return;
    }
    ents_free_range(m, 0, m->n);
    lp2p__free(m->ents);
    snap_free(m->snap);
    lp2p__free(m->held);
    lp2p__free(m);
}

void p2praft__memstore_drop_log(struct p2praft_memstore *m)
{
    ents_free_range(m, 0, m->n);
    m->head = 0;
    m->n = 0;
    m->start = m->snap != NULL ? m->snap->index + 1 : 1;
}

raft_index p2praft__memstore_snapshot_index(const struct p2praft_memstore *m)
{
    return m->snap != NULL ? m->snap->index : 0;
}

uint64_t p2praft__memstore_appended(const struct p2praft_memstore *m)
{
    return m->appended;
}

uint64_t p2praft__memstore_snapshots(const struct p2praft_memstore *m)
{
    return m->snapshots;
}

static raft_index last_index(const struct p2praft_memstore *m)
{
    return m->start + m->n - 1;
}

/* Room for k more entries at the end. */
static int ents_reserve(struct p2praft_memstore *m, size_t k)
{
    struct ment *e;
    size_t cap;
    if (m->head + m->n + k <= m->cap) {
        return 0;
    }
    if (m->n + k <= m->cap / 2 + 1 && m->head > 0) {
        memmove(m->ents, m->ents + m->head, m->n * sizeof(*m->ents));
        m->head = 0;
        return 0;
    }
    cap = m->cap != 0 ? m->cap * 2 : 64;
    while (cap < m->n + k) {
        cap *= 2;
    }
    e = lp2p__malloc(cap * sizeof(*e));
    if (e == NULL) {
        return RAFT_NOMEM;
    }
    if (m->n > 0) {
        memcpy(e, m->ents + m->head, m->n * sizeof(*e));
    }
    lp2p__free(m->ents);
    m->ents = e;
    m->cap = cap;
    m->head = 0;
    return 0;
}

/* Append copies of n entries; all or nothing. */
static int ents_append(struct p2praft_memstore *m,
                       const struct raft_entry *entries, unsigned n)
{
    unsigned i;
    int rv = ents_reserve(m, n);
    if (rv != 0) {
        return rv;
    }
    for (i = 0; i < n; i++) {
        struct ment *e = &m->ents[m->head + m->n + i];
        e->term = entries[i].term;
        e->type = entries[i].type;
        e->len = entries[i].buf.len;
        e->data = NULL;
        if (e->len > 0) {
            e->data = lp2p__malloc(e->len);
            if (e->data == NULL) {
                while (i-- > 0) {
                    lp2p__free(m->ents[m->head + m->n + i].data);
                }
                return RAFT_NOMEM;
            }
            memcpy(e->data, entries[i].buf.base, e->len);
        }
    }
    m->n += n;
    m->appended += n;
    return 0;
}

/* Drop entries with index >= index. */
static void ents_truncate(struct p2praft_memstore *m, raft_index index)
{
    if (index <= m->start) {
        ents_free_range(m, 0, m->n);
        m->head = 0;
        m->n = 0;
        if (index < m->start) {
            m->start = index;
        }
        return;
    }
    if (index > last_index(m)) {
        return;
    }
    ents_free_range(m, (size_t)(index - m->start), m->n);
    m->n = (size_t)(index - m->start);
}

/* Drop entries with index < index (a prefix). */
static void ents_drop_prefix(struct p2praft_memstore *m, raft_index index)
{
    size_t k;
    if (index <= m->start) {
        return;
    }
    k = index - m->start > m->n ? m->n : (size_t)(index - m->start);
    ents_free_range(m, 0, k);
    m->head += k;
    m->n -= k;
    m->start += k;
    if (m->n == 0) {
        m->head = 0;
        m->start = index;
    }
}

/* ---- completions ---------------------------------------------------------- */

static void idle_cb(uv_idle_t *h);
static void check_cb(uv_check_t *h);

static int q_push(struct mio *s, const struct pend *p)
{
    if (s->q_len == s->q_cap) {
        size_t cap = s->q_cap != 0 ? s->q_cap * 2 : 16, i;
        struct pend *q = lp2p__malloc(cap * sizeof(*q));
        if (q == NULL) {
            return RAFT_NOMEM;
        }
        for (i = 0; i < s->q_len; i++) {
            q[i] = s->q[(s->q_head + i) % s->q_cap];
        }
        lp2p__free(s->q);
        s->q = q;
        s->q_cap = cap;
        s->q_head = 0;
    }
    s->q[(s->q_head + s->q_len) % s->q_cap] = *p;
    s->q_len++;
    if (!s->closing && s->inited) {
        uv_idle_start(&s->idle, idle_cb);
    }
    return 0;
}

static void complete(struct pend *p, int status)
{
    switch (p->kind) {
    case PEND_APPEND: {
        struct raft_io_append *r = p->req;
        r->cb(r, status);
        break;
    }
    case PEND_PUT: {
        struct raft_io_snapshot_put *r = p->req;
        r->cb(r, status);
        break;
    }
    case PEND_GET: {
        struct raft_io_snapshot_get *r = p->req;
        if (status != 0 && p->snap != NULL) {
            unsigned i;
            raft_configuration_close(&p->snap->configuration);
            for (i = 0; i < p->snap->n_bufs; i++) {
                raft_free(p->snap->bufs[i].base);
            }
            raft_free(p->snap->bufs);
            raft_free(p->snap);
            p->snap = NULL;
        }
        r->cb(r, p->snap, status);
        break;
    }
    default:
        break;
    }
}

static void drain(struct mio *s)
{
    bool blocked = false;
    if (s->draining) {
        return; /* the outer drain goes on with what a callback added */
    }
    s->draining = true;
    while (s->q_len > 0 && !s->closing) {
        struct pend p = s->q[s->q_head];
        if (p.kind == PEND_APPEND && s->m->hold_appends) {
            /* Completions stay in order: all wait for the release. */
            blocked = true;
            break;
        }
        s->q_head = (s->q_head + 1) % s->q_cap;
        s->q_len--;
        complete(&p, 0);
    }
    s->draining = false;
    if ((s->q_len == 0 || blocked) && !s->closing) {
        uv_idle_stop(&s->idle);
    }
}

static void idle_cb(uv_idle_t *h)
{
    drain(h->data);
}

static void check_cb(uv_check_t *h)
{
    drain(h->data);
}

/* ---- storage methods ---------------------------------------------------- */

static struct p2praft_memstore *store_of(struct raft_io *io)
{
    return ((struct mio *)io->impl)->m;
}

static int m_init(struct raft_io *io, raft_id id, const char *address)
{
    struct mio *s = io->impl;
    (void)id;
    (void)address;
    if (s->inited) {
        return 0;
    }
    uv_idle_init(s->loop, &s->idle);
    uv_check_init(s->loop, &s->check);
    s->idle.data = s;
    s->check.data = s;
    uv_check_start(&s->check, check_cb);
    /* The check handle must not keep the loop alive by itself. */
    uv_unref((uv_handle_t *)&s->check);
    s->inited = true;
    return 0;
}

/* A raft-owned copy of the stored snapshot. */
static int snap_export(const struct msnap *ms, struct raft_snapshot **out)
{
    struct raft_snapshot *s;
    struct raft_buffer enc;
    int rv;
    s = raft_calloc(1, sizeof(*s));
    if (s == NULL) {
        return RAFT_NOMEM;
    }
    s->index = ms->index;
    s->term = ms->term;
    s->configuration_index = ms->conf_index;
    raft_configuration_init(&s->configuration);
    enc.base = ms->conf;
    enc.len = ms->conf_len;
    rv = raft_configuration_decode(&enc, &s->configuration);
    if (rv != 0) {
        raft_free(s);
        return rv;
    }
    s->bufs = raft_malloc(sizeof(*s->bufs));
    if (s->bufs == NULL) {
        goto oom;
    }
    s->n_bufs = 1;
    s->bufs[0].len = ms->len;
    s->bufs[0].base = raft_malloc(ms->len > 0 ? ms->len : 1);
    if (s->bufs[0].base == NULL) {
        raft_free(s->bufs);
        goto oom;
    }
    if (ms->len > 0) {
        memcpy(s->bufs[0].base, ms->data, ms->len);
    }
    *out = s;
    return 0;
oom:
    raft_configuration_close(&s->configuration);
    raft_free(s);
    return RAFT_NOMEM;
}

static void snap_destroy(struct raft_snapshot *s)
{
    unsigned i;
    raft_configuration_close(&s->configuration);
    for (i = 0; i < s->n_bufs; i++) {
        raft_free(s->bufs[i].base);
    }
    raft_free(s->bufs);
    raft_free(s);
}

static int m_load(struct raft_io *io, raft_term *term, raft_id *voted_for,
                  struct raft_snapshot **snapshot, raft_index *start_index,
                  struct raft_entry *entries[], size_t *n_entries)
{
    struct p2praft_memstore *m = store_of(io);
    struct raft_entry *es = NULL;
    uint8_t *batch = NULL;
    size_t total = 0, i, off = 0;
    int rv;
    *snapshot = NULL;
    if (m->snap != NULL) {
        rv = snap_export(m->snap, snapshot);
        if (rv != 0) {
            return rv;
        }
    }
    if (m->n > 0) {
        for (i = 0; i < m->n; i++) {
            total += m->ents[m->head + i].len;
        }
        es = raft_calloc(m->n, sizeof(*es));
        batch = raft_malloc(total > 0 ? total : 1);
        if (es == NULL || batch == NULL) {
            raft_free(es);
            raft_free(batch);
            if (*snapshot != NULL) {
                snap_destroy(*snapshot);
                *snapshot = NULL;
            }
            return RAFT_NOMEM;
        }
        for (i = 0; i < m->n; i++) {
            const struct ment *e = &m->ents[m->head + i];
            es[i].term = e->term;
            es[i].type = e->type;
            es[i].buf.base = batch + off;
            es[i].buf.len = e->len;
            es[i].batch = batch;
            if (e->len > 0) {
                memcpy(batch + off, e->data, e->len);
            }
            off += e->len;
        }
    }
    *term = m->term;
    *voted_for = m->vote;
    *start_index = m->start;
    *entries = es;
    *n_entries = m->n;
    return 0;
}

static int m_start(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick,
                   raft_io_recv_cb recv)
{
    (void)io;
    (void)msecs;
    (void)tick;
    (void)recv;
    return 0;
}

static int append_conf(struct p2praft_memstore *m,
                       const struct raft_configuration *conf, raft_term term)
{
    struct raft_buffer buf;
    struct raft_entry e;
    int rv = raft_configuration_encode(conf, &buf);
    if (rv != 0) {
        return rv;
    }
    e.term = term;
    e.type = RAFT_CHANGE;
    e.buf = buf;
    e.batch = NULL;
    rv = ents_append(m, &e, 1);
    raft_free(buf.base);
    return rv;
}

static int m_bootstrap(struct raft_io *io,
                       const struct raft_configuration *conf)
{
    struct p2praft_memstore *m = store_of(io);
    int rv;
    if (m->term != 0 || m->n != 0 || m->snap != NULL) {
        return RAFT_CANTBOOTSTRAP;
    }
    rv = append_conf(m, conf, 1);
    if (rv != 0) {
        return rv;
    }
    m->term = 1;
    m->vote = 0;
    return 0;
}

static int m_recover(struct raft_io *io, const struct raft_configuration *conf)
{
    struct p2praft_memstore *m = store_of(io);
    raft_term last_term = 0;
    if (m->n > 0) {
        last_term = m->ents[m->head + m->n - 1].term;
    } else if (m->snap != NULL) {
        last_term = m->snap->term;
    }
    if (last_term == 0) {
        return RAFT_INVALID;
    }
    return append_conf(m, conf, last_term);
}

static int m_set_term(struct raft_io *io, raft_term term)
{
    struct p2praft_memstore *m = store_of(io);
    m->term = term;
    m->vote = 0;
    return 0;
}

static int m_set_vote(struct raft_io *io, raft_id server_id)
{
    store_of(io)->vote = server_id;
    return 0;
}

static int m_send(struct raft_io *io, struct raft_io_send *req,
                  const struct raft_message *message, raft_io_send_cb cb)
{
    (void)io;
    (void)req;
    (void)message;
    (void)cb;
    return RAFT_NOCONNECTION; /* a store carries no messages */
}

static int m_append(struct raft_io *io, struct raft_io_append *req,
                    const struct raft_entry entries[], unsigned n,
                    raft_io_append_cb cb)
{
    struct mio *s = io->impl;
    struct pend p;
    int rv;
    if (s->closing) {
        return RAFT_CANCELED;
    }
    p.kind = PEND_APPEND;
    p.req = req;
    p.snap = NULL;
    /* Queue first: once the entries are in, the append cannot fail. */
    rv = q_push(s, &p);
    if (rv != 0) {
        return rv;
    }
    rv = ents_append(s->m, entries, n);
    if (rv != 0) {
        s->q_len--;
        return rv;
    }
    req->cb = cb;
    return 0;
}

static int m_truncate(struct raft_io *io, raft_index index)
{
    struct mio *s = io->impl;
    if (s->closing) {
        return RAFT_CANCELED;
    }
    ents_truncate(s->m, index);
    return 0;
}

/* Copy a snapshot (its buffers concatenated) into store memory. */
static int snap_import(const struct raft_snapshot *snapshot,
                       struct msnap **out)
{
    struct msnap *ms = lp2p__calloc(1, sizeof(*ms));
    struct raft_buffer enc;
    size_t total = 0, off = 0;
    unsigned i;
    int rv;
    if (ms == NULL) {
        return RAFT_NOMEM;
    }
    rv = raft_configuration_encode(&snapshot->configuration, &enc);
    if (rv != 0) {
        lp2p__free(ms);
        return rv;
    }
    ms->conf = lp2p__memdup(enc.base, enc.len);
    ms->conf_len = enc.len;
    raft_free(enc.base);
    for (i = 0; i < snapshot->n_bufs; i++) {
        total += snapshot->bufs[i].len;
    }
    ms->data = total > 0 ? lp2p__malloc(total) : NULL;
    if (ms->conf == NULL || (total > 0 && ms->data == NULL)) {
        snap_free(ms);
        return RAFT_NOMEM;
    }
    for (i = 0; i < snapshot->n_bufs; i++) {
        if (snapshot->bufs[i].len > 0) {
            memcpy(ms->data + off, snapshot->bufs[i].base,
                   snapshot->bufs[i].len);
            off += snapshot->bufs[i].len;
        }
    }
    ms->len = total;
    ms->index = snapshot->index;
    ms->term = snapshot->term;
    ms->conf_index = snapshot->configuration_index;
    *out = ms;
    return 0;
}

static int m_snapshot_put(struct raft_io *io, unsigned trailing,
                          struct raft_io_snapshot_put *req,
                          const struct raft_snapshot *snapshot,
                          raft_io_snapshot_put_cb cb)
{
    struct mio *s = io->impl;
    struct p2praft_memstore *m = s->m;
    struct msnap *ms;
    struct pend p;
    int rv;
    if (s->closing) {
        return RAFT_CANCELED;
    }
    p.kind = PEND_PUT;
    p.req = req;
    p.snap = NULL;
    if (m->hold_puts) {
        struct pend *h = lp2p__realloc(m->held, (m->n_held + 1) * sizeof(*h));
        if (h == NULL) {
            return RAFT_NOMEM;
        }
        m->held = h;
    } else {
        rv = q_push(s, &p);
        if (rv != 0) {
            return rv;
        }
    }
    rv = snap_import(snapshot, &ms);
    if (rv != 0) {
        if (!m->hold_puts) {
            s->q_len--;
        }
        return rv;
    }
    if (m->hold_puts) {
        m->held[m->n_held++] = p;
    }
    snap_free(m->snap);
    m->snap = ms;
    m->snapshots++;
    if (trailing == 0) {
        /* An installed snapshot replaces the whole log. */
        ents_free_range(m, 0, m->n);
        m->head = 0;
        m->n = 0;
        m->start = ms->index + 1;
    } else if (ms->index > trailing) {
        ents_drop_prefix(m, ms->index - trailing + 1);
    }
    req->cb = cb;
    return 0;
}

static int m_snapshot_get(struct raft_io *io, struct raft_io_snapshot_get *req,
                          raft_io_snapshot_get_cb cb)
{
    struct mio *s = io->impl;
    struct pend p;
    int rv;
    if (s->closing) {
        return RAFT_CANCELED;
    }
    p.kind = PEND_GET;
    p.req = req;
    p.snap = NULL;
    if (s->m->snap != NULL) {
        rv = snap_export(s->m->snap, &p.snap);
        if (rv != 0) {
            return rv;
        }
    }
    rv = q_push(s, &p);
    if (rv != 0) {
        if (p.snap != NULL) {
            snap_destroy(p.snap);
        }
        return rv;
    }
    req->cb = cb;
    return 0;
}

static raft_time m_time(struct raft_io *io)
{
    return uv_now(((struct mio *)io->impl)->loop);
}

static int m_random(struct raft_io *io, int min, int max)
{
    (void)io;
    return min + (max > min ? (int)(uv_hrtime() % (uint64_t)(max - min)) : 0);
}

void p2praft__memstore_hold_puts(struct p2praft_memstore *m, bool hold)
{
    unsigned i;
    m->hold_puts = hold;
    if (hold || m->io == NULL) {
        return;
    }
    for (i = 0; i < m->n_held; i++) {
        if (q_push(m->io, &m->held[i]) != 0) {
            /* Only when out of memory: keep the rest held. */
            memmove(m->held, m->held + i, (m->n_held - i) * sizeof(*m->held));
            m->n_held -= i;
            m->hold_puts = true;
            return;
        }
    }
    m->n_held = 0;
}

void p2praft__memstore_hold_appends(struct p2praft_memstore *m, bool hold)
{
    m->hold_appends = hold;
    if (!hold && m->io != NULL && m->io->q_len > 0 && !m->io->closing &&
        m->io->inited) {
        uv_idle_start(&m->io->idle, idle_cb);
    }
}

unsigned p2praft__memstore_held_puts(const struct p2praft_memstore *m)
{
    return m->n_held;
}

/* ---- close ---------------------------------------------------------------- */

static void handle_closed(uv_handle_t *h)
{
    struct mio *s = h->data;
    struct p2praft_memstore *m = s->m;
    raft_io_close_cb cb;
    unsigned i;
    if (--s->handles_open > 0) {
        return;
    }
    /* Whatever is still pending is canceled, in order. */
    while (s->q_len > 0) {
        struct pend p = s->q[s->q_head];
        s->q_head = (s->q_head + 1) % s->q_cap;
        s->q_len--;
        complete(&p, RAFT_CANCELED);
    }
    for (i = 0; i < m->n_held; i++) {
        complete(&m->held[i], RAFT_CANCELED);
    }
    m->n_held = 0;
    m->io = NULL;
    cb = s->close_cb;
    s->close_cb = NULL;
    if (cb != NULL) {
        cb(s->io);
    }
}

static void m_close(struct raft_io *io, raft_io_close_cb cb)
{
    struct mio *s = io->impl;
    if (s->closing) {
        return;
    }
    s->closing = true;
    s->close_cb = cb;
    if (!s->inited) {
        s->m->io = NULL;
        cb(io);
        return;
    }
    s->handles_open = 2;
    uv_close((uv_handle_t *)&s->idle, handle_closed);
    uv_close((uv_handle_t *)&s->check, handle_closed);
}

int p2praft__memstore_io_init(struct raft_io *io, uv_loop_t *loop,
                              struct p2praft_memstore *m)
{
    struct mio *s;
    if (m->io != NULL) {
        return RAFT_BUSY;
    }
    s = lp2p__calloc(1, sizeof(*s));
    if (s == NULL) {
        return RAFT_NOMEM;
    }
    s->io = io;
    s->m = m;
    s->loop = loop;
    memset(io, 0, sizeof(*io));
    io->version = 2;
    io->capacity = UINT16_MAX; /* memory is never "almost full" */
    io->impl = s;
    io->init = m_init;
    io->close = m_close;
    io->load = m_load;
    io->start = m_start;
    io->bootstrap = m_bootstrap;
    io->recover = m_recover;
    io->set_term = m_set_term;
    io->set_vote = m_set_vote;
    io->send = m_send;
    io->append = m_append;
    io->truncate = m_truncate;
    io->snapshot_put = m_snapshot_put;
    io->snapshot_get = m_snapshot_get;
    io->time = m_time;
    io->random = m_random;
    m->io = s;
    return 0;
}

void p2praft__memstore_io_close(struct raft_io *io)
{
    struct mio *s = io->impl;
    if (s == NULL) {
        return;
    }
    if (s->m != NULL && s->m->io == s) {
        s->m->io = NULL;
    }
    lp2p__free(s->q);
    lp2p__free(s);
    io->impl = NULL;
}
