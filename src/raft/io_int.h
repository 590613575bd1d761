/*
 * Internals of p2praft's raft_io, shared by its files:
 *   io.c        the raft_io object: libraft's completed requests, members,
 *               end-of-turn work, init, start, send, close, public API;
 *   io_store.c  storage passed through to raft_uv or the memory store,
 *               raft_uv's idle transport, and the stall detection that
 *               guards the storage (raft's tick);
 *   io_recv.c   receiving, and the snapshot shield.
 * See io.c for the design. io.h stays the module's interface to the rest
 * (transport.c, hctransport.c, the node, tests); nothing outside these
 * three files includes this header.
 */
#ifndef P2PRAFT_RAFT_IO_INT_H
#define P2PRAFT_RAFT_IO_INT_H

#include <stdbool.h>
#include <raft.h>
#include <uv.h>

#include "raft/io.h"

/* A leadership transfer this io asked for (storage stalled: io_store.c). */
struct xfer {
    struct raft_transfer req;
    struct pio *p; /* NULL once the io closed */
};

static inline struct pio *P(struct raft_io *io)
{
    return io->impl;
}

/* io.c: after every call into raft: complete requests, track the store's
 * capacity and the configuration. */
void p2praft__io_after_raft(struct pio *p);

/* io_store.c: install the storage methods (load, bootstrap, recover,
 * set_term, set_vote, append, truncate, snapshot_put, snapshot_get). */
void p2praft__io_store_methods(struct raft_io *io);

/* io_store.c: the tick timer's callback: watch the storage, then tick raft
 * unless the node must not campaign. */
void p2praft__io_tick_cb(uv_timer_t *t);

/* io_store.c: more entries wait to be written than the io takes. */
bool p2praft__io_backlog_full(const struct pio *p);

/* io_recv.c: hand raft the InstallSnapshot held while a snapshot raft took
 * was being stored, once none is. */
void p2praft__io_deliver_held(struct pio *p);

#endif /* P2PRAFT_RAFT_IO_INT_H */
