/*
 * The storage half of p2praft's raft_io: libraft's storage calls passed
 * through to the store (raft_uv, whose network is raft_uv's idle transport
 * below, or the memory store), with the hashicorp wire's padding on disk
 * and the fast start decided at load; and the stall detection that guards
 * it, which watches the appends on every tick and decides whether raft
 * gets its tick. The raft_io object itself is io.c (its top says how the
 * halves fit), receiving and the snapshot shield io_recv.c; io_int.h holds
 * what they share.
 */
#include <stdio.h>
#include <string.h>

#include "raft/io_int.h"
#include "util/heap.h"
#include "util/log.h"

#define MOD "transport"

/* Unwritten entries beyond which no more are taken (see io.c's top). */
#define BACKLOG_ENTRIES 256
#define BACKLOG_BYTES (16u << 20)

/* ---- storage that stops writing ------------------------------------------ */

static void xfer_cb(struct raft_transfer *req)
{
    struct xfer *x = req->data;
    if (x->p != NULL) {
        x->p->xfer = NULL;
    }
    lp2p__free(x);
}

bool p2praft__io_stalled(struct pio *p)
{
    return !p->closing && p->appends_pending > 0 &&
           p->stall_ms >= P2PRAFT__STALL_MS;
}

bool p2praft__io_may_campaign(struct pio *p)
{
    return !p->retired && !p2praft__io_stalled(p);
}

bool p2praft__io_backlog_full(const struct pio *p)
{
    return p->append_entries_pending >= BACKLOG_ENTRIES ||
           p->append_bytes_pending >= BACKLOG_BYTES;
}

/* A leader whose storage is stalled hands leadership to an up-to-date
 * voter, at most once per election timeout (libraft gives up a transfer
 * after one). */
static void maybe_transfer(struct pio *p)
{
    struct raft *r = p2praft__io_raft(p);
    uint64_t now = uv_now(p->loop);
    struct xfer *x;
    int rv;
    if (r == NULL || raft_state(r) != RAFT_LEADER || p->xfer != NULL ||
        raft_transferee(r) != 0 ||
        (p->transfer_ms != 0 && now - p->transfer_ms < r->election_timeout)) {
        return;
    }
    x = lp2p__calloc(1, sizeof(*x));
    if (x == NULL) {
        return;
    }
    x->p = p;
    x->req.data = x;
    p->transfer_ms = now;
    rv = raft_transfer(r, &x->req, 0, xfer_cb);
    if (rv != 0) {
        LOG_DEBUG(MOD, "leadership transfer refused: %s", raft_strerror(rv));
        lp2p__free(x);
        return;
    }
    p->xfer = x;
    p->stats.transfers++;
    LOG_WARN(MOD, "storage stalled: handing leadership to server %llu",
             (unsigned long long)raft_transferee(r));
}

/* Every tick: count the time appends wait without progress (a late tick,
 * the loop being busy, counts for two ticks at most), notice a stall
 * (logged once), and act on it. */
static void storage_watch(struct pio *p)
{
    uint64_t now = uv_now(p->loop), gap = now - p->watch_ms;
    p->watch_ms = now;
    if (p->appends_pending == 0 || p->append_progress) {
        p->stall_ms = 0;
    } else {
        p->stall_ms += gap < 2 * (uint64_t)p->tick_ms ? gap : 2 * p->tick_ms;
    }
    p->append_progress = false;
    if (!p2praft__io_stalled(p)) {
        return;
    }
    if (!p->stall_logged) {
        p->stall_logged = true;
        p->stall_since_ms = now - p->stall_ms;
        p->stats.storage_stalls++;
        LOG_WARN(MOD,
                 "storage stalled: no append completed for %llu ms (%u "
                 "writes, %llu entries, %llu KiB waiting; disk full?): not "
                 "campaigning, refusing new entries",
                 (unsigned long long)p->stall_ms,
                 p->appends_pending,
                 (unsigned long long)p->append_entries_pending,
                 (unsigned long long)(p->append_bytes_pending / 1024));
    }
    maybe_transfer(p);
}

