/*
 * p2praft's raft_io (contract: p2praft.h, "Raft I/O over libp2p"): the
 * raft_io methods libraft calls, their storage half passed through to a
 * store (the in-memory one, or raft_uv whose network is never used), and
 * the message half handed to transport.c.
 *
 * Happy path of one commit on the leader: raft_apply() -> append() (the
 * store completes on the same loop turn) and send() (transport.c writes
 * the frame at once) -> the followers' frames arrive -> recv_cb in the
 * read callback -> the commit callback fires from the completed-request
 * queue right after raft returns.
 *
 * libraft 0.22 in its legacy (raft_io) mode queues completed client
 * requests (raft_apply, raft_barrier, raft_change, raft_transfer) and
 * relies on its own raft_uv to fire them on every loop iteration, through
 * a function it does not export. This io fires them itself after every
 * call into raft, and in a prepare handle as a safety net, reading the
 * queue that struct raft exposes (p2praft__raft_fire_requests() below: it
 * depends on 0.22's request layout, checked at build time).
 *
 * The snapshot shield: libraft 0.22.1 crashes when an InstallSnapshot
 * arrives while it stores a snapshot it took (takeSnapshotCb clears its
 * parked request before using it), and leaks one that arrives while it
 * installs another. This io sees every snapshot_put and every message, so
 * it holds such an InstallSnapshot until the take is stored, and drops a
 * duplicate while an install runs (the leader sends again).
 *
 * Storage that stops writing: raft_uv retries a failed write (a full disk)
 * until it succeeds and queues every later append behind it; the leader
 * goes on committing with its followers meanwhile, and once the disk is
 * free raft_uv re-encodes the whole backlog into a buffer it regrows for
 * each entry, for seconds on the loop thread. So this io counts the
 * appends not yet completed; when they make no progress for
 * P2PRAFT__STALL_MS it sends no RequestVote and no election tick (the
 * node does not campaign), drops AppendEntries that carry entries (the
 * leader sends them again), and a leader hands leadership over
 * (raft_transfer). The consensus layer refuses new entries meanwhile
 * (p2praft__io_storage_behind()).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "raft/io.h"
#include "raft/memstore.h"
#include "raft/rpc.h"
#include "util/heap.h"
#include "util/log.h"

#define MOD "transport"

/* Unwritten entries beyond which no more are taken (see the top). */
#define BACKLOG_ENTRIES 256
#define BACKLOG_BYTES (16u << 20)

#if RAFT_VERSION_NUMBER / 100 != 22
#error "p2praft__raft_fire_requests() reads libraft 0.22's request queue"
#endif

/* libraft 0.22's internal type code of a raft_transfer request. */
#define REQ_TRANSFER (RAFT_CHANGE + 1)

_Static_assert(offsetof(struct raft_apply, queue) ==
                       offsetof(struct raft_barrier, queue) &&
                   offsetof(struct raft_apply, queue) ==
                       offsetof(struct raft_change, queue) &&
                   offsetof(struct raft_apply, queue) ==
                       offsetof(struct raft_transfer, queue) &&
                   offsetof(struct raft_apply, type) ==
                       offsetof(struct raft_transfer, type),
               "libraft request layout");

static struct pio *P(struct raft_io *io)
{
    return io->impl;
}

struct raft *p2praft__io_raft(struct pio *p)
{
    return p->io->data;
}

/* ---- completed client requests ------------------------------------------ */

/* Fire raft's completed requests, oldest first (what libraft's raft_uv
 * does from its prepare and check handles). A callback may submit or
 * close: each request is unlinked before its callback runs. */
