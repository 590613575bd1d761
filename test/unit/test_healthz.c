/*
 * The /healthz decision (raft/healthz.h): each 503 reason and the 200
 * case, from fixed inputs (no clock, no node), and the thresholds at their
 * edges.
 */
#include <string.h>

#include "raft/healthz.h"
#include "test.h"

/* A healthy follower: leader heard 10 ms ago, applied == commit. */
static struct p2praft__healthz_in follower(void)
{
    struct p2praft__healthz_in in;
    memset(&in, 0, sizeof(in));
    in.leader_known = true;
    in.leader = "12D3KooWLeader";
    in.role = "follower";
    in.term = 7;
    in.contact_age_ms = 10;
    in.election_ms = 150;
    in.caught_up = true;
    in.applied = 100;
    in.commit = 100;
    return in;
}

TEST(healthz, ok_follower_and_leader)
{
    struct p2praft__healthz_in in = follower();
    char why[300];
    ASSERT_EQ(p2praft__healthz_judge(&in, why, sizeof(why)),
              P2PRAFT__HEALTHZ_OK);
    ASSERT_STR_EQ(why, "ok: leader 12D3KooWLeader, applied index 100");
    /* a leader needs no contact with itself */
    in.is_leader = true;
    in.role = "leader";
    in.contact_age_ms = P2PRAFT__HEALTHZ_NEVER;
    ASSERT_EQ(p2praft__healthz_judge(&in, why, sizeof(why)),
              P2PRAFT__HEALTHZ_OK);
    /* applied within the lag bound, exactly at it */
    in = follower();
    in.commit = in.applied + P2PRAFT__HEALTHZ_MAX_APPLY_LAG;
    ASSERT_EQ(p2praft__healthz_judge(&in, why, sizeof(why)),
              P2PRAFT__HEALTHZ_OK);
    /* contact exactly two election timeouts ago still counts */
    in = follower();
    in.contact_age_ms = 300;
    ASSERT_EQ(p2praft__healthz_judge(&in, why, sizeof(why)),
              P2PRAFT__HEALTHZ_OK);
}

TEST(healthz, no_leader)
{
    struct p2praft__healthz_in in = follower();
    char why[300];
    in.leader_known = false;
    in.leader = NULL;
    in.role = "candidate";
    ASSERT_EQ(p2praft__healthz_judge(&in, why, sizeof(why)),
              P2PRAFT__HEALTHZ_NO_LEADER);
    ASSERT_STR_EQ(why, "no leader known (role candidate, term 7)");
}

TEST(healthz, removed)
{
    struct p2praft__healthz_in in = follower();
    char why[300];
    in.removed = true;
    ASSERT_EQ(p2praft__healthz_judge(&in, why, sizeof(why)),
              P2PRAFT__HEALTHZ_REMOVED);
    ASSERT_STR_EQ(why, "removed from the cluster (term 7): not a member any "
                       "more");
    /* first of all reasons, even with no leader */
    in.leader_known = false;
    ASSERT_EQ(p2praft__healthz_judge(&in, why, sizeof(why)),
              P2PRAFT__HEALTHZ_REMOVED);
}

TEST(healthz, leader_silent)
{
    struct p2praft__healthz_in in = follower();
    char why[300];
    in.contact_age_ms = 301;
    ASSERT_EQ(p2praft__healthz_judge(&in, why, sizeof(why)),
              P2PRAFT__HEALTHZ_LEADER_SILENT);
    ASSERT_STR_EQ(why, "leader 12D3KooWLeader not heard from for 301 ms "
                       "(more than 300 ms; term 7)");
    in.contact_age_ms = P2PRAFT__HEALTHZ_NEVER;
    ASSERT_EQ(p2praft__healthz_judge(&in, why, sizeof(why)),
              P2PRAFT__HEALTHZ_LEADER_SILENT);
    ASSERT_STR_EQ(why, "leader 12D3KooWLeader not heard from yet (term 7)");
    /* an explicit bound replaces the default */
    in.contact_age_ms = 301;
    in.max_contact_ms = 1000;
    ASSERT_EQ(p2praft__healthz_judge(&in, why, sizeof(why)),
              P2PRAFT__HEALTHZ_OK);
}

TEST(healthz, not_caught_up)
{
    struct p2praft__healthz_in in = follower();
    char why[300];
    in.caught_up = false;
    in.applied = 40;
    ASSERT_EQ(p2praft__healthz_judge(&in, why, sizeof(why)),
              P2PRAFT__HEALTHZ_NOT_CAUGHT_UP);
    ASSERT_STR_EQ(why, "not caught up since start: leader 12D3KooWLeader, "
                       "applied index 40, commit index 100");
}

TEST(healthz, apply_behind)
{
    struct p2praft__healthz_in in = follower();
    char why[300];
    in.commit = in.applied + P2PRAFT__HEALTHZ_MAX_APPLY_LAG + 1;
    ASSERT_EQ(p2praft__healthz_judge(&in, why, sizeof(why)),
              P2PRAFT__HEALTHZ_APPLY_BEHIND);
    ASSERT_STR_EQ(why, "applied behind by 65 entries (more than 64): applied "
                       "index 100, commit index 165, leader 12D3KooWLeader");
    in.max_apply_lag = 100;
    ASSERT_EQ(p2praft__healthz_judge(&in, why, sizeof(why)),
              P2PRAFT__HEALTHZ_OK);
    /* the order: no leader wins over everything, then silence, then
     * progress */
    in = follower();
    in.commit = 1000;
    in.caught_up = false;
    in.contact_age_ms = 5000;
    ASSERT_EQ(p2praft__healthz_judge(&in, why, sizeof(why)),
              P2PRAFT__HEALTHZ_LEADER_SILENT);
    in.leader_known = false;
    ASSERT_EQ(p2praft__healthz_judge(&in, why, sizeof(why)),
              P2PRAFT__HEALTHZ_NO_LEADER);
    /* a short buffer is cut, and still terminated */
    in = follower();
    ASSERT_EQ(p2praft__healthz_judge(&in, why, 5), P2PRAFT__HEALTHZ_OK);
    ASSERT_STR_EQ(why, "ok: ");
}