void p2praft__io_tick_cb(uv_timer_t *t)
{
    struct pio *p = t->data;
    struct raft *r;
    if (p->tick_cb != NULL && !p->closing) {
        storage_watch(p);
        r = p2praft__io_raft(p);
        /* No election timeout while the storage is stalled: the node
         * must not campaign (its RequestVotes are withheld anyway), and a
         * term it bumped at every timeout would make it refuse, and so
         * stall, the healthy candidates (see p2praft__io_recv()). A
         * removed node (retired) must not campaign either. */
        if (r != NULL && raft_state(r) != RAFT_LEADER &&
            !p2praft__io_may_campaign(p)) {
            p2praft__io_after_raft(p);
            return;
        }
        p->tick_cb(p->io);
        p2praft__io_after_raft(p);
    }
}

void p2praft__io_tick_now(struct pio *p)
{
    if (p->started && !p->closing) {
        uv_timer_start(&p->tick, p2praft__io_tick_cb, 0, p->tick_ms);
    }
}

/* ---- storage pass-through ------------------------------------------------- */

struct wappend {
    struct raft_io_append inner;
    struct raft_io_append *outer;
    raft_io_append_cb cb;
    struct pio *p;
    struct raft_entry *padded; /* see pad_entries() */
    uint8_t *pad_data;
    unsigned n;
    uint64_t bytes;
};

/*
 * raft_uv stores entries whose sizes are multiples of 8 only; p2praft's own
 * format pads its entries, but the seed's (hashicorp wire) entries are the
 * bare bytes go-libp2p-raft writes, of any length. On disk, commands are
 * stored as data, zeros, then one byte k (1..8) = the bytes added, so that
 * the exact bytes come back at load (unpad_entries()). Barriers and
 * configurations are libraft's own, already aligned. Memory stores keep
 * entries as they are.
 */
static bool pads(const struct pio *p)
{
    return p->cfg.wire == P2PRAFT_WIRE_HASHICORP &&
           p->cfg.store == P2PRAFT_STORE_DISK;
}

static int pad_entries(struct wappend *w, const struct raft_entry entries[],
                       unsigned n)
{
    size_t total = 0, off = 0;
    unsigned i;
    for (i = 0; i < n; i++) {
        total += entries[i].type == RAFT_COMMAND
                     ? (entries[i].buf.len + 8) & ~(size_t)7
                     : 0;
    }
    w->padded = lp2p__calloc(n > 0 ? n : 1, sizeof(*w->padded));
    w->pad_data = lp2p__malloc(total > 0 ? total : 1);
    if (w->padded == NULL || w->pad_data == NULL) {
        lp2p__free(w->padded);
        lp2p__free(w->pad_data);
        w->padded = NULL;
        w->pad_data = NULL;
        return RAFT_NOMEM;
    }
    for (i = 0; i < n; i++) {
        size_t len = entries[i].buf.len;
        size_t plen = (len + 8) & ~(size_t)7;
        uint8_t *d = w->pad_data + off;
        w->padded[i] = entries[i];
        w->padded[i].batch = NULL;
        if (entries[i].type != RAFT_COMMAND) {
            continue;
        }
        if (len > 0) {
            memcpy(d, entries[i].buf.base, len);
        }
        memset(d + len, 0, plen - len);
        d[plen - 1] = (uint8_t)(plen - len);
        w->padded[i].buf.base = d;
        w->padded[i].buf.len = plen;
        off += plen;
    }
    return 0;
}

static int unpad_entries(struct pio *p, struct raft_entry *entries, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        struct raft_buffer *b = &entries[i].buf;
        uint8_t k = b->len > 0 ? ((uint8_t *)b->base)[b->len - 1] : 0;
        if (entries[i].type != RAFT_COMMAND) {
            continue;
        }
        if (b->len % 8 != 0 || k < 1 || k > 8 || k > b->len) {
            snprintf(p->io->errmsg, sizeof(p->io->errmsg),
                     "log entry %zu of %zu is not in the hashicorp wire's "
                     "disk layout (a data directory of the other wire?)",
                     i + 1, n);
            return RAFT_CORRUPT;
        }
        b->len -= k;
    }
    return 0;
}

static void wappend_cb(struct raft_io_append *inner, int status)
{
    struct wappend *w = inner->data;
    struct raft_io_append *outer = w->outer;
    raft_io_append_cb cb = w->cb;
    struct pio *p = w->p;
    lp2p__free(w->padded);
    lp2p__free(w->pad_data);
    p->appends_pending--;
    p->append_entries_pending -= w->n;
    p->append_bytes_pending -= w->bytes;
    p->append_progress = true;
    p->stall_ms = 0;
    if (status != 0 && status != RAFT_CANCELED) {
        LOG_WARN(MOD, "append of %u entries failed: %s", w->n,
                 raft_strerror(status));
    }
    if (p->stall_logged && status == 0) {
        p->stall_logged = false;
        LOG_WARN(MOD, "storage writes again after %llu ms",
                 (unsigned long long)(uv_now(p->loop) - p->stall_since_ms));
    }
    lp2p__free(w);
    cb(outer, status);
    p2praft__io_after_raft(p);
}

