/*
 * The in-memory raft store (src/raft/memstore.c) against libraft's storage
 * contract. First its raft_io is driven directly: io version, load of an
 * empty store, bootstrap once, term and vote, append ordering and
 * completions (never inside the call), truncation, snapshot put with and
 * without trailing entries, snapshot get, recover, close, and a second io
 * on the same store after a "restart". Then three libraft instances run on
 * it with a deterministic in-process network and a virtual clock (the
 * raft_fixture approach: no sockets, no real time): elections (the same
 * run twice gives the same leader at the same step), a deposed leader's
 * uncommitted entries truncated, snapshots and InstallSnapshot, a lagging
 * follower that gets a configuration entry inside a batch (libraft 0.22.1
 * records the wrong index for it; p2praft's io corrects it), and a node
 * restarted in the same process from its store.
 */
#include <raft.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "oom.h"
#include "p2praft.h"
#include "raft/io.h"
#include "raft/memstore.h"
#include "raft/rpc.h"
#include "test.h"
#include "util/heap.h"

/* ---- part 1: the storage raft_io ---------------------------------------- */

static int s_closed;
static int s_order;

static void s_close_cb(struct raft_io *io)
{
    (void)io;
    s_closed = 1;
}

struct aprobe {
    struct raft_io_append req;
    int called, status, order;
};

static void aprobe_cb(struct raft_io_append *req, int status)
{
    struct aprobe *p = req->data;
    p->called++;
    p->status = status;
    p->order = ++s_order;
}

struct pprobe {
    struct raft_io_snapshot_put req;
    int called, status;
};

static void pprobe_cb(struct raft_io_snapshot_put *req, int status)
{
    struct pprobe *p = req->data;
    p->called++;
    p->status = status;
}

struct gprobe {
    struct raft_io_snapshot_get req;
    int called, status;
    struct raft_snapshot *s;
};

static void gprobe_cb(struct raft_io_snapshot_get *req,
                      struct raft_snapshot *s, int status)
{
    struct gprobe *p = req->data;
    p->called++;
    p->status = status;
    p->s = s;
}

static void snapshot_free(struct raft_snapshot *s)
{
    unsigned i;
    if (s == NULL) {
        return;
    }
    raft_configuration_close(&s->configuration);
    for (i = 0; i < s->n_bufs; i++) {
        raft_free(s->bufs[i].base);
    }
    raft_free(s->bufs);
    raft_free(s);
}

struct loaded {
    raft_term term;
    raft_id vote;
    struct raft_snapshot *snap;
    raft_index start;
    struct raft_entry *e;
    size_t n;
};

static void load(struct raft_io *io, struct loaded *l)
{
    size_t i;
    memset(l, 0, sizeof(*l));
    ASSERT_OK(io->load(io, &l->term, &l->vote, &l->snap, &l->start, &l->e,
                       &l->n));
    ASSERT(l->start >= 1);
    ASSERT((l->n == 0) == (l->e == NULL));
    for (i = 0; i < l->n; i++) {
        ASSERT(l->e[i].batch == l->e[0].batch); /* one batch */
    }
}

static void loaded_free(struct loaded *l)
{
    if (l->e != NULL) {
        raft_free(l->e[0].batch);
        raft_free(l->e);
    }
    snapshot_free(l->snap);
    memset(l, 0, sizeof(*l));
}

static struct raft_entry mk_entry(raft_term term, const char *data)
{
    struct raft_entry e;
    e.term = term;
    e.type = RAFT_COMMAND;
    e.buf.base = (void *)data;
    e.buf.len = strlen(data);
    e.batch = NULL;
    return e;
}

static void io_open(struct raft_io *io, uv_loop_t *loop,
                    struct p2praft_memstore *m)
{
    ASSERT_OK(p2praft__memstore_io_init(io, loop, m));
    ASSERT_OK(io->init(io, 1, "one"));
}

static void io_shut(struct raft_io *io, uv_loop_t *loop)
{
    s_closed = 0;
    io->close(io, s_close_cb);
    while (!s_closed) {
        uv_run(loop, UV_RUN_ONCE);
    }
    p2praft__memstore_io_close(io);
}

