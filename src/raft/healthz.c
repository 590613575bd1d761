/*
 * The /healthz decision (healthz.h). The order of the checks is the order
 * in which an operator fixes things: membership, a leader, then contact
 * with it, then this node's own progress.
 */
#include <inttypes.h>
#include <stdio.h>

#include "raft/healthz.h"

enum p2praft__healthz_verdict
p2praft__healthz_judge(const struct p2praft__healthz_in *in, char *why,
                       size_t len)
{
    const char *leader = in->leader != NULL ? in->leader : "?";
    const char *role = in->role != NULL ? in->role : "?";
    uint64_t max_contact = in->max_contact_ms;
    uint64_t max_lag = in->max_apply_lag != 0
                           ? in->max_apply_lag
                           : P2PRAFT__HEALTHZ_MAX_APPLY_LAG;
    uint64_t behind;
    if (max_contact == 0) {
        max_contact = P2PRAFT__HEALTHZ_CONTACT_TIMEOUTS * in->election_ms;
    }
    if (in->removed) {
        snprintf(why, len, "removed from the cluster (term %" PRIu64
                           "): not a member any more",
                 in->term);
        return P2PRAFT__HEALTHZ_REMOVED;
    }
    if (!in->leader_known) {
        snprintf(why, len, "no leader known (role %s, term %" PRIu64 ")",
                 role, in->term);
        return P2PRAFT__HEALTHZ_NO_LEADER;
    }
    if (!in->is_leader && in->contact_age_ms > max_contact) {
        if (in->contact_age_ms == P2PRAFT__HEALTHZ_NEVER) {
            snprintf(why, len,
                     "leader %s not heard from yet (term %" PRIu64 ")",
                     leader, in->term);
        } else {
            snprintf(why, len,
                     "leader %s not heard from for %" PRIu64
                     " ms (more than %" PRIu64 " ms; term %" PRIu64 ")",
                     leader, in->contact_age_ms, max_contact, in->term);
        }
        return P2PRAFT__HEALTHZ_LEADER_SILENT;
    }
    if (!in->caught_up) {
        snprintf(why, len,
                 "not caught up since start: leader %s, applied index %" PRIu64
                 ", commit index %" PRIu64,
                 leader, in->applied, in->commit);
        return P2PRAFT__HEALTHZ_NOT_CAUGHT_UP;
    }
    behind = in->commit > in->applied ? in->commit - in->applied : 0;
    if (behind > max_lag) {
        snprintf(why, len,
                 "applied behind by %" PRIu64 " entries (more than %" PRIu64
                 "): applied index %" PRIu64 ", commit index %" PRIu64
                 ", leader %s",
                 behind, max_lag, in->applied, in->commit, leader);
        return P2PRAFT__HEALTHZ_APPLY_BEHIND;
    }
    snprintf(why, len, "ok: leader %s, applied index %" PRIu64, leader,
             in->applied);
    return P2PRAFT__HEALTHZ_OK;
}
