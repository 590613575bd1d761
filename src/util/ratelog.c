/* Rate-bounded event counting for the log (see ratelog.h). */
#include "util/ratelog.h"

static bool take(struct lp2p__ratelog *rl, uint64_t now_ms,
                 uint64_t interval_ms, uint64_t *since)
{
    if (rl->unlogged == 0 || now_ms < rl->next_ms) {
        return false;
    }
    *since = rl->unlogged;
    rl->unlogged = 0;
    rl->next_ms = now_ms + interval_ms;
    return true;
}

bool lp2p__ratelog_hit(struct lp2p__ratelog *rl, uint64_t now_ms,
                       uint64_t interval_ms, uint64_t *since)
{
    rl->total++;
    rl->unlogged++;
    return take(rl, now_ms, interval_ms, since);
}

bool lp2p__ratelog_due(struct lp2p__ratelog *rl, uint64_t now_ms,
                       uint64_t interval_ms, uint64_t *since)
{
    return take(rl, now_ms, interval_ms, since);
}

void lp2p__ratelog_add(struct lp2p__ratelog *rl, uint64_t n)
{
    rl->total += n;
    rl->unlogged += n;
}
