/* util/err.c: the one error table, its names and messages. */
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
