/*
 * Receiving, for p2praft's raft_io: every message the transports read is
 * handed to raft here, after the storage's stall policy (no AppendEntries
 * with entries while the store is behind, see io_store.c) and the
 * snapshot shield (an InstallSnapshot held while raft stores a snapshot
 * it took, dropped while one is installed; io.c's top says why). The rest
 * of the raft_io is io.c; io_int.h holds what they share.
 */
#include <stdio.h>
#include <string.h>

#include "raft/io_int.h"
#include "raft/rpc.h"
#include "util/log.h"

#define MOD "transport"

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
    p2praft__io_after_raft(p);
}

void p2praft__io_recv(struct pio *p, struct raft_message *m)
{
    if (p->closing || p->recv_cb == NULL) {
        p2praft__rpc_message_release(m);
        return;
    }
    if (m->type == RAFT_REQUEST_VOTE && p2praft__io_stalled(p)) {
        /* A follower with unwritten entries never times out (libraft
         * 0.22.1 "stays follower" while persisting, and
         * p2praft__io_tick_cb() gives it no tick), so it never forgets
         * the leader it last heard and would refuse every candidate until
         * its disk writes again: let a candidate past that check (a
         * liveness rule only; the term and log checks still hold). */
        m->request_vote.disrupt_leader = true;
    }
    if (m->type == RAFT_APPEND_ENTRIES && m->append_entries.n_entries > 0 &&
        (p2praft__io_backlog_full(p) || p2praft__io_stalled(p))) {
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

void p2praft__io_deliver_held(struct pio *p)
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