void p2praft__raft_fire_requests(struct raft *r)
{
    void **head = r->legacy.requests;
    while (head[0] != (void *)head) {
        void **e = head[0];
        struct raft_apply *a =
            (struct raft_apply *)(void *)((char *)e -
                                          offsetof(struct raft_apply, queue));
        ((void **)e[1])[0] = e[0];
        ((void **)e[0])[1] = e[1];
        switch (a->type) {
        case RAFT_COMMAND:
            a->cb(a, a->status, a->result);
            break;
        case RAFT_BARRIER: {
            struct raft_barrier *b = (struct raft_barrier *)(void *)a;
            b->cb(b, b->status);
            break;
        }
        case RAFT_CHANGE: {
            struct raft_change *c = (struct raft_change *)(void *)a;
            c->cb(c, c->status);
            break;
        }
        case REQ_TRANSFER: {
            struct raft_transfer *t = (struct raft_transfer *)(void *)a;
            t->cb(t);
            break;
        }
        default:
            LOG_ERROR(MOD, "unknown completed raft request type %d", a->type);
            break;
        }
    }
}

/* ---- members ------------------------------------------------------------- */

/* The one call site of lp2p_host_protect(): members always get connection
 * slots, and their connections are never closed as a stranger's would be. */
static void protect(struct pio *p, const struct lp2p_peer_id *peer, bool on)
{
    char s[LP2P_PEER_ID_STRMAX];
    int rv = lp2p_host_protect(p->host, peer, on);
    if (rv != 0 && lp2p_peer_id_to_string(peer, s, sizeof(s)) == 0) {
        LOG_WARN(MOD, "cannot %sprotect member %s: %s", on ? "" : "un", s,
                 lp2p_strerror(rv));
    }
}

static bool pid_in(const struct lp2p_peer_id *set, size_t n,
                   const struct lp2p_peer_id *pid)
{
    size_t i;
    for (i = 0; i < n; i++) {
        if (lp2p_peer_id_equal(&set[i], pid)) {
            return true;
        }
    }
    return false;
}

/* Add the servers of c (but us) to set; false when out of memory. */
static bool add_conf(struct pio *p, const struct raft_configuration *c,
                     struct lp2p_peer_id **set, size_t *n)
{
    unsigned i;
    for (i = 0; i < c->n; i++) {
        struct lp2p_peer_id pid, *grown;
        if (c->servers[i].id == p->id ||
            p2praft__addr_peer(c->servers[i].address, &pid) != 0 ||
            pid_in(*set, *n, &pid)) {
            continue;
        }
        grown = lp2p__realloc(*set, (*n + 1) * sizeof(**set));
        if (grown == NULL) {
            return false;
        }
        *set = grown;
        (*set)[(*n)++] = pid;
    }
    return true;
}

/* The members are the explicit member set and the servers of raft's
 * current and last committed configurations: protect who joined, stop
 * protecting who left (every one of them when `none`, at close). */
static void protect_members(struct pio *p, bool none)
{
    struct raft *r = p2praft__io_raft(p);
    struct lp2p_peer_id *set = NULL;
    size_t n = 0, i;
    if (!none) {
        set = lp2p__memdup(p->net.members,
                           p->net.n_members * sizeof(*p->net.members));
        n = set != NULL ? p->net.n_members : 0;
        if (r != NULL && (!add_conf(p, &r->configuration, &set, &n) ||
                          !add_conf(p, &r->configuration_committed, &set,
                                    &n))) {
            lp2p__free(set);
            return; /* out of memory: keep what is protected */
        }
    }
    for (i = 0; i < n; i++) {
        if (!pid_in(p->prot, p->n_prot, &set[i])) {
            protect(p, &set[i], true);
        }
    }
    for (i = 0; i < p->n_prot; i++) {
        if (!pid_in(set, n, &p->prot[i])) {
            protect(p, &p->prot[i], false);
        }
    }
    lp2p__free(p->prot);
    p->prot = set;
    p->n_prot = n;
}

/* A member added with its multiaddr carries it in the configuration (its
 * server address): every node learns it from there, so that it can dial
 * the member whoever added it. */
