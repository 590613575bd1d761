/*
 * The in-memory raft store (the seed's InmemStore counterpart): term, vote,
 * log and latest snapshot in a `struct p2praft_memstore` that the
 * application owns and that outlives the raft instances using it, so that
 * a node restarted in the same process finds its state again. A storage
 * raft_io bound to it (p2praft__memstore_io_init()) implements libraft's
 * storage contract:
 *   - load: term, vote, the snapshot (if any) and the entries from the
 *     first one kept, copied into raft-owned memory (one batch);
 *   - bootstrap (only when pristine: RAFT_CANTBOOTSTRAP otherwise) writes
 *     term 1 and the configuration as entry 1; recover appends a
 *     configuration entry;
 *   - set_term resets the vote; set_vote;
 *   - append copies the entries at the end of the log (the caller's
 *     buffers are borrowed for the call only) and completes on the same
 *     loop turn, after the call returned; truncate(i) drops entries from i;
 *   - snapshot_put copies the snapshot and keeps `trailing` entries before
 *     its index (0: the whole log goes, the next entry is index + 1);
 *     snapshot_get hands over a raft-owned copy;
 *   - close completes what is pending with RAFT_CANCELED, then calls back.
 * Nothing is written anywhere: the state dies with the memstore.
 */
#ifndef P2PRAFT_RAFT_MEMSTORE_H
#define P2PRAFT_RAFT_MEMSTORE_H

#include <raft.h>
#include <uv.h>

#include "p2praft.h"

/*
 * Fill `io` (its storage methods; send and start do nothing useful) with
 * the store `m` (borrowed; one raft_io at a time) on `loop`, whose handles
 * run the completions. 0, RAFT_NOMEM, RAFT_BUSY (m already in use).
 * Release with p2praft__memstore_io_close() after io->close completed.
 */
int p2praft__memstore_io_init(struct raft_io *io, uv_loop_t *loop,
                              struct p2praft_memstore *m);

/* Free what p2praft__memstore_io_init() allocated (m is left alone). */
void p2praft__memstore_io_close(struct raft_io *io);

/* Drop the log, keeping term, vote and the snapshot: what survives a
 * restart of a seed node whose log store was in memory but whose snapshot
 * store was not (tests). Not while an io uses m. */
void p2praft__memstore_drop_log(struct p2praft_memstore *m);

/* The stored snapshot's index (0: none), for tests. */
raft_index p2praft__memstore_snapshot_index(const struct p2praft_memstore *m);

/* Counters for tests: entries appended, snapshots stored. */
uint64_t p2praft__memstore_appended(const struct p2praft_memstore *m);
uint64_t p2praft__memstore_snapshots(const struct p2praft_memstore *m);

/*
 * Test hook: while held, snapshot_put requests copy the snapshot but do not
 * complete; p2praft__memstore_hold_puts(m, false) releases them (they
 * complete on the next loop turn). Lets a test keep a snapshot "being
 * persisted" for as long as it needs.
 */
void p2praft__memstore_hold_puts(struct p2praft_memstore *m, bool hold);

/*
 * Test hook: while held, appends take their entries but do not complete
 * (nor does anything queued after them), as raft_uv's appends wait on a
 * full disk; releasing completes them on the next loop turn.
 */
void p2praft__memstore_hold_appends(struct p2praft_memstore *m, bool hold);

/* snapshot_put requests waiting on the hold. */
unsigned p2praft__memstore_held_puts(const struct p2praft_memstore *m);

#endif
