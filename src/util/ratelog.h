/*
 * Counting events for the log at a bounded rate, so that a flood of them
 * (a hostile peer opening streams, a peer down for hours) costs a line per
 * interval, not one per event, and still says how many there were: a line
 * for the first event, then at most one per interval, each covering the
 * events since the previous line. Loop-thread state; no clock of its own.
 */
#ifndef LP2P_UTIL_RATELOG_H
#define LP2P_UTIL_RATELOG_H

#include <stdbool.h>
#include <stdint.h>

struct lp2p__ratelog {
    uint64_t total;    /* events so far */
    uint64_t unlogged; /* events since the last line */
    uint64_t next_ms;  /* no line before this time */
};

/* Count one event at now_ms. True when a line is due now: *since then
 * holds the events it covers (this one included), and the next line waits
 * interval_ms. Zero-initialised state is valid. */
bool lp2p__ratelog_hit(struct lp2p__ratelog *rl, uint64_t now_ms,
                       uint64_t interval_ms, uint64_t *since);

/* Count n events at once, without logging (a counter read from elsewhere
 * moved by n); lp2p__ratelog_due() then says when to log them. */
void lp2p__ratelog_add(struct lp2p__ratelog *rl, uint64_t n);

/* From a timer: true when events were held back and their line is due
 * (*since as above). */
bool lp2p__ratelog_due(struct lp2p__ratelog *rl, uint64_t now_ms,
                       uint64_t interval_ms, uint64_t *since);

#endif