static void learn_addresses(struct pio *p, const struct raft_configuration *c)
{
    unsigned i;
    for (i = 0; i < c->n; i++) {
        const char *a = c->servers[i].address;
        struct lp2p_peer_id pid;
        if (c->servers[i].id == p->id || a == NULL || a[0] != '/' ||
            p2praft__addr_peer(a, &pid) != 0) {
            continue;
        }
        if (lp2p_peerstore_add_addr(p->host, &pid, a, LP2P_TTL_PERMANENT) !=
            0) {
            LOG_WARN(MOD, "cannot use the address %s of a member", a);
        }
    }
}

/* ... whenever raft's configuration changes. */
static void check_members(struct pio *p)
{
    struct raft *r = p2praft__io_raft(p);
    if (r == NULL || (r->configuration_committed_index ==
                          p->conf_committed_seen &&
                      r->configuration_uncommitted_index ==
                          p->conf_uncommitted_seen &&
                      r->configuration.n == p->conf_n_seen)) {
        return;
    }
    p->conf_committed_seen = r->configuration_committed_index;
    p->conf_uncommitted_seen = r->configuration_uncommitted_index;
    p->conf_n_seen = r->configuration.n;
    protect_members(p, false);
    learn_addresses(p, &r->configuration);
}

/* After every call into raft: complete requests, track the store's
 * capacity and the configuration. */
static void after_raft(struct pio *p)
{
    struct raft *r = p2praft__io_raft(p);
    p->io->capacity = p->store.capacity;
    if (r != NULL) {
        p2praft__raft_fire_requests(r);
        check_members(p);
    }
}

/* ---- end-of-turn work ------------------------------------------------------ */

static void idle_cb(uv_idle_t *h);

void p2praft__io_defer(struct pio *p, struct p2praft__work *w)
{
    w->next = NULL;
    if (p->work_tail != NULL) {
        p->work_tail->next = w;
    } else {
        p->work = w;
    }
    p->work_tail = w;
    if (!p->closing) {
        uv_idle_start(&p->idle, idle_cb);
    }
}

/* Run the deferred work (with `status`, RAFT_CANCELED when closing). */
static void run_work(struct pio *p, int status)
{
    if (p->draining) {
        return;
    }
    p->draining = true;
    while (p->work != NULL) {
        struct p2praft__work *w = p->work;
        p->work = w->next;
        if (p->work == NULL) {
            p->work_tail = NULL;
        }
        w->fn(w, status);
    }
    p->draining = false;
}

static void end_of_turn(struct pio *p)
{
    if (p->closing) {
        return;
    }
    run_work(p, 0);
    after_raft(p);
    if (p->work == NULL) {
        uv_idle_stop(&p->idle);
    }
}

static void idle_cb(uv_idle_t *h)
{
    end_of_turn(h->data);
}

static void check_cb(uv_check_t *h)
{
    end_of_turn(h->data);
}

static void prepare_cb(uv_prepare_t *h)
{
    end_of_turn(h->data);
}

/* ---- storage that stops writing ------------------------------------------ */

struct xfer {
    struct raft_transfer req;
    struct pio *p; /* NULL once the io closed */
};

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

static bool backlog_full(const struct pio *p)
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

static void tick_cb(uv_timer_t *t)
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
            after_raft(p);
            return;
        }
        p->tick_cb(p->io);
        after_raft(p);
    }
}

void p2praft__io_tick_now(struct pio *p)
{
    if (p->started && !p->closing) {
        uv_timer_start(&p->tick, tick_cb, 0, p->tick_ms);
    }
}

/* ---- receiving, and the snapshot shield ------------------------------------ */

static void deliver(struct pio *p, struct raft_message *m)
{
    p->stats.received++;
    if (p->observer != NULL) {
        p->observer(p->observer_ctx, m);
    }
    if (m->type == RAFT_INSTALL_SNAPSHOT) {
        /* A snapshot_put made during this call installs m's snapshot. */
        p->stats.installs++;
        p->delivering_install = true;
        p->recv_cb(p->io, m);
        p->delivering_install = false;
    } else {
        p->recv_cb(p->io, m);
    }
    after_raft(p);
}

