/*
 * A counting heap for the lp2p heap hook: it counts allocations, can fail
 * the Nth one, and tracks live blocks so that a run can check it freed
 * everything it allocated.
 */
#ifndef P2PRAFT_TEST_OOM_H
#define P2PRAFT_TEST_OOM_H

/* Install the counting heap. fail_at: 1-based allocation to fail, or 0
 * for none. Resets the counters. */
void test__oom_install(long fail_at);
/* Restore the default heap. */
void test__oom_remove(void);
/* Allocations attempted since install. */
long test__oom_count(void);
/* Blocks allocated and not yet freed since install. */
long test__oom_live(void);

/*
 * The sweep: run body once to count its allocations (it must return 0),
 * then once per allocation, failing that one. Every run must free all it
 * allocated, and a failing run must return a negative code. Fails the
 * test otherwise. Returns the number of allocations swept.
 */
long test__oom_sweep(int (*body)(void *ctx), void *ctx);

#endif
