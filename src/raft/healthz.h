/*
 * What /healthz answers (healthz.c): the decision alone, sans-I/O, from
 * numbers the node reads on its loop thread. A node is healthy when it has
 * a leader it heard from recently (or leads) and has applied what it knows
 * to be committed, give or take a few entries:
 *
 *   removed          the node learned it was removed from the cluster
 *                    (members.c): it serves nothing any more;
 *   no leader        raft knows no leader (candidate, or a follower
 *                    between leaders);
 *   leader silent    a follower's last raft message from its leader is
 *                    older than P2PRAFT__HEALTHZ_CONTACT_TIMEOUTS election
 *                    timeouts (or it never had one);
 *   not caught up    the node has not yet applied up to an index learned
 *                    from a leader since it started (its catch-up
 *                    barrier, node.h);
 *   applied behind   its applied index trails the commit index it knows
 *                    by more than P2PRAFT__HEALTHZ_MAX_APPLY_LAG entries.
 */
#ifndef P2PRAFT_RAFT_HEALTHZ_H
#define P2PRAFT_RAFT_HEALTHZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A follower must have heard from its leader within this many election
 * timeouts (it sends a heartbeat every heartbeat timeout, a tenth of it by
 * default). */
#define P2PRAFT__HEALTHZ_CONTACT_TIMEOUTS 2
/* Applied may trail commit by this many entries (a burst being applied). */
#define P2PRAFT__HEALTHZ_MAX_APPLY_LAG 64

/* A contact age for "never heard from it". */
#define P2PRAFT__HEALTHZ_NEVER UINT64_MAX

enum p2praft__healthz_verdict {
    P2PRAFT__HEALTHZ_OK = 0,
    P2PRAFT__HEALTHZ_REMOVED,
    P2PRAFT__HEALTHZ_NO_LEADER,
    P2PRAFT__HEALTHZ_LEADER_SILENT,
    P2PRAFT__HEALTHZ_NOT_CAUGHT_UP,
    P2PRAFT__HEALTHZ_APPLY_BEHIND,
};

struct p2praft__healthz_in {
    bool removed;          /* removed from the cluster (members.h) */
    bool is_leader;        /* this node leads */
    bool leader_known;     /* raft names a leader (this node or another) */
    const char *leader;    /* its peer ID or address (borrowed), for `why` */
    const char *role;      /* raft's state name, for `why` */
    uint64_t term;
    uint64_t contact_age_ms; /* since the leader's last message; NEVER */
    uint64_t election_ms;
    bool caught_up;        /* the node's catch-up barrier passed */
    uint64_t applied, commit;
    /* Thresholds: 0 takes the defaults above. */
    uint64_t max_contact_ms; /* default CONTACT_TIMEOUTS * election_ms */
    uint64_t max_apply_lag;
};

/* Decide. `why` (len bytes, always NUL-terminated when len > 0) gets one
 * line without a newline: "ok: leader ID, applied index N" or the reason
 * for the verdict. Pure: no clock, no node. */
enum p2praft__healthz_verdict
p2praft__healthz_judge(const struct p2praft__healthz_in *in, char *why,
                       size_t len);

#endif