void p2praft__io_recv(struct pio *p, struct raft_message *m)
{
    if (p->closing || p->recv_cb == NULL) {
        p2praft__rpc_message_release(m);
        return;
    }
    if (m->type == RAFT_REQUEST_VOTE && p2praft__io_stalled(p)) {
        /* A follower with unwritten entries never times out (libraft
         * 0.22.1 "stays follower" while persisting, and tick_cb gives it
         * no tick), so it never forgets the leader it last heard and
         * would refuse every candidate until its disk writes again: let
         * a candidate past that check (a liveness rule only; the term
         * and log checks still hold). */
        m->request_vote.disrupt_leader = true;
    }
    if (m->type == RAFT_APPEND_ENTRIES && m->append_entries.n_entries > 0 &&
        (backlog_full(p) || p2praft__io_stalled(p))) {
        /* Our storage is behind: taking more only grows the backlog. The
         * leader sends them again; heartbeats still pass. */
        p->stats.appends_refused++;
        p2praft__rpc_message_release(m);
        return;
    }
    if (m->type == RAFT_INSTALL_SNAPSHOT && p->shield) {
        if (p->put_installing) {
            /* libraft would leak it; the leader sends it again. */
            LOG_DEBUG(MOD, "dropping an InstallSnapshot (%llu) while one "
                           "is being installed",
                      (unsigned long long)m->install_snapshot.last_index);
            p->stats.snapshots_dropped++;
            p2praft__rpc_message_release(m);
            return;
        }
        if (p->puts_taking > 0) {
            /* libraft would park it and crash when its own snapshot is
             * stored: hold it until then (the newest one wins). */
            LOG_DEBUG(MOD, "holding an InstallSnapshot (%llu) while a "
                           "snapshot is being stored",
                      (unsigned long long)m->install_snapshot.last_index);
            if (p->has_held) {
                p2praft__rpc_message_release(&p->held);
            }
            p->held = *m;
            snprintf(p->held_address, sizeof(p->held_address), "%s",
                     m->server_address);
            p->held.server_address = p->held_address;
            p->has_held = true;
            p->stats.snapshots_held++;
            return;
        }
    }
    deliver(p, m);
}

