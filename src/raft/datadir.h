/*
 * A node's data directory as a whole, before raft touches it: one process
 * at a time (an flock on p2praft.lock, which records the holder's PID),
 * its owner (p2praft.owner: the peer ID that bootstrapped it), its
 * permissions, its free space, and the check of raft's files
 * (diskcheck.h). A node opens it first and closes it last.
 */
#ifndef P2PRAFT_RAFT_DATADIR_H
#define P2PRAFT_RAFT_DATADIR_H

#include <stdbool.h>
#include <stddef.h>

#include "raft/diskcheck.h"

#define P2PRAFT__LOCK_FILE "p2praft.lock"
#define P2PRAFT__OWNER_FILE "p2praft.owner"
/* Written when the node learns it was removed from the cluster: a later
 * start there is refused (LP2P_EREMOVED), not left campaigning. */
#define P2PRAFT__REMOVED_FILE "p2praft.removed"

struct p2praft__datadir {
    int lock_fd;        /* -1 when the lock is not held */
    bool owner_pending; /* state from before owners: record it once the
                         * node has shown it is a member */
};

/* What the node starting on the directory brings. */
struct p2praft__datadir_opts {
    const char *dir;  /* borrowed */
    const char *self; /* the node's peer ID string, borrowed */
    bool bootstrap;   /* --bootstrap */
    bool join;        /* --join: an empty directory is expected */
    bool mem;         /* --store mem: raft's state lives in the process */
};

/* An unlocked handle (so that close is always safe). */
void p2praft__datadir_init(struct p2praft__datadir *d);

/*
 * Take the directory's lock (creating the directory, mode 0700, when
 * `create`; it must exist otherwise). Without `create` (an offline check),
 * a read-only directory is locked read-only, or not at all on a read-only
 * file system without a lock file. 0; LP2P_EBUSY when another process or
 * handle holds it (errmsg names the holder's PID); LP2P_ENOTFOUND;
 * LP2P_EIO.
 */
int p2praft__datadir_lock(struct p2praft__datadir *d, const char *dir,
                          bool create, char *errmsg, size_t errmsg_len);

/*
 * Everything a node does before raft loads the directory, in order: lock
 * it, warn (log, warn level) when group or others may read it, check
 * raft's files (*r), refuse --bootstrap on a directory with state and a
 * start without it on one without, refuse a memory-store node whose key
 * already ran on the directory (it lost its term, vote and log; see
 * mem_check() in datadir.c), check the owner (recorded now on a
 * first bootstrap; on a directory made before owners were recorded, left
 * pending for p2praft__datadir_record_owner()), and check that one more
 * log segment fits; refuse a directory whose node was removed from the
 * cluster (P2PRAFT__REMOVED_FILE). 0, or the error with errmsg
 * saying what to do: LP2P_EBUSY, LP2P_ECORRUPT (damaged raft file),
 * LP2P_EEXIST (--bootstrap on state), LP2P_EINVAL (no state and no
 * --bootstrap, or another peer's directory), LP2P_EREMOVED,
 * LP2P_ENOSPACE, LP2P_EIO,
 * LP2P_ENOMEM. On error the lock is released.
 */
int p2praft__datadir_open(struct p2praft__datadir *d,
                          const struct p2praft__datadir_opts *o,
                          struct p2praft__disk_report *r, char *errmsg,
                          size_t errmsg_len);

/* A directory made before owners were recorded (d->owner_pending): raft
 * loaded it and its configuration lists `self`, so record `self` as its
 * owner now (logged at warn level). Nothing to do otherwise. 0 or
 * LP2P_EIO. */
int p2praft__datadir_record_owner(struct p2praft__datadir *d, const char *dir,
                                  const char *self, char *errmsg,
                                  size_t errmsg_len);

/* Record in `dir` that its node was removed from the cluster (`line`
 * says how; best effort, synced), or, with line NULL, that it is a
 * member again (the record removed). 0 or LP2P_EIO. */
int p2praft__datadir_mark_removed(const char *dir, const char *line);

/* Release the lock (when held). */
void p2praft__datadir_close(struct p2praft__datadir *d);

#endif
