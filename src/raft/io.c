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
 *
 * This file is the raft_io object: libraft's completed requests, members,
 * end-of-turn work, init, start, send, close and the public API. The
 * storage half and its stall detection are io_store.c; receiving and the
 * snapshot shield, io_recv.c; what they share, io_int.h.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "raft/io_int.h"
#include "raft/memstore.h"
#include "raft/rpc.h"
#include "util/heap.h"
#include "util/log.h"

#define MOD "transport"

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
void p2praft__io_after_raft(struct pio *p)
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
    p2praft__io_after_raft(p);
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
        uv_timer_start(&p->tick, p2praft__io_tick_cb, 0, msecs);
    } else {
        uv_timer_start(&p->tick, p2praft__io_tick_cb, msecs, msecs);
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
    io->start = io_start;
    io->send = io_send;
    p2praft__io_store_methods(io);
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
    if (p2praft__io_backlog_full(p)) {
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

struct raft_io *p2praft__io_raft_uv(struct raft_io *io)
{
    return io != NULL && io->impl != NULL &&
                   P(io)->cfg.store == P2PRAFT_STORE_DISK
               ? &P(io)->store
               : NULL;
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
