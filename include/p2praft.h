/*
 * p2praft: Raft consensus among libp2p peers, the C counterpart of
 * go-libp2p-raft. See README.md for the API at a glance.
 */
#ifndef P2PRAFT_H
#define P2PRAFT_H

#include "lp2p.h"

#define P2PRAFT_API LP2P_API
#define P2PRAFT_VERSION LP2P_VERSION

/* Every error code of lp2p.h, under its P2PRAFT_ name. */
enum p2praft_errno {
#define P2PRAFT__ERR_ENUM(name, code, msg) P2PRAFT_E##name = code,
    LP2P_ERRNO_MAP(P2PRAFT__ERR_ENUM)
#undef P2PRAFT__ERR_ENUM
};

/* Same as lp2p_strerror(). */
P2PRAFT_API const char *p2praft_strerror(int rv);

/* Same as lp2p_log_set(): one log hook serves both layers. */
P2PRAFT_API void p2praft_log_set(enum lp2p_log_level level, lp2p_log_cb cb,
                                 void *ctx);

#endif /* P2PRAFT_H */