/*
 * libraft 0.22.1 bug (cowsql/raft src/replication.c, replicationAppend(),
 * the loop "Possibly apply configuration changes as uncommitted"; still
 * so at upstream 2d8dfe8d): a follower takes each RAFT_CHANGE entry among
 * the new entries of an AppendEntries with membershipUncommittedChange(r,
 * index, entry), `index` being the FIRST new entry's index, not index + i.
 * When the configuration entry is not the first of the batch (a follower
 * that lagged gets [command, configuration, ...] at once), its
 * configuration_uncommitted_index names a wrong entry. The RAFT_CONFIGURATION
 * event that the commit of the real entry brings
 * (replicationApplyConfigurationChange()) only clears the index when it
 * matches, so it never is: the configuration stays "uncommitted" for good,
 * and once this node leads, every configuration change (raft_add,
 * raft_remove, raft_assign) fails with RAFT_CANTCHANGE -- a `--leave` or
 * `peers rm` retries until its deadline. The rollback of a truncated
 * configuration (deleteConflictingEntries(): uncommitted index >= truncation
 * index) misses it too.
 *
 * libraft hands the same batch to io->append right after that step
 * (legacy.c, legacyHandleUpdateEntries()), with the entries already in its
 * in-memory log, and before any commit of them is applied: this io puts
 * the index right there. The configuration libraft installed is the batch's
 * last configuration entry's (the loop overwrites it), so that is the index.
 * A leader's own entries (ClientSubmit() uses index + i) are already right.
 */
bool p2praft__io_fix_conf_index(struct raft *r,
                                const struct raft_entry entries[], unsigned n)
{
    raft_index last_index, first;
    unsigned i, last = n;
    if (r == NULL || n == 0 || raft_state(r) != RAFT_FOLLOWER) {
        return false;
    }
    for (i = 0; i < n; i++) {
        if (entries[i].type == RAFT_CHANGE) {
            last = i;
        }
    }
    last_index = raft_last_index(r);
    if (last == n || last == 0 || last_index < n) {
        return false; /* no configuration, or the first: right as it is */
    }
    first = last_index - n + 1;
    if (r->configuration_uncommitted_index != first) {
        return false;
    }
    r->configuration_uncommitted_index = first + last;
    LOG_DEBUG(MOD,
              "uncommitted configuration index %llu corrected to %llu "
              "(libraft 0.22.1 records a batch's first index)",
              (unsigned long long)first,
              (unsigned long long)r->configuration_uncommitted_index);
    return true;
}

static int io_append(struct raft_io *io, struct raft_io_append *req,
                     const struct raft_entry entries[], unsigned n,
                     raft_io_append_cb cb)
{
    struct pio *p = P(io);
    struct wappend *w;
    unsigned i;
    int rv;
    if (p->closing) {
        return RAFT_CANCELED;
    }
    p2praft__io_fix_conf_index(p2praft__io_raft(p), entries, n);
    w = lp2p__calloc(1, sizeof(*w));
    if (w == NULL) {
        return RAFT_NOMEM;
    }
    w->inner.data = w;
    w->outer = req;
    w->cb = cb;
    w->p = p;
    w->n = n;
    w->bytes = 0;
    for (i = 0; i < n; i++) {
        w->bytes += entries[i].buf.len;
    }
    req->cb = cb;
    if (n > 0) {
        p->last_term = entries[n - 1].term;
    }
    if (pads(p) && pad_entries(w, entries, n) != 0) {
        lp2p__free(w);
        return RAFT_NOMEM;
    }
    rv = p->store.append(&p->store, &w->inner,
                         w->padded != NULL ? w->padded : entries, n,
                         wappend_cb);
    if (rv != 0) {
        lp2p__free(w->padded);
        lp2p__free(w->pad_data);
        lp2p__free(w);
        snprintf(io->errmsg, sizeof(io->errmsg), "%s", p->store.errmsg);
        return rv;
    }
    /* The write runs on libuv's pool; with busy polling on, the loop
     * spins meanwhile and takes its completion without a wakeup. */
    lp2p_host_kick(p->host);
    if (p->appends_pending == 0) {
        p->stall_ms = 0;
    }
    p->appends_pending++;
    p->append_entries_pending += n;
    p->append_bytes_pending += w->bytes;
    return 0;
}

