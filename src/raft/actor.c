/*
 * Actor: the gateway from a consensus to one raft instance. It answers who
 * leads (as a peer ID string) and whether this node leads. The submission
 * itself lives in consensus.c, which owns the batching.
 *
 * The raft address is the leader's peer ID string once the libp2p
 * transport is used; with other transports a resolver maps (id, address)
 * to the peer ID.
 */
#include <raft/uv.h>
#include <stdio.h>
#include <string.h>

#include "raft/consensus.h"
#include "util/heap.h"
#include "util/log.h"

int p2praft_actor_new(struct p2praft_actor **out, struct raft *raft)
{
    struct p2praft_actor *a;
    if (out == NULL) {
        return LP2P_EINVAL;
    }
    a = lp2p__calloc(1, sizeof(*a));
    if (a == NULL) {
        return LP2P_ENOMEM;
    }
    a->raft = raft;
    *out = a;
    return 0;
}

void p2praft_actor_free(struct p2praft_actor *a)
{
    lp2p__free(a);
}

void p2praft_actor_set_resolver(struct p2praft_actor *a, p2praft_resolve_fn fn,
                                void *ctx)
{
    if (a != NULL) {
        a->resolve = fn;
        a->resolve_ctx = ctx;
    }
}

int p2praft_actor_leader(struct p2praft_actor *a, char *out, size_t len)
{
    raft_id id = 0;
    const char *address = NULL;
    size_t n;
    if (a == NULL || out == NULL || len == 0) {
        return LP2P_EINVAL;
    }
    out[0] = '\0';
    if (a->raft == NULL) {
        return LP2P_ENORAFT;
    }
    raft_leader(a->raft, &id, &address);
    if (id == 0 || address == NULL) {
        return LP2P_ENOLEADER;
    }
    if (a->resolve != NULL) {
        int rv = a->resolve(a->resolve_ctx, id, address, out, len);
        if (rv != 0) {
            out[0] = '\0';
            return rv;
        }
        if (out[0] == '\0') {
            return LP2P_ENOLEADER;
        }
        return 0;
    }
    n = strlen(address);
    if (n >= len) {
        return LP2P_EOVERFLOW;
    }
    memcpy(out, address, n + 1);
    return 0;
}

bool p2praft_actor_is_leader(struct p2praft_actor *a)
{
    return a != NULL && a->raft != NULL && raft_state(a->raft) == RAFT_LEADER;
}

void p2praft__actor_leader_msg(struct p2praft_actor *a, char *out, size_t len)
{
    if (p2praft_actor_leader(a, out, len) != 0) {
        out[0] = '\0';
    }
}

/* ---- libraft tracer -> log hook ------------------------------------------ */

static void trace_emit(struct raft_tracer *t, int type, const void *data)
{
    const struct raft_tracer_info *info = data;
    enum lp2p_log_level level;
    (void)t;
    if (type != RAFT_TRACER_DIAGNOSTIC || info == NULL || info->version < 1) {
        return;
    }
    switch (info->diagnostic.level) {
    case 1:
        level = LP2P_LOG_ERROR;
        break;
    case 2:
        level = LP2P_LOG_WARN;
        break;
    case 3:
        level = LP2P_LOG_INFO;
        break;
    case 4:
        level = LP2P_LOG_DEBUG;
        break;
    default:
        level = LP2P_LOG_TRACE;
        break;
    }
    LP2P_LOG(level, "raft", "%s:%d %s",
             info->diagnostic.file != NULL ? info->diagnostic.file : "?",
             info->diagnostic.line,
             info->diagnostic.message != NULL ? info->diagnostic.message : "");
}

static struct raft_tracer tracer = {NULL, 2, trace_emit};

struct raft_tracer *p2praft_raft_tracer(void)
{
    return &tracer;
}

void p2praft_raft_trace(struct raft *r)
{
    if (r == NULL) {
        return;
    }
    r->tracer = lp2p_log_level() == LP2P_LOG_OFF ? NULL : &tracer;
}

void p2praft_raft_uv_trace(struct raft_io *io)
{
    if (io == NULL) {
        return;
    }
    raft_uv_set_tracer(io, lp2p_log_level() == LP2P_LOG_OFF ? NULL : &tracer);
}