static void deliver_held(struct pio *p)
{
    struct raft_message m;
    char address[LP2P_PEER_ID_STRMAX];
    if (!p->has_held || p->puts_taking > 0) {
        return;
    }
    m = p->held;
    p->has_held = false;
    memcpy(address, p->held_address, sizeof(address));
    m.server_address = address;
    p2praft__io_recv(p, &m);
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
    after_raft(p);
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
    after_raft(p);
    if (!install && !p->closing) {
        deliver_held(p);
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
    after_raft(p);
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

/* ---- the rest of raft_io -------------------------------------------------- */

static int io_init(struct raft_io *io, raft_id id, const char *address)
{
    struct pio *p = P(io);
    char self[LP2P_PEER_ID_STRMAX];
    int rv;
    if (lp2p_peer_id_to_string(lp2p_host_id(p->host), self, sizeof(self)) !=
            0 ||
        strcmp(address, self) != 0 ||
        id != p2praft_server_id(lp2p_host_id(p->host))) {
        snprintf(io->errmsg, sizeof(io->errmsg),
                 "raft address/ID must be the host's peer ID %s and %llu",
                 self,
                 (unsigned long long)p2praft_server_id(lp2p_host_id(p->host)));
        return RAFT_INVALID;
    }
    rv = p->store.init(&p->store, id, address);
    if (rv != 0) {
        snprintf(io->errmsg, sizeof(io->errmsg), "%s", p->store.errmsg);
        return rv;
    }
    uv_timer_init(p->loop, &p->tick);
    uv_prepare_init(p->loop, &p->prepare);
    uv_check_init(p->loop, &p->check);
    uv_idle_init(p->loop, &p->idle);
    p->tick.data = p->prepare.data = p->check.data = p->idle.data = p;
    /* The prepare and check handles alone must not keep the loop alive. */
    uv_unref((uv_handle_t *)&p->prepare);
    uv_unref((uv_handle_t *)&p->check);
    p->inited = true;
    p->id = id;
    snprintf(p->address, sizeof(p->address), "%s", address);
    return 0;
}

static void store_tick(struct raft_io *io)
{
    (void)io;
}

static void store_recv(struct raft_io *io, struct raft_message *m)
{
    (void)io;
    p2praft__rpc_message_release(m);
}

static int io_start(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick,
                    raft_io_recv_cb recv)
{
    struct pio *p = P(io);
    struct raft *r = p2praft__io_raft(p);
    int rv;
    if (p->started || p->closing) {
        return RAFT_INVALID;
    }
    /* raft_uv keeps its open segments ready and its capacity current from
     * its own handles; its network stays silent (idle transport) and its
     * tick never comes (every 2^30 ms, ignored). */
    rv = p->store.start(&p->store, 1u << 30, store_tick, store_recv);
    if (rv != 0) {
        snprintf(io->errmsg, sizeof(io->errmsg), "%s", p->store.errmsg);
        return rv;
    }
    rv = p2praft__net_listen(&p->net);
    if (rv != 0) {
        snprintf(io->errmsg, sizeof(io->errmsg), "serve %s: %s",
                 P2PRAFT_PROTOCOL, lp2p_strerror(rv));
        return rv == LP2P_ENOMEM ? RAFT_NOMEM : RAFT_IOERR;
    }
    p->tick_cb = tick;
    p->recv_cb = recv;
    p->tick_ms = msecs;
    p->started = true;
    uv_prepare_start(&p->prepare, prepare_cb);
    uv_check_start(&p->check, check_cb);
    if (p->fresh && r != NULL && r->state == RAFT_FOLLOWER) {
        /* The first election starts on the first tick, now, not after a
         * randomized timeout: the other voters are fresh followers that
         * know no leader, so they grant the (pre-)vote. */
        r->follower_state.randomized_election_timeout = 0;
        p->stats.fast_starts++;
        LOG_DEBUG(MOD, "fresh cluster: starting the first election");
        uv_timer_start(&p->tick, tick_cb, 0, msecs);
    } else {
        uv_timer_start(&p->tick, tick_cb, msecs, msecs);
    }
    p->io->capacity = p->store.capacity;
    return 0;
}

static int io_send(struct raft_io *io, struct raft_io_send *req,
                   const struct raft_message *message, raft_io_send_cb cb)
{
    struct pio *p = P(io);
    if (p->closing) {
        return RAFT_CANCELED;
    }
    if (message->type == RAFT_REQUEST_VOTE) {
        p->stats.vote_requests++;
    }
    return p2praft__net_send(&p->net, req, message, cb);
}

static raft_time io_time(struct raft_io *io)
{
    return uv_now(P(io)->loop);
}

/* xorshift64, seeded per io: processes started together draw differently. */
static int io_random(struct raft_io *io, int min, int max)
{
    struct pio *p = P(io);
    uint64_t x = p->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    p->rng = x;
    if (max <= min) {
        return min;
    }
    return min + (int)(x % (uint64_t)((int64_t)max - min));
}

/* ---- close ------------------------------------------------------------------ */

static void maybe_closed(struct pio *p)
{
    raft_io_close_cb cb;
    if (!p->closing || p->handles_open > 0 || !p->net_closed ||
        !p->store_closed || p->close_cb == NULL) {
        return;
    }
    run_work(p, RAFT_CANCELED);
    cb = p->close_cb;
    p->close_cb = NULL;
    cb(p->io);
}

static void handle_closed(uv_handle_t *h)
{
    struct pio *p = h->data;
    p->handles_open--;
    maybe_closed(p);
}

static void net_closed(struct p2praft__net *n)
{
    struct pio *p = n->io;
    p->net_closed = true;
    run_work(p, RAFT_CANCELED);
    maybe_closed(p);
}

static void store_closed(struct raft_io *store)
{
    /* store->data stays NULL (raft_uv would take it for a struct raft). */
    struct pio *p =
        (struct pio *)(void *)((char *)store - offsetof(struct pio, store));
    p->store_closed = true;
    maybe_closed(p);
}

static void io_close(struct raft_io *io, raft_io_close_cb cb)
{
    struct pio *p = P(io);
    if (p->closing) {
        return;
    }
    p->closing = true;
    p->close_cb = cb;
    if (p->xfer != NULL) {
        p->xfer->p = NULL; /* raft fires or drops it; it frees itself */
        p->xfer = NULL;
    }
    protect_members(p, true);
    if (!p->inited) {
        /* raft never initialised us: nothing runs. */
        p->net_closed = p->store_closed = true;
        cb(io);
        return;
    }
    if (p->has_held) {
        p2praft__rpc_message_release(&p->held);
        p->has_held = false;
    }
    p->handles_open = 4;
    uv_close((uv_handle_t *)&p->tick, handle_closed);
    uv_close((uv_handle_t *)&p->prepare, handle_closed);
    uv_close((uv_handle_t *)&p->check, handle_closed);
    uv_close((uv_handle_t *)&p->idle, handle_closed);
    p->net_closed = false;
    p2praft__net_close(&p->net, net_closed);
    p->store_closed = false;
    p->store.close(&p->store, store_closed);
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

/* ---- public API ---------------------------------------------------------------- */

void p2praft_io_config_init(struct p2praft_io_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->store = P2PRAFT_STORE_MEM;
}

static int store_init(struct pio *p, struct raft_io *io)
{
    int rv;
    if (p->cfg.store == P2PRAFT_STORE_MEM) {
        if (p->cfg.mem == NULL) {
            rv = p2praft_memstore_new(&p->mem);
            if (rv != 0) {
                return rv;
            }
            p->mem_owned = true;
        } else {
            p->mem = p->cfg.mem;
        }
        rv = p2praft__memstore_io_init(&p->store, p->loop, p->mem);
        if (rv != 0) {
            snprintf(io->errmsg, sizeof(io->errmsg),
                     "the memory store is in use by another io");
            return rv == RAFT_NOMEM ? LP2P_ENOMEM : LP2P_EINVAL;
        }
        return 0;
    }
    p->null_tp = lp2p__calloc(1, sizeof(*p->null_tp));
    if (p->null_tp == NULL) {
        return LP2P_ENOMEM;
    }
    p2praft__null_transport_init(p->null_tp);
    rv = raft_uv_init(&p->store, p->loop, p->dir, p->null_tp);
    if (rv != 0) {
        snprintf(io->errmsg, sizeof(io->errmsg), "raft_uv_init %.100s: %.140s",
                 p->dir, p->store.errmsg);
        return rv == RAFT_NOMEM ? LP2P_ENOMEM : LP2P_ERAFT;
    }
    /* diskcheck.c refuses damaged data before raft_uv loads it; should
     * anything slip past it, libraft must fail the load rather than
     * rename the segment to corrupt-* and start without its entries. */
    raft_uv_set_auto_recovery(&p->store, false);
    p2praft_raft_uv_trace(&p->store);
    return 0;
}

static void pio_free(struct pio *p)
{
    if (p->store_ready) {
        if (p->cfg.store == P2PRAFT_STORE_MEM) {
            p2praft__memstore_io_close(&p->store);
        } else {
            raft_uv_close(&p->store);
        }
    }
    if (p->mem_owned) {
        p2praft_memstore_free(p->mem);
    }
    p2praft__net_free(&p->net);
    lp2p__free(p->prot);
    lp2p__free(p->null_tp);
    lp2p__free(p->dir);
    lp2p__free(p);
}

int p2praft_io_init(struct raft_io *io, struct lp2p_host *host,
                    const struct p2praft_io_config *cfg)
{
    struct p2praft_io_config defaults;
    struct pio *p;
    int rv;
    if (io == NULL || host == NULL) {
        return LP2P_EINVAL;
    }
    if (cfg == NULL) {
        p2praft_io_config_init(&defaults);
        cfg = &defaults;
    }
    memset(io, 0, sizeof(*io));
    if ((cfg->store != P2PRAFT_STORE_MEM && cfg->store != P2PRAFT_STORE_DISK) ||
        (cfg->store == P2PRAFT_STORE_DISK && cfg->dir == NULL)) {
        snprintf(io->errmsg, sizeof(io->errmsg),
                 "the disk store needs a directory");
        return LP2P_EINVAL;
    }
    p = lp2p__calloc(1, sizeof(*p));
    if (p == NULL) {
        return LP2P_ENOMEM;
    }
    p->io = io;
    p->host = host;
    p->loop = lp2p_host_loop(host);
    p->cfg = *cfg;
    p->cfg.dir = NULL;
    if (p->cfg.dial_timeout_ms == 0) {
        p->cfg.dial_timeout_ms = P2PRAFT_DIAL_TIMEOUT_MS;
    }
    if (p->cfg.retry_ms == 0) {
        p->cfg.retry_ms = P2PRAFT_RETRY_MS;
    }
    if (p->cfg.max_message == 0) {
        p->cfg.max_message = P2PRAFT_MAX_MESSAGE;
    }
    if (p->cfg.peer_buffer == 0) {
        p->cfg.peer_buffer = P2PRAFT_PEER_BUFFER;
    }
    p->shield = true;
    p->rng = (p2praft_server_id(lp2p_host_id(host)) ^ uv_hrtime() ^
              ((uint64_t)getpid() << 32)) |
             1;
    if (cfg->store == P2PRAFT_STORE_DISK) {
        p->dir = lp2p__strdup(cfg->dir);
        if (p->dir == NULL) {
            lp2p__free(p);
            return LP2P_ENOMEM;
        }
    }
    p2praft__net_init(&p->net, p, host);
    p->net.hashicorp = p->cfg.wire == P2PRAFT_WIRE_HASHICORP;
    p->net.hint_enabled = !cfg->no_hint;
    rv = p2praft__net_observe(&p->net);
    if (rv == 0) {
        rv = store_init(p, io);
    }
    if (rv != 0) {
        pio_free(p);
        return rv;
    }
    p->store_ready = true;
    p->store.data = NULL; /* raft_uv fires raft's requests if set */
    io->version = 2;
    io->impl = p;
    io->init = io_init;
    io->close = io_close;
    io->load = io_load;
    io->start = io_start;
    io->bootstrap = io_bootstrap;
    io->recover = io_recover;
    io->set_term = io_set_term;
    io->set_vote = io_set_vote;
    io->send = io_send;
    io->append = io_append;
    io->truncate = io_truncate;
    io->snapshot_put = io_snapshot_put;
    io->snapshot_get = io_snapshot_get;
    io->time = io_time;
    io->random = io_random;
    io->capacity = p->store.capacity;
    return 0;
}

void p2praft_io_close(struct raft_io *io)
{
    struct pio *p;
    if (io == NULL || io->impl == NULL) {
        return;
    }
    p = io->impl;
    if (p->inited && !p->closing) {
        /* raft_init() ran but raft_close() did not: the loop still holds
         * our handles, so freeing would leave them dangling. */
        LOG_ERROR(MOD, "p2praft_io_close() before raft_close(): leaking it");
        io->impl = NULL;
        return;
    }
    pio_free(p);
    io->impl = NULL;
}

struct raft_io *p2praft_io_store(struct raft_io *io)
{
    return io != NULL && io->impl != NULL ? &P(io)->store : NULL;
}

void p2praft_io_set_hint(struct raft_io *io, bool enabled)
{
    if (io != NULL && io->impl != NULL) {
        P(io)->net.hint_enabled = enabled;
    }
}

int p2praft_io_set_members(struct raft_io *io, const struct lp2p_peer_id *peers,
                           size_t n)
{
    struct p2praft__net *net;
    struct lp2p_peer_id *m = NULL;
    if (io == NULL || io->impl == NULL || (n > 0 && peers == NULL)) {
        return LP2P_EINVAL;
    }
    net = &P(io)->net;
    if (n > 0) {
        m = lp2p__memdup(peers, n * sizeof(*peers));
        if (m == NULL) {
            return LP2P_ENOMEM;
        }
    }
    lp2p__free(net->members);
    net->members = m;
    net->n_members = n;
    net->members_gen++;
    protect_members(P(io), false);
    return 0;
}

void p2praft_io_set_admit(struct raft_io *io, p2praft_admit_fn fn, void *ctx)
{
    if (io != NULL && io->impl != NULL) {
        P(io)->net.admit = fn;
        P(io)->net.admit_ctx = ctx;
    }
}

bool p2praft_io_admits(struct raft_io *io, const struct lp2p_peer_id *peer)
{
    return io != NULL && io->impl != NULL && peer != NULL &&
           p2praft__net_admits(&P(io)->net, peer);
}

void p2praft__io_set_observer(struct raft_io *io,
                              void (*fn)(void *ctx,
                                         const struct raft_message *m),
                              void *ctx)
{
    if (io != NULL && io->impl != NULL) {
        P(io)->observer = fn;
        P(io)->observer_ctx = ctx;
    }
}

uint64_t p2praft_io_refused(struct raft_io *io)
{
    return io != NULL && io->impl != NULL ? P(io)->stats.refused : 0;
}

uint64_t p2praft_io_hints(struct raft_io *io)
{
    return io != NULL && io->impl != NULL ? P(io)->stats.hints : 0;
}

void p2praft_io_stats(struct raft_io *io, struct p2praft_io_stats *out)
{
    if (io != NULL && io->impl != NULL) {
        *out = P(io)->stats;
    } else {
        memset(out, 0, sizeof(*out));
    }
}

bool p2praft__io_storage_behind(struct raft_io *io, char *why, size_t len)
{
    struct pio *p;
    if (io == NULL || io->impl == NULL || io->send != io_send) {
        return false; /* not ours */
    }
    p = P(io);
    if (p2praft__io_stalled(p)) {
        if (why != NULL) {
            snprintf(why, len,
                     "this node's storage has completed no write for %llu "
                     "ms (disk full?)",
                     (unsigned long long)p->stall_ms);
        }
        return true;
    }
    if (backlog_full(p)) {
        if (why != NULL) {
            snprintf(why, len,
                     "this node's storage is %llu entries (%llu KiB) behind",
                     (unsigned long long)p->append_entries_pending,
                     (unsigned long long)(p->append_bytes_pending / 1024));
        }
        return true;
    }
    return false;
}

struct p2praft_memstore *p2praft__io_memstore(struct raft_io *io)
{
    return io != NULL && io->impl != NULL ? P(io)->mem : NULL;
}

void p2praft__io_set_shield(struct raft_io *io, bool on)
{
    P(io)->shield = on;
}

void p2praft__io_set_retired(struct raft_io *io, bool retired)
{
    if (io != NULL && io->impl != NULL && io->send == io_send) {
        P(io)->retired = retired;
    }
}

void p2praft__io_set_drop(struct raft_io *io, bool drop)
{
    P(io)->net.drop = drop;
}

unsigned p2praft__io_streams(struct raft_io *io, unsigned *writable)
{
    return p2praft__net_streams(&P(io)->net, writable);
}