TEST(memstore, storage_contract)
{
    uv_loop_t loop;
    struct p2praft_memstore *m;
    struct raft_io io, io2;
    struct raft_configuration conf, got;
    struct loaded l;
    struct aprobe a1, a2, a3;
    struct pprobe p1;
    struct gprobe g1;
    struct raft_entry e[3];
    struct raft_snapshot snap;
    struct raft_buffer bufs[2];
    ASSERT_OK(uv_loop_init(&loop));
    ASSERT_OK(p2praft_memstore_new(&m));
    io_open(&io, &loop, m);
    ASSERT_EQ(io.version, 2);
    ASSERT(io.capacity > 0);
    /* One io per store. */
    ASSERT_EQ(p2praft__memstore_io_init(&io2, &loop, m), RAFT_BUSY);

    /* Empty. */
    load(&io, &l);
    ASSERT_EQ_U64(l.term, 0);
    ASSERT_EQ_U64(l.vote, 0);
    ASSERT(l.snap == NULL);
    ASSERT_EQ_U64(l.start, 1);
    ASSERT_EQ(l.n, 0);

    /* Bootstrap once. */
    raft_configuration_init(&conf);
    ASSERT_OK(raft_configuration_add(&conf, 1, "one", RAFT_VOTER));
    ASSERT_OK(raft_configuration_add(&conf, 2, "two", RAFT_VOTER));
    ASSERT_OK(io.bootstrap(&io, &conf));
    ASSERT_EQ(io.bootstrap(&io, &conf), RAFT_CANTBOOTSTRAP);
    load(&io, &l);
    ASSERT_EQ_U64(l.term, 1);
    ASSERT_EQ(l.n, 1);
    ASSERT_EQ(l.e[0].type, RAFT_CHANGE);
    ASSERT_EQ_U64(l.e[0].term, 1);
    raft_configuration_init(&got);
    ASSERT_OK(raft_configuration_decode(&l.e[0].buf, &got));
    ASSERT_EQ(got.n, 2);
    ASSERT_STR_EQ(got.servers[1].address, "two");
    raft_configuration_close(&got);
    loaded_free(&l);

    /* Term and vote: a new term clears the vote. */
    ASSERT_OK(io.set_term(&io, 5));
    ASSERT_OK(io.set_vote(&io, 9));
    load(&io, &l);
    ASSERT_EQ_U64(l.term, 5);
    ASSERT_EQ_U64(l.vote, 9);
    loaded_free(&l);
    ASSERT_OK(io.set_term(&io, 6));
    load(&io, &l);
    ASSERT_EQ_U64(l.vote, 0);
    loaded_free(&l);

    /* Appends complete in order, after the call, on the same turn; the
     * caller's buffers are not kept. */
    memset(&a1, 0, sizeof(a1));
    memset(&a2, 0, sizeof(a2));
    a1.req.data = &a1;
    a2.req.data = &a2;
    e[0] = mk_entry(5, "alpha");
    e[1] = mk_entry(6, "beta");
    e[2] = mk_entry(6, "gamma");
    s_order = 0;
    ASSERT_OK(io.append(&io, &a1.req, e, 2, aprobe_cb));
    ASSERT_OK(io.append(&io, &a2.req, e + 2, 1, aprobe_cb));
    ASSERT_EQ(a1.called + a2.called, 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    ASSERT_EQ(a1.called, 1);
    ASSERT_EQ(a2.called, 1);
    ASSERT(a1.order < a2.order);
    ASSERT_OK(a1.status);
    load(&io, &l);
    ASSERT_EQ(l.n, 4);
    ASSERT_EQ_U64(l.e[3].term, 6);
    ASSERT_EQ(l.e[3].buf.len, 5);
    ASSERT_MEM_EQ(l.e[3].buf.base, "gamma", 5);
    ASSERT_MEM_EQ(l.e[1].buf.base, "alpha", 5);
    loaded_free(&l);

    /* Truncate from index 3, append again at 3. */
    ASSERT_OK(io.truncate(&io, 3));
    load(&io, &l);
    ASSERT_EQ(l.n, 2);
    loaded_free(&l);
    memset(&a3, 0, sizeof(a3));
    a3.req.data = &a3;
    e[0] = mk_entry(6, "delta");
    ASSERT_OK(io.append(&io, &a3.req, e, 1, aprobe_cb));
    uv_run(&loop, UV_RUN_NOWAIT);
    ASSERT_EQ(a3.called, 1);
    load(&io, &l);
    ASSERT_EQ(l.n, 3);
    ASSERT_MEM_EQ(l.e[2].buf.base, "delta", 5);
    loaded_free(&l);

    /* A taken snapshot at 3 keeping 1 trailing entry; buffers concatenate. */
    memset(&snap, 0, sizeof(snap));
    snap.index = 3;
    snap.term = 6;
    snap.configuration = conf;
    snap.configuration_index = 1;
    bufs[0].base = (void *)"snap";
    bufs[0].len = 4;
    bufs[1].base = (void *)"shot";
    bufs[1].len = 4;
    snap.bufs = bufs;
    snap.n_bufs = 2;
    memset(&p1, 0, sizeof(p1));
    p1.req.data = &p1;
    ASSERT_OK(io.snapshot_put(&io, 1, &p1.req, &snap, pprobe_cb));
    ASSERT_EQ(p1.called, 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    ASSERT_EQ(p1.called, 1);
    ASSERT_OK(p1.status);
    load(&io, &l);
    ASSERT(l.snap != NULL);
    ASSERT_EQ_U64(l.snap->index, 3);
    ASSERT_EQ_U64(l.snap->term, 6);
    ASSERT_EQ(l.snap->n_bufs, 1);
    ASSERT_EQ(l.snap->bufs[0].len, 8);
    ASSERT_MEM_EQ(l.snap->bufs[0].base, "snapshot", 8);
    ASSERT_EQ(l.snap->configuration.n, 2);
    ASSERT_EQ_U64(l.start, 3);
    ASSERT_EQ(l.n, 1);
    loaded_free(&l);
    memset(&g1, 0, sizeof(g1));
    g1.req.data = &g1;
    ASSERT_OK(io.snapshot_get(&io, &g1.req, gprobe_cb));
    ASSERT_EQ(g1.called, 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    ASSERT_EQ(g1.called, 1);
    ASSERT(g1.s != NULL);
    ASSERT_EQ_U64(g1.s->index, 3);
    ASSERT_MEM_EQ(g1.s->bufs[0].base, "snapshot", 8);
    snapshot_free(g1.s);

    /* An installed snapshot (trailing 0) replaces the log: the next entry
     * is its index + 1. */
    snap.index = 10;
    snap.term = 7;
    snap.n_bufs = 1;
    memset(&p1, 0, sizeof(p1));
    p1.req.data = &p1;
    ASSERT_OK(io.snapshot_put(&io, 0, &p1.req, &snap, pprobe_cb));
    uv_run(&loop, UV_RUN_NOWAIT);
    ASSERT_EQ(p1.called, 1);
    load(&io, &l);
    ASSERT_EQ_U64(l.snap->index, 10);
    ASSERT_EQ_U64(l.start, 11);
    ASSERT_EQ(l.n, 0);
    loaded_free(&l);
    memset(&a1, 0, sizeof(a1));
    a1.req.data = &a1;
    e[0] = mk_entry(7, "eps");
    ASSERT_OK(io.append(&io, &a1.req, e, 1, aprobe_cb));
    uv_run(&loop, UV_RUN_NOWAIT);
    /* recover appends a configuration entry with the last term. */
    ASSERT_OK(io.recover(&io, &conf));
    load(&io, &l);
    ASSERT_EQ_U64(l.start, 11);
    ASSERT_EQ(l.n, 2);
    ASSERT_MEM_EQ(l.e[0].buf.base, "eps", 3);
    ASSERT_EQ(l.e[1].type, RAFT_CHANGE);
    ASSERT_EQ_U64(l.e[1].term, 7);
    loaded_free(&l);

    /* Close completes what is pending with RAFT_CANCELED. */
    memset(&a2, 0, sizeof(a2));
    a2.req.data = &a2;
    e[0] = mk_entry(7, "zeta");
    ASSERT_OK(io.append(&io, &a2.req, e, 1, aprobe_cb));
    io_shut(&io, &loop);
    ASSERT_EQ(a2.called, 1);
    ASSERT_EQ(a2.status, RAFT_CANCELED);

    /* "Restart": a new io on the same store finds everything. */
    io_open(&io2, &loop, m);
    load(&io2, &l);
    ASSERT_EQ_U64(l.term, 6);
    ASSERT_EQ_U64(l.snap->index, 10);
    ASSERT_EQ(l.n, 3); /* the canceled append's entry is stored */
    loaded_free(&l);
    ASSERT_EQ(io2.bootstrap(&io2, &conf), RAFT_CANTBOOTSTRAP);
    io_shut(&io2, &loop);

    raft_configuration_close(&conf);
    p2praft_memstore_free(m);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_OK(uv_loop_close(&loop));
}

/* ---- part 2: libraft on the memstore, deterministic -------------------- */

#define VN 3
#define V_HEARTBEAT 10
#define V_ELECTION 100

struct vnet;

struct vmsg {
    struct vmsg *next;
    unsigned from, to;
    struct raft_io_send *req;
    raft_io_send_cb cb;
    struct raft_message m; /* a deep copy, through the wire codec */
};

struct vnode {
    struct vnet *net;
    unsigned i;
    raft_id id;
    char addr[16];
    struct p2praft_memstore *m;
    struct raft_io store;
    struct raft_io io;
    struct raft raft;
    struct raft_fsm fsm;
    uint64_t sum;
    raft_io_tick_cb tick;
    raft_io_recv_cb recv;
    raft_io_close_cb close_cb;
    raft_term ae_term[VN]; /* of the last AppendEntries from each node */
    bool running, closed, cut;
    bool fix_conf; /* append corrects libraft's configuration index */
};

struct vnet {
    uv_loop_t loop;
    raft_time now;
    struct vnode nodes[VN];
    struct vmsg *q, *q_tail;
    unsigned steps;
};

static struct vnode *vnode_of_io(struct raft_io *io)
{
    return io->impl;
}

/* FSM: the sum of 8-byte little-endian values. */
static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf,
                     void **result)
{
    struct vnode *v = fsm->data;
    uint64_t x = 0;
    if (buf->len == 8) {
        memcpy(&x, buf->base, 8);
    }
    v->sum += x;
    *result = NULL;
    return 0;
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[],
                        unsigned *n)
{
    struct vnode *v = fsm->data;
    *bufs = raft_malloc(sizeof(**bufs));
    (*bufs)[0].base = raft_malloc(8);
    (*bufs)[0].len = 8;
    memcpy((*bufs)[0].base, &v->sum, 8);
    *n = 1;
    return 0;
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    struct vnode *v = fsm->data;
    memcpy(&v->sum, buf->base, 8);
    raft_free(buf->base);
    return 0;
}

/* Deep copy through the codec: the receiver owns what raft expects. */
static void msg_copy(const struct raft_message *src, struct raft_message *dst)
{
    struct p2praft__rpc_dec d;
    size_t hlen, used, off;
    uint8_t *buf;
    unsigned i;
    ASSERT_OK(p2praft__rpc_header_len(src, &hlen));
    buf = malloc(hlen + (size_t)p2praft__rpc_payload_len(src) + 1);
    p2praft__rpc_header_write(src, buf);
    off = hlen;
    if (src->type == RAFT_APPEND_ENTRIES) {
        for (i = 0; i < src->append_entries.n_entries; i++) {
            const struct raft_buffer *b = &src->append_entries.entries[i].buf;
            memcpy(buf + off, b->base, b->len);
            off += b->len;
        }
    } else if (src->type == RAFT_INSTALL_SNAPSHOT) {
        memcpy(buf + off, src->install_snapshot.data.base,
               src->install_snapshot.data.len);
        off += src->install_snapshot.data.len;
    }
    p2praft__rpc_dec_init(&d, 1u << 30);
    ASSERT_EQ(p2praft__rpc_dec_feed(&d, buf, off, &used, dst), 1);
    ASSERT_EQ(used, off);
    p2praft__rpc_dec_close(&d);
    free(buf);
}

static int v_init(struct raft_io *io, raft_id id, const char *address)
{
    struct vnode *v = vnode_of_io(io);
    return v->store.init(&v->store, id, address);
}

static void v_store_closed(struct raft_io *store)
{
    struct vnode *v =
        (struct vnode *)(void *)((char *)store - offsetof(struct vnode, store));
    v->close_cb(&v->io);
}

static void v_close(struct raft_io *io, raft_io_close_cb cb)
{
    struct vnode *v = vnode_of_io(io);
    struct vmsg **pp = &v->net->q, *x;
    /* Messages of this node still in flight are canceled, as any io does
     * before it calls back. */
    v->net->q_tail = NULL;
    while ((x = *pp) != NULL) {
        if (x->from == v->i) {
            *pp = x->next;
            x->cb(x->req, RAFT_CANCELED);
            p2praft__rpc_message_release(&x->m);
            free(x);
        } else {
            v->net->q_tail = x;
            pp = &x->next;
        }
    }
    v->close_cb = cb;
    v->store.close(&v->store, v_store_closed);
}

static int v_load(struct raft_io *io, raft_term *t, raft_id *vote,
                  struct raft_snapshot **s, raft_index *start,
                  struct raft_entry **e, size_t *n)
{
    struct vnode *v = vnode_of_io(io);
    return v->store.load(&v->store, t, vote, s, start, e, n);
}

static int v_start(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick,
                   raft_io_recv_cb recv)
{
    struct vnode *v = vnode_of_io(io);
    (void)msecs;
    v->tick = tick;
    v->recv = recv;
    return 0;
}

static int v_bootstrap(struct raft_io *io, const struct raft_configuration *c)
{
    struct vnode *v = vnode_of_io(io);
    return v->store.bootstrap(&v->store, c);
}

static int v_recover(struct raft_io *io, const struct raft_configuration *c)
{
    struct vnode *v = vnode_of_io(io);
    return v->store.recover(&v->store, c);
}

static int v_set_term(struct raft_io *io, raft_term t)
{
    struct vnode *v = vnode_of_io(io);
    return v->store.set_term(&v->store, t);
}

static int v_set_vote(struct raft_io *io, raft_id id)
{
    struct vnode *v = vnode_of_io(io);
    return v->store.set_vote(&v->store, id);
}

static int v_send(struct raft_io *io, struct raft_io_send *req,
                  const struct raft_message *m, raft_io_send_cb cb)
{
    struct vnode *v = vnode_of_io(io);
    struct vnet *net = v->net;
    struct vmsg *x = calloc(1, sizeof(*x));
    unsigned j;
    x->from = v->i;
    x->to = VN;
    for (j = 0; j < VN; j++) {
        if (net->nodes[j].id == m->server_id) {
            x->to = j;
        }
    }
    x->req = req;
    x->cb = cb;
    msg_copy(m, &x->m);
    if (x->to < VN) {
        /* As p2praft's io does (rpc.h). */
        p2praft__rpc_fix_stale_reject(&x->m, v->ae_term[x->to],
                                      raft_last_index(&v->raft));
    }
    if (net->q_tail != NULL) {
        net->q_tail->next = x;
    } else {
        net->q = x;
    }
    net->q_tail = x;
    return 0;
}

static int v_append(struct raft_io *io, struct raft_io_append *req,
                    const struct raft_entry e[], unsigned n,
                    raft_io_append_cb cb)
{
    struct vnode *v = vnode_of_io(io);
    if (v->fix_conf) {
        p2praft__io_fix_conf_index(&v->raft, e, n); /* as p2praft's io */
    }
    return v->store.append(&v->store, req, e, n, cb);
}

static int v_truncate(struct raft_io *io, raft_index index)
{
    struct vnode *v = vnode_of_io(io);
    return v->store.truncate(&v->store, index);
}

static int v_snapshot_put(struct raft_io *io, unsigned trailing,
                          struct raft_io_snapshot_put *req,
                          const struct raft_snapshot *s,
                          raft_io_snapshot_put_cb cb)
{
    struct vnode *v = vnode_of_io(io);
    return v->store.snapshot_put(&v->store, trailing, req, s, cb);
}

static int v_snapshot_get(struct raft_io *io,
                          struct raft_io_snapshot_get *req,
                          raft_io_snapshot_get_cb cb)
{
    struct vnode *v = vnode_of_io(io);
    return v->store.snapshot_get(&v->store, req, cb);
}

static raft_time v_time(struct raft_io *io)
{
    return vnode_of_io(io)->net->now;
}

static int v_random(struct raft_io *io, int min, int max)
{
    /* Deterministic and different per node. */
    (void)max;
    return min + 7919 * (int)(vnode_of_io(io)->i + 1);
}

static void vnode_start(struct vnet *net, unsigned i, bool bootstrap)
{
    struct vnode *v = &net->nodes[i];
    struct raft_io *io = &v->io;
    memset(io, 0, sizeof(*io));
    io->version = 2;
    io->impl = v;
    io->init = v_init;
    io->close = v_close;
    io->load = v_load;
    io->start = v_start;
    io->bootstrap = v_bootstrap;
    io->recover = v_recover;
    io->set_term = v_set_term;
    io->set_vote = v_set_vote;
    io->send = v_send;
    io->append = v_append;
    io->truncate = v_truncate;
    io->snapshot_put = v_snapshot_put;
    io->snapshot_get = v_snapshot_get;
    io->time = v_time;
    io->random = v_random;
    io->capacity = UINT16_MAX;
    ASSERT_OK(p2praft__memstore_io_init(&v->store, &net->loop, v->m));
    memset(&v->fsm, 0, sizeof(v->fsm));
    v->fsm.version = 1;
    v->fsm.data = v;
    v->fsm.apply = fsm_apply;
    v->fsm.snapshot = fsm_snapshot;
    v->fsm.restore = fsm_restore;
    v->sum = 0;
    ASSERT_OK(raft_init(&v->raft, io, &v->fsm, v->id, v->addr));
    v->raft.tracer = NULL;
    raft_set_election_timeout(&v->raft, V_ELECTION);
    raft_set_heartbeat_timeout(&v->raft, V_HEARTBEAT);
    if (bootstrap) {
        struct raft_configuration conf;
        unsigned j;
        raft_configuration_init(&conf);
        for (j = 0; j < VN; j++) {
            ASSERT_OK(raft_configuration_add(&conf, net->nodes[j].id,
                                             net->nodes[j].addr, RAFT_VOTER));
        }
        ASSERT_OK(raft_bootstrap(&v->raft, &conf));
        raft_configuration_close(&conf);
    }
    ASSERT_OK(raft_start(&v->raft));
    v->running = true;
    v->closed = false;
}

static void vnet_init(struct vnet *net, unsigned threshold, unsigned trailing)
{
    unsigned i;
    memset(net, 0, sizeof(*net));
    ASSERT_OK(uv_loop_init(&net->loop));
    net->now = 1000;
    for (i = 0; i < VN; i++) {
        struct vnode *v = &net->nodes[i];
        v->net = net;
        v->i = i;
        v->id = i + 1;
        snprintf(v->addr, sizeof(v->addr), "node%u", i + 1);
        ASSERT_OK(p2praft_memstore_new(&v->m));
    }
    for (i = 0; i < VN; i++) {
        struct vnode *v = &net->nodes[i];
        vnode_start(net, i, true);
        if (threshold != 0) {
            raft_set_snapshot_threshold(&v->raft, threshold);
            raft_set_snapshot_trailing(&v->raft, trailing);
        }
    }
}

static void fire_all(struct vnet *net)
{
    unsigned i;
    for (i = 0; i < VN; i++) {
        if (net->nodes[i].running) {
            p2praft__raft_fire_requests(&net->nodes[i].raft);
        }
    }
}

/* One step: deliver what is in flight, complete storage requests, then
 * 10 ms pass and every node ticks. */
static void vnet_step(struct vnet *net)
{
    struct vmsg *end = net->q_tail, *x;
    unsigned i;
    while ((x = net->q) != NULL) {
        struct vnode *from = &net->nodes[x->from];
        bool last = x == end;
        net->q = x->next;
        if (net->q == NULL) {
            net->q_tail = NULL;
        }
        if (x->to < VN && net->nodes[x->to].running && !from->cut &&
            !net->nodes[x->to].cut && from->running) {
            struct vnode *to = &net->nodes[x->to];
            x->cb(x->req, 0);
            x->m.server_id = from->id;
            x->m.server_address = from->addr;
            if (x->m.type == RAFT_REQUEST_VOTE) {
                x->m.request_vote.candidate_id = from->id;
            } else if (x->m.type == RAFT_APPEND_ENTRIES) {
                to->ae_term[x->from] = x->m.append_entries.term;
            }
            to->recv(&to->io, &x->m);
            p2praft__raft_fire_requests(&to->raft);
        } else {
            if (from->running) {
                x->cb(x->req, RAFT_NOCONNECTION);
            }
            p2praft__rpc_message_release(&x->m);
        }
        free(x);
        if (last) {
            break;
        }
    }
    uv_run(&net->loop, UV_RUN_NOWAIT);
    fire_all(net);
    net->now += V_HEARTBEAT;
    for (i = 0; i < VN; i++) {
        if (net->nodes[i].running) {
            net->nodes[i].tick(&net->nodes[i].io);
        }
    }
    fire_all(net);
    net->steps++;
}

static bool vnet_run_until(struct vnet *net, bool (*cond)(struct vnet *),
                           unsigned max_steps)
{
    unsigned k;
    for (k = 0; k < max_steps; k++) {
        if (cond(net)) {
            return true;
        }
        vnet_step(net);
    }
    return cond(net);
}

static int vnet_leader(struct vnet *net)
{
    unsigned i;
    int leader = -1;
    for (i = 0; i < VN; i++) {
        struct vnode *v = &net->nodes[i];
        if (v->running && !v->cut && raft_state(&v->raft) == RAFT_LEADER) {
            leader = (int)i;
        }
    }
    if (leader < 0) {
        return -1;
    }
    for (i = 0; i < VN; i++) {
        raft_id id;
        const char *addr;
        struct vnode *v = &net->nodes[i];
        if (!v->running || v->cut) {
            continue;
        }
        raft_leader(&v->raft, &id, &addr);
        if (id != net->nodes[leader].id) {
            return -1;
        }
    }
    return leader;
}

static bool has_leader(struct vnet *net)
{
    return vnet_leader(net) >= 0;
}

static void v_closed(struct raft *r)
{
    struct vnode *v = r->data;
    p2praft__memstore_io_close(&v->store);
    v->closed = true;
}

static void vnode_stop(struct vnet *net, unsigned i)
{
    struct vnode *v = &net->nodes[i];
    if (!v->running) {
        return;
    }
    v->raft.data = v;
    raft_close(&v->raft, v_closed);
    v->running = false;
    while (!v->closed) {
        uv_run(&net->loop, UV_RUN_ONCE);
    }
}

static void vnet_close(struct vnet *net)
{
    unsigned i;
    struct vmsg *x;
    for (i = 0; i < VN; i++) {
        vnode_stop(net, i);
    }
    while ((x = net->q) != NULL) {
        net->q = x->next;
        p2praft__rpc_message_release(&x->m);
        free(x);
    }
    net->q_tail = NULL;
    for (i = 0; i < VN; i++) {
        p2praft_memstore_free(net->nodes[i].m);
    }
    uv_run(&net->loop, UV_RUN_DEFAULT);
    ASSERT_OK(uv_loop_close(&net->loop));
}

struct vapply {
    struct raft_apply req;
    int done, status;
};

static void vapply_cb(struct raft_apply *req, int status, void *result)
{
    struct vapply *a = req->data;
    (void)result;
    a->done++;
    a->status = status;
}

/* Submit value x on node i (its raft must accept it). */
static void vsubmit(struct vnet *net, unsigned i, uint64_t x,
                    struct vapply *a)
{
    struct raft_buffer b;
    memset(a, 0, sizeof(*a));
    a->req.data = a;
    b.base = raft_malloc(8);
    b.len = 8;
    memcpy(b.base, &x, 8);
    ASSERT_OK(raft_apply(&net->nodes[i].raft, &a->req, &b, 1, vapply_cb));
}

static uint64_t g_want;

/* Step until a's callback ran (bounded). */
static void vwait(struct vnet *net, struct vapply *a)
{
    unsigned k;
    for (k = 0; k < 100 && a->done == 0; k++) {
        vnet_step(net);
    }
    ASSERT_EQ(a->done, 1);
    ASSERT_OK(a->status);
}

static bool all_running_sum(struct vnet *net)
{
    unsigned i;
    for (i = 0; i < VN; i++) {
        if (net->nodes[i].running && net->nodes[i].sum != g_want) {
            return false;
        }
    }
    return true;
}

TEST(memstore, raft_election_deterministic)
{
    struct vnet *net = malloc(sizeof(*net));
    unsigned steps[2];
    int leaders[2];
    raft_term terms[2];
    int run;
    for (run = 0; run < 2; run++) {
        struct loaded l;
        int lead;
        vnet_init(net, 0, 0);
        ASSERT(vnet_run_until(net, has_leader, 1000));
        lead = vnet_leader(net);
        leaders[run] = lead;
        steps[run] = net->steps;
        terms[run] = raft_current_term(&net->nodes[lead].raft);
        /* The store holds raft's term and the leader's vote for itself. */
        load(&net->nodes[lead].store, &l);
        ASSERT_EQ_U64(l.term, terms[run]);
        ASSERT_EQ_U64(l.vote, net->nodes[lead].id);
        ASSERT(l.term >= 2);
        loaded_free(&l);
        vnet_close(net);
    }
    ASSERT_EQ(leaders[0], leaders[1]);
    ASSERT_EQ(steps[0], steps[1]);
    ASSERT_EQ_U64(terms[0], terms[1]);
    free(net);
}

/* Both stores hold the same entries (terms, types, data) from `from`. */
static void logs_equal(struct vnode *a, struct vnode *b)
{
    struct loaded la, lb;
    size_t i;
    load(&a->store, &la);
    load(&b->store, &lb);
    ASSERT_EQ_U64(la.start + la.n, lb.start + lb.n);
    for (i = 0; i < la.n; i++) {
        raft_index idx = la.start + i;
        if (idx >= lb.start) {
            const struct raft_entry *x = &la.e[i], *y = &lb.e[idx - lb.start];
            ASSERT_EQ_U64(x->term, y->term);
            ASSERT_EQ(x->type, y->type);
            ASSERT_EQ(x->buf.len, y->buf.len);
            ASSERT_MEM_EQ(x->buf.base, y->buf.base, x->buf.len);
        }
    }
    loaded_free(&la);
    loaded_free(&lb);
}

static bool old_leader_caught_up(struct vnet *net)
{
    return all_running_sum(net);
}

TEST(memstore, raft_truncation)
{
    struct vnet *net = malloc(sizeof(*net));
    struct vapply a[3], b[2];
    struct loaded l;
    raft_index stale_last;
    int old, nl;
    unsigned i;
    vnet_init(net, 0, 0);
    ASSERT(vnet_run_until(net, has_leader, 1000));
    old = vnet_leader(net);
    /* Everything so far is everywhere. */
    vsubmit(net, (unsigned)old, 1, &b[0]);
    g_want = 1;
    ASSERT(vnet_run_until(net, all_running_sum, 1000));
    /* Cut the leader off; it appends three entries it cannot commit. */
    net->nodes[old].cut = true;
    for (i = 0; i < 3; i++) {
        vsubmit(net, (unsigned)old, 1000 + i, &a[i]);
    }
    uv_run(&net->loop, UV_RUN_NOWAIT);
    load(&net->nodes[old].store, &l);
    stale_last = l.start + l.n - 1;
    loaded_free(&l);
    /* The others elect a new leader and commit two other entries. */
    ASSERT(vnet_run_until(net, has_leader, 1000));
    nl = vnet_leader(net);
    ASSERT(nl != old);
    vsubmit(net, (unsigned)nl, 5, &b[0]);
    vsubmit(net, (unsigned)nl, 7, &b[1]);
    g_want = 13;
    net->nodes[old].cut = false;
    /* The old leader steps down; its conflicting entries are truncated
     * and replaced by the new leader's. */
    ASSERT(vnet_run_until(net, old_leader_caught_up, 2000));
    ASSERT_EQ(b[0].done + b[1].done, 2);
    ASSERT_OK(b[1].status);
    for (i = 0; i < 3; i++) {
        ASSERT_EQ(a[i].done, 1);
        ASSERT(a[i].status != 0); /* leadership lost: never applied */
    }
    ASSERT(raft_state(&net->nodes[old].raft) == RAFT_FOLLOWER);
    for (i = 0; i < VN; i++) {
        logs_equal(&net->nodes[nl], &net->nodes[i]);
        ASSERT_EQ_U64(net->nodes[i].sum, 13);
    }
    /* Where the deposed leader had its own entries, it now holds the new
     * leader's (same index, the new term). */
    load(&net->nodes[old].store, &l);
    ASSERT_EQ_U64(l.start + l.n - 1, stale_last - 1); /* 3 gone, 2 came */
    ASSERT_EQ_U64(l.e[stale_last - 1 - l.start].term,
                  raft_current_term(&net->nodes[nl].raft));
    ASSERT_EQ_U64(l.e[stale_last - 2 - l.start].term,
                  raft_current_term(&net->nodes[nl].raft));
    loaded_free(&l);
    vnet_close(net);
    free(net);
}

struct vchange {
    struct raft_change req;
    int done, status;
};

static void vchange_cb(struct raft_change *req, int status)
{
    struct vchange *c = req->data;
    c->done++;
    c->status = status;
}

static void vchange_wait(struct vnet *net, struct vchange *c)
{
    unsigned k;
    for (k = 0; k < 200 && c->done == 0; k++) {
        vnet_step(net);
    }
    ASSERT_EQ(c->done, 1);
    ASSERT_OK(c->status);
}

static unsigned g_lagger;

static bool lagger_applied_all(struct vnet *net)
{
    struct raft *lr = &net->nodes[g_lagger].raft;
    int lead = vnet_leader(net);
    return lead >= 0 && raft_last_applied(lr) ==
                            raft_last_index(&net->nodes[lead].raft);
}

/* libraft 0.22.1 records, on a follower, the FIRST index of an appended
 * batch as its uncommitted configuration's (io.c's comment): a lagging
 * follower that gets [command, configuration] at once keeps that
 * configuration uncommitted for ever, and once it leads every change is
 * CANTCHANGE. First without the io's correction (the bug is there: if a
 * libraft upgrade fixed it, the correction can go), then with it: the
 * configuration commits, and the follower, once leader, changes it. */
TEST(memstore, raft_conf_entry_inside_a_batch)
{
    struct vnet *net = malloc(sizeof(*net));
    int fix;
    for (fix = 0; fix < 2; fix++) {
        struct vapply a;
        struct vchange c;
        struct raft *fr;
        struct raft_transfer t;
        raft_index cmd;
        unsigned i;
        int lead;
        vnet_init(net, 0, 0);
        for (i = 0; i < VN; i++) {
            net->nodes[i].fix_conf = fix == 1;
        }
        ASSERT(vnet_run_until(net, has_leader, 1000));
        lead = vnet_leader(net);
        g_lagger = ((unsigned)lead + 1) % VN;
        fr = &net->nodes[g_lagger].raft;
        /* The lagger misses a command and a configuration change (a spare
         * that never answers: it takes no part in the quorum). */
        net->nodes[g_lagger].cut = true;
        vsubmit(net, (unsigned)lead, 1, &a);
        vwait(net, &a);
        cmd = raft_last_index(&net->nodes[lead].raft);
        memset(&c, 0, sizeof(c));
        c.req.data = &c;
        ASSERT_OK(raft_add(&net->nodes[lead].raft, &c.req, 9, "node9",
                           vchange_cb));
        vchange_wait(net, &c);
        ASSERT_EQ_U64(raft_last_index(&net->nodes[lead].raft), cmd + 1);
        ASSERT_EQ_U64(raft_last_index(fr), cmd - 1);
        /* Back: it gets both in one AppendEntries, and applies them. */
        net->nodes[g_lagger].cut = false;
        ASSERT(vnet_run_until(net, lagger_applied_all, 1000));
        ASSERT_EQ(fr->configuration.n, VN + 1);
        if (fix == 0) {
            ASSERT_EQ_U64(fr->configuration_uncommitted_index, cmd);
            vnet_close(net);
            continue;
        }
        ASSERT_EQ_U64(fr->configuration_uncommitted_index, 0);
        ASSERT_EQ_U64(fr->configuration_committed_index, cmd + 1);
        /* It leads, and removes the spare. */
        memset(&t, 0, sizeof(t));
        ASSERT_OK(raft_transfer(&net->nodes[lead].raft, &t,
                                net->nodes[g_lagger].id, NULL));
        for (i = 0; i < 500 && raft_state(fr) != RAFT_LEADER; i++) {
            vnet_step(net);
        }
        ASSERT(raft_state(fr) == RAFT_LEADER);
        memset(&c, 0, sizeof(c));
        c.req.data = &c;
        ASSERT_OK(raft_remove(fr, &c.req, 9, vchange_cb));
        vchange_wait(net, &c);
        ASSERT_EQ(fr->configuration.n, VN);
        vnet_close(net);
    }
    free(net);
}

TEST(memstore, raft_snapshots_and_install)
{
    struct vnet *net = malloc(sizeof(*net));
    struct vapply a;
    unsigned i, lagger;
    int lead;
    vnet_init(net, 4, 2);
    ASSERT(vnet_run_until(net, has_leader, 1000));
    lead = vnet_leader(net);
    lagger = ((unsigned)lead + 1) % VN;
    net->nodes[lagger].cut = true;
    g_want = 0;
    for (i = 1; i <= 20; i++) {
        vsubmit(net, (unsigned)lead, i, &a);
        g_want += i;
        vwait(net, &a);
        ASSERT_OK(a.status);
    }
    /* The leader compacted its log past everything the lagger has. */
    ASSERT(p2praft__memstore_snapshots(net->nodes[lead].m) >= 3);
    ASSERT(p2praft__memstore_snapshot_index(net->nodes[lead].m) > 10);
    ASSERT_EQ_U64(p2praft__memstore_snapshots(net->nodes[lagger].m), 0);
    net->nodes[lagger].cut = false;
    ASSERT(vnet_run_until(net, all_running_sum, 2000));
    /* It got there by installing the leader's snapshot. */
    ASSERT(p2praft__memstore_snapshot_index(net->nodes[lagger].m) > 10);
    for (i = 0; i < VN; i++) {
        logs_equal(&net->nodes[lead], &net->nodes[i]);
    }
    vnet_close(net);
    free(net);
}

TEST(memstore, raft_restart_in_process)
{
    struct vnet *net = malloc(sizeof(*net));
    struct vapply a;
    struct loaded before, after;
    unsigned i, f;
    int lead;
    vnet_init(net, 4, 2);
    ASSERT(vnet_run_until(net, has_leader, 1000));
    lead = vnet_leader(net);
    g_want = 0;
    for (i = 1; i <= 9; i++) {
        vsubmit(net, (unsigned)lead, i * 10, &a);
        g_want += i * 10;
        vwait(net, &a);
    }
    ASSERT(vnet_run_until(net, all_running_sum, 1000));
    f = ((unsigned)lead + 1) % VN;
    vnode_stop(net, f);
    /* Look at what the store kept, through a fresh io. */
    ASSERT_OK(p2praft__memstore_io_init(&net->nodes[f].store, &net->loop,
                                        net->nodes[f].m));
    ASSERT_OK(net->nodes[f].store.init(&net->nodes[f].store, 1, "x"));
    load(&net->nodes[f].store, &before);
    s_closed = 0;
    net->nodes[f].store.close(&net->nodes[f].store, s_close_cb);
    while (!s_closed) {
        uv_run(&net->loop, UV_RUN_ONCE);
    }
    p2praft__memstore_io_close(&net->nodes[f].store);
    ASSERT(before.snap != NULL); /* 9 entries with threshold 4 */
    /* Same process, same store: raft starts from the snapshot and log. */
    vnode_start(net, f, false);
    raft_set_snapshot_threshold(&net->nodes[f].raft, 4);
    raft_set_snapshot_trailing(&net->nodes[f].raft, 2);
    ASSERT_EQ_U64(net->nodes[f].sum, *(uint64_t *)before.snap->bufs[0].base);
    ASSERT(raft_current_term(&net->nodes[f].raft) == before.term);
    vsubmit(net, (unsigned)lead, 1, &a);
    g_want += 1;
    ASSERT(vnet_run_until(net, all_running_sum, 1000));
    load(&net->nodes[f].store, &after);
    ASSERT(after.start + after.n > before.start + before.n);
    loaded_free(&after);
    loaded_free(&before);
    vnet_close(net);
    free(net);
}

/* ---- OOM sweep: every allocation of the store (lp2p heap) and of what it
 * hands to raft (raft heap, routed through the same counting heap) fails
 * in turn; each operation reports RAFT_NOMEM and nothing leaks ---- */

static void *rh_malloc(void *d, size_t n)
{
    (void)d;
    return lp2p__malloc(n);
}
static void rh_free(void *d, void *p)
{
    (void)d;
    lp2p__free(p);
}
static void *rh_calloc(void *d, size_t n, size_t m)
{
    (void)d;
    return lp2p__calloc(n, m);
}
static void *rh_realloc(void *d, void *p, size_t n)
{
    (void)d;
    return lp2p__realloc(p, n);
}
static void *rh_aligned_alloc(void *d, size_t a, size_t n)
{
    (void)d;
    (void)a;
    return lp2p__malloc(n);
}
static void rh_aligned_free(void *d, size_t a, void *p)
{
    (void)d;
    (void)a;
    lp2p__free(p);
}
static struct raft_heap routed_heap = {NULL, rh_malloc, rh_free, rh_calloc,
                                       rh_realloc, rh_aligned_alloc,
                                       rh_aligned_free};

static int oom_status;

static void oom_append_cb(struct raft_io_append *req, int status)
{
    (void)req;
    if (status != 0 && oom_status == 0) {
        oom_status = status;
    }
}

static void oom_put_cb(struct raft_io_snapshot_put *req, int status)
{
    (void)req;
    if (status != 0 && oom_status == 0) {
        oom_status = status;
    }
}

static void oom_get_cb(struct raft_io_snapshot_get *req,
                       struct raft_snapshot *s, int status)
{
    (void)req;
    snapshot_free(s);
    if (status != 0 && oom_status == 0) {
        oom_status = status;
    }
}

/* Bootstrap, append, snapshot put and get, load, close: 0, or
 * LP2P_ENOMEM when an operation ran out of memory. */
static int memstore_oom_body(void *ctx)
{
    uv_loop_t *loop = ctx;
    struct p2praft_memstore *m;
    struct raft_io io;
    struct raft_configuration conf;
    struct raft_io_append ar;
    struct raft_io_snapshot_put pr;
    struct raft_io_snapshot_get gr;
    struct raft_entry e[2];
    struct raft_snapshot snap;
    struct raft_buffer buf;
    raft_term term;
    raft_id vote;
    struct raft_snapshot *ls;
    raft_index start;
    struct raft_entry *le;
    size_t ln;
    int rv;
    oom_status = 0;
    rv = p2praft_memstore_new(&m);
    if (rv != 0) {
        return rv;
    }
    if (p2praft__memstore_io_init(&io, loop, m) != 0) {
        p2praft_memstore_free(m);
        return LP2P_ENOMEM;
    }
    io.init(&io, 1, "one");
    raft_configuration_init(&conf);
    rv = raft_configuration_add(&conf, 1, "one", RAFT_VOTER);
    if (rv == 0) {
        rv = io.bootstrap(&io, &conf);
    }
    if (rv == 0) {
        e[0] = mk_entry(1, "first");
        e[1] = mk_entry(1, "second");
        rv = io.append(&io, &ar, e, 2, oom_append_cb);
    }
    if (rv == 0) {
        memset(&snap, 0, sizeof(snap));
        snap.index = 2;
        snap.term = 1;
        snap.configuration = conf;
        snap.configuration_index = 1;
        buf.base = (void *)"data";
        buf.len = 4;
        snap.bufs = &buf;
        snap.n_bufs = 1;
        rv = io.snapshot_put(&io, 1, &pr, &snap, oom_put_cb);
    }
    if (rv == 0) {
        rv = io.snapshot_get(&io, &gr, oom_get_cb);
    }
    if (rv == 0) {
        rv = io.load(&io, &term, &vote, &ls, &start, &le, &ln);
        if (rv == 0) {
            if (le != NULL) {
                raft_free(le[0].batch);
                raft_free(le);
            }
            snapshot_free(ls);
        }
    }
    uv_run(loop, UV_RUN_NOWAIT);
    raft_configuration_close(&conf);
    io_shut(&io, loop);
    p2praft_memstore_free(m);
    if (rv == 0) {
        rv = oom_status;
    }
    return rv == 0 ? 0 : rv == RAFT_NOMEM ? LP2P_ENOMEM : LP2P_EINVAL;
}

TEST(memstore, oom_sweep)
{
    uv_loop_t loop;
    long swept;
    ASSERT_OK(uv_loop_init(&loop));
    raft_heap_set(&routed_heap);
    swept = test__oom_sweep(memstore_oom_body, &loop);
    raft_heap_set_default();
    ASSERT(swept >= 10);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_OK(uv_loop_close(&loop));
}
