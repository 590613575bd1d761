/*
 * Subscribers of a consensus: each with its own bounded queue of
 * notifications, or an update callback (see p2praft.h). The FSM
 * (fsm.c) notifies them under c->mu.
 */

#include "raft/consensus.h"
#include "raft/consensus_int.h"
#include "util/heap.h"

/* ---- subscribers --------------------------------------------------------- */

/* List the new subscriber `s` (filled in) among c's: the FSM notifies it
 * from now on. Returns s. */
static struct p2praft_sub *sub_add(struct p2praft_consensus *c,
                                   struct p2praft_sub *s)
{
    pthread_cond_init(&s->cv, NULL);
    pthread_mutex_lock(&c->mu);
    s->next = c->subs;
    c->subs = s;
    pthread_mutex_unlock(&c->mu);
    return s;
}

struct p2praft_sub *p2praft_consensus_subscribe(
    struct p2praft_consensus *c, unsigned capacity,
    void (*notify)(void *ctx, struct p2praft_sub *sub), void *ctx)
{
    struct p2praft_sub *s;
    if (c == NULL) {
        return NULL;
    }
    s = lp2p__calloc(1, sizeof(*s));
    if (s == NULL) {
        return NULL;
    }
    s->c = c;
    s->cap = capacity != 0 ? capacity : P2PRAFT_MAX_SUBSCRIBER_CH;
    s->notify = notify;
    s->ctx = ctx;
    return sub_add(c, s);
}

struct p2praft_sub *p2praft_consensus_subscribe_updates(
    struct p2praft_consensus *c,
    void (*on_update)(void *ctx, const struct p2praft_update *u), void *ctx)
{
    struct p2praft_sub *s;
    if (c == NULL || on_update == NULL) {
        return NULL;
    }
    s = lp2p__calloc(1, sizeof(*s));
    if (s == NULL) {
        return NULL;
    }
    s->c = c;
    s->on_update = on_update;
    s->ctx = ctx;
    return sub_add(c, s);
}

int p2praft__consensus_state(struct p2praft_consensus *c, const void **out)
{
    /* The loop thread is the only writer: no lock to read. */
    *out = NULL;
    if (c->inconsistent) {
        return LP2P_EINCONSISTENT;
    }
    if (!c->initialized) {
        return LP2P_ENOSTATE;
    }
    *out = c->state;
    return 0;
}

void p2praft_consensus_unsubscribe(struct p2praft_consensus *c,
                                   struct p2praft_sub *sub)
{
    struct p2praft_sub **pp;
    if (c == NULL || sub == NULL) {
        return;
    }
    pthread_mutex_lock(&c->mu);
    for (pp = &c->subs; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == sub) {
            *pp = sub->next;
            break;
        }
    }
    pthread_mutex_unlock(&c->mu);
    pthread_cond_destroy(&sub->cv);
    lp2p__free(sub);
}

int p2praft_sub_poll(struct p2praft_sub *sub)
{
    int got = 0;
    pthread_mutex_lock(&sub->c->mu);
    if (sub->pending > 0) {
        sub->pending--;
        got = 1;
    }
    pthread_mutex_unlock(&sub->c->mu);
    return got;
}

int p2praft_sub_wait(struct p2praft_sub *sub, unsigned timeout_ms)
{
    struct timespec ts;
    int rv = 0;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&sub->c->mu);
    while (sub->pending == 0 && rv == 0) {
        if (pthread_cond_timedwait(&sub->cv, &sub->c->mu, &ts) == ETIMEDOUT) {
            rv = LP2P_ETIMEDOUT;
        }
    }
    if (sub->pending > 0) {
        sub->pending--;
        rv = 0;
    }
    pthread_mutex_unlock(&sub->c->mu);
    return rv;
}

unsigned p2praft_sub_pending(struct p2praft_sub *sub)
{
    unsigned n;
    pthread_mutex_lock(&sub->c->mu);
    n = sub->pending;
    pthread_mutex_unlock(&sub->c->mu);
    return n;
}

uint64_t p2praft_sub_dropped(struct p2praft_sub *sub)
{
    uint64_t n;
    pthread_mutex_lock(&sub->c->mu);
    n = sub->dropped;
    pthread_mutex_unlock(&sub->c->mu);
    return n;
}