struct wput {
    struct raft_io_snapshot_put inner;
    struct raft_io_snapshot_put *outer;
    raft_io_snapshot_put_cb cb;
    struct pio *p;
    bool install;
};

static void wput_cb(struct raft_io_snapshot_put *inner, int status)
{
    struct wput *w = inner->data;
    struct raft_io_snapshot_put *outer = w->outer;
    raft_io_snapshot_put_cb cb = w->cb;
    struct pio *p = w->p;
    bool install = w->install;
    lp2p__free(w);
    if (install) {
        p->put_installing = false;
    } else {
        p->puts_taking--;
    }
    cb(outer, status);
    p2praft__io_after_raft(p);
    if (!install && !p->closing) {
        p2praft__io_deliver_held(p);
    }
}

static int io_snapshot_put(struct raft_io *io, unsigned trailing,
                           struct raft_io_snapshot_put *req,
                           const struct raft_snapshot *snapshot,
                           raft_io_snapshot_put_cb cb)
{
    struct pio *p = P(io);
    struct wput *w;
    int rv;
    if (p->closing) {
        return RAFT_CANCELED;
    }
    w = lp2p__malloc(sizeof(*w));
    if (w == NULL) {
        return RAFT_NOMEM;
    }
    w->inner.data = w;
    w->outer = req;
    w->cb = cb;
    w->p = p;
    w->install = p->delivering_install;
    req->cb = cb;
    rv = p->store.snapshot_put(&p->store, trailing, &w->inner, snapshot,
                               wput_cb);
    if (rv != 0) {
        lp2p__free(w);
        snprintf(io->errmsg, sizeof(io->errmsg), "%s", p->store.errmsg);
        return rv;
    }
    if (w->install) {
        p->last_term = snapshot->term;
        p->put_installing = true;
    } else {
        p->puts_taking++;
    }
    return 0;
}

struct wget {
    struct raft_io_snapshot_get inner;
    struct raft_io_snapshot_get *outer;
    raft_io_snapshot_get_cb cb;
    struct pio *p;
};

static void wget_cb(struct raft_io_snapshot_get *inner,
                    struct raft_snapshot *snapshot, int status)
{
    struct wget *w = inner->data;
    struct raft_io_snapshot_get *outer = w->outer;
    raft_io_snapshot_get_cb cb = w->cb;
    struct pio *p = w->p;
    lp2p__free(w);
    cb(outer, snapshot, status);
    p2praft__io_after_raft(p);
}

static int io_snapshot_get(struct raft_io *io, struct raft_io_snapshot_get *req,
                           raft_io_snapshot_get_cb cb)
{
    struct pio *p = P(io);
    struct wget *w;
    int rv;
    if (p->closing) {
        return RAFT_CANCELED;
    }
    w = lp2p__malloc(sizeof(*w));
    if (w == NULL) {
        return RAFT_NOMEM;
    }
    w->inner.data = w;
    w->outer = req;
    w->cb = cb;
    w->p = p;
    req->cb = cb;
    rv = p->store.snapshot_get(&p->store, &w->inner, wget_cb);
    if (rv != 0) {
        lp2p__free(w);
        snprintf(io->errmsg, sizeof(io->errmsg), "%s", p->store.errmsg);
    }
    return rv;
}

#define PASS(call)                                                            \
    do {                                                                      \
        int rv_ = (call);                                                     \
        if (rv_ != 0) {                                                       \
            snprintf(io->errmsg, sizeof(io->errmsg), "%s", p->store.errmsg);  \
        }                                                                     \
        return rv_;                                                           \
    } while (0)

static int io_bootstrap(struct raft_io *io,
                        const struct raft_configuration *conf)
{
    struct pio *p = P(io);
    PASS(p->store.bootstrap(&p->store, conf));
}

static int io_recover(struct raft_io *io, const struct raft_configuration *conf)
{
    struct pio *p = P(io);
    PASS(p->store.recover(&p->store, conf));
}

static int io_set_term(struct raft_io *io, raft_term term)
{
    struct pio *p = P(io);
    PASS(p->store.set_term(&p->store, term));
}

