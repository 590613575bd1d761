/* util/err.c: the one error table, its names and messages. */
#include <string.h>

#include "lp2p.h"
#include "p2praft.h"
#include "test.h"

TEST(errors, table)
{
    ASSERT_STR_EQ(lp2p_strerror(0), "success");
    ASSERT_STR_EQ(lp2p_strerror(LP2P_ENOMEM), "out of memory");
    ASSERT_STR_EQ(p2praft_strerror(P2PRAFT_ENOSTATE),
                  "no state has been agreed upon yet");
    ASSERT_EQ(P2PRAFT_ENOSTATE, LP2P_ENOSTATE);
    ASSERT_STR_EQ(lp2p_strerror(-9999), "unknown error");
    ASSERT_STR_EQ(lp2p_errname(LP2P_EPEERID), "LP2P_EPEERID");
}

/* Callers decide on codes: which ones leave a write's outcome unknown. */
TEST(errors, outcome_unknown)
{
    static const int unknown[] = {P2PRAFT_EUNKNOWN, P2PRAFT_ETIMEDOUT,
                                  P2PRAFT_ESHUTDOWN};
    static const int not_applied[] = {
        P2PRAFT_ENOTLEADER, P2PRAFT_ENOLEADER, P2PRAFT_ERAFT,
        P2PRAFT_ENOACTOR,   P2PRAFT_ENORAFT,   P2PRAFT_EINVAL,
        P2PRAFT_ENOMEM,     P2PRAFT_ELIMIT,    P2PRAFT_ENOTCAUGHTUP,
        P2PRAFT_ENOTFOUND,  P2PRAFT_EMISMATCH};
    size_t i;
    for (i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        ASSERT(p2praft_outcome_unknown(unknown[i]));
    }
    for (i = 0; i < sizeof(not_applied) / sizeof(not_applied[0]); i++) {
        ASSERT(!p2praft_outcome_unknown(not_applied[i]));
    }
    ASSERT(!p2praft_outcome_unknown(0));
    ASSERT(!p2praft_outcome_unknown(P2PRAFT_EAPPLY)); /* committed */
    ASSERT_STR_EQ(lp2p_errname(P2PRAFT_EUNKNOWN), "LP2P_EUNKNOWN");
    ASSERT(strstr(p2praft_strerror(P2PRAFT_EUNKNOWN), "unknown") != NULL);
}