static int io_set_vote(struct raft_io *io, raft_id server_id)
{
    struct pio *p = P(io);
    PASS(p->store.set_vote(&p->store, server_id));
}

static int io_truncate(struct raft_io *io, raft_index index)
{
    struct pio *p = P(io);
    p->last_term = 0;
    PASS(p->store.truncate(&p->store, index));
}

/* Is this the state right after bootstrap: term 1, no vote, no snapshot,
 * only the bootstrap configuration in the log? Then the voter with the
 * smallest ID may start the first election at once. */
static void check_fresh(struct pio *p, raft_term term, raft_id vote,
                        const struct raft_snapshot *snapshot,
                        raft_index start, const struct raft_entry *entries,
                        size_t n)
{
    struct raft_configuration conf;
    raft_id first = 0;
    unsigned i, voters = 0;
    p->fresh = false;
    if (p->cfg.no_fast_start || term != 1 || vote != 0 || snapshot != NULL ||
        start != 1 || n != 1 || entries[0].type != RAFT_CHANGE) {
        return;
    }
    raft_configuration_init(&conf);
    if (raft_configuration_decode(&entries[0].buf, &conf) != 0) {
        return;
    }
    for (i = 0; i < conf.n; i++) {
        if (conf.servers[i].role == RAFT_VOTER) {
            voters++;
            if (first == 0 || conf.servers[i].id < first) {
                first = conf.servers[i].id;
            }
        }
    }
    raft_configuration_close(&conf);
    p->fresh = voters > 1 && first == p->id;
}

static int io_load(struct raft_io *io, raft_term *term, raft_id *voted_for,
                   struct raft_snapshot **snapshot, raft_index *start_index,
                   struct raft_entry *entries[], size_t *n_entries)
{
    struct pio *p = P(io);
    int rv = p->store.load(&p->store, term, voted_for, snapshot, start_index,
                           entries, n_entries);
    if (rv != 0) {
        snprintf(io->errmsg, sizeof(io->errmsg), "%s", p->store.errmsg);
        return rv;
    }
    if (pads(p) && (rv = unpad_entries(p, *entries, *n_entries)) != 0) {
        /* raft frees nothing on a failed load */
        if (*n_entries > 0) {
            raft_free((*entries)[0].batch);
        }
        raft_free(*entries);
        if (*snapshot != NULL) {
            raft_configuration_close(&(*snapshot)->configuration);
            raft_free((*snapshot)->bufs[0].base);
            raft_free((*snapshot)->bufs);
            raft_free(*snapshot);
        }
        *entries = NULL;
        *n_entries = 0;
        *snapshot = NULL;
        return rv;
    }
    check_fresh(p, *term, *voted_for, *snapshot, *start_index, *entries,
                *n_entries);
    if (*n_entries > 0) {
        p->last_term = (*entries)[*n_entries - 1].term;
    } else if (*snapshot != NULL) {
        p->last_term = (*snapshot)->term;
    }
    return 0;
}

void p2praft__io_store_methods(struct raft_io *io)
{
    io->load = io_load;
    io->bootstrap = io_bootstrap;
    io->recover = io_recover;
    io->set_term = io_set_term;
    io->set_vote = io_set_vote;
    io->append = io_append;
    io->truncate = io_truncate;
    io->snapshot_put = io_snapshot_put;
    io->snapshot_get = io_snapshot_get;
}

/* ---- raft_uv's idle transport ----------------------------------------------- */

static int null_init(struct raft_uv_transport *t, raft_id id,
                     const char *address)
{
    (void)t;
    (void)id;
    (void)address;
    return 0;
}

static int null_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
    (void)t;
    (void)cb;
    return 0;
}

static int null_connect(struct raft_uv_transport *t,
                        struct raft_uv_connect *req, raft_id id,
                        const char *address, raft_uv_connect_cb cb)
{
    (void)t;
    (void)req;
    (void)id;
    (void)address;
    (void)cb;
    return RAFT_NOCONNECTION;
}

static void null_close(struct raft_uv_transport *t,
                       raft_uv_transport_close_cb cb)
{
    cb(t);
}

void p2praft__null_transport_init(struct raft_uv_transport *t)
{
    memset(t, 0, sizeof(*t));
    t->version = 1;
    t->init = null_init;
    t->listen = null_listen;
    t->connect = null_connect;
    t->close = null_close;
}
