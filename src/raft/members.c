/*
 * Membership, as the leader carries it out (contract: p2praft.h, the
 * membership block). The request state machine (req.c) hands every
 * membership request here first; what this node cannot serve goes to the
 * leader over the forward protocol, like a write.
 *
 *   PEERS      the leader's configuration with its match indexes.
 *   PEER_ADD   raft_add() of the peer as a spare, its multiaddr as the
 *              server address (so every node learns it: io.c; on the
 *              hashicorp wire its peer ID string, go-libp2p-raft's
 *              ServerAddress, and the multiaddr stays here). The
 *              promoter then makes it a standby (replicated, not voting),
 *              and a voter once it caught up.
 *   PEER_RM    raft_remove(); the leader itself first hands leadership to
 *              another voter (the request retries, and reaches the new
 *              leader). The removed node is told (REMOVED), best effort.
 *   TRANSFER   raft_transfer(); HANDOVER: only when this node leads.
 *   REMOVED    (forward protocol) this node was removed: log it.
 *
 * libraft takes one configuration change at a time and asserts on a
 * second, and on a change submitted by a follower: every call is made on
 * the leader, with change_busy clear. A request that finds a change in
 * flight (or libraft's CANTCHANGE: an uncommitted configuration) retries.
 *
 * Outcome: errors before raft_add/raft_remove accepted the change are
 * BAD REQUEST (the request itself is wrong) or retried until the deadline
 * (FAILED); once accepted, anything but the change callback's success is
 * UNKNOWN (maybe_applied; req.c and forward.c answer a timeout or a lost
 * stream so).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "raft/datadir.h"
#include "raft/forward.h"
#include "raft/io.h"
#include "raft/members.h"
#include "raft/node.h"
#include "raft/req.h"
#include "util/buf.h"
#include "util/heap.h"
#include "util/log.h"

#define MODULE "node"
#define PROMOTE_RETRY_MS 500

void p2praft__members_peer_str(const char *address, char *out, size_t len)
{
    struct lp2p_peer_id pid;
    if (p2praft__addr_peer(address, &pid) != 0 ||
        lp2p_peer_id_to_string(&pid, out, len) != 0) {
        snprintf(out, len, "?");
    }
}

static const char *role_name(int role)
{
    switch (role) {
    case RAFT_VOTER:
        return "voter";
    case RAFT_STANDBY:
        return "standby";
    case RAFT_SPARE:
        return "spare";
    default:
        return "?";
    }
}

static const struct raft_server *conf_get(const struct raft_configuration *c,
                                          raft_id id)
{
    unsigned i;
    for (i = 0; i < c->n; i++) {
        if (c->servers[i].id == id) {
            return &c->servers[i];
        }
    }
    return NULL;
}

static unsigned voters(const struct raft_configuration *c)
{
    unsigned i, k = 0;
    for (i = 0; i < c->n; i++) {
        k += c->servers[i].role == RAFT_VOTER;
    }
    return k;
}

/* ---- PEERS ---------------------------------------------------------------- */

static void serve_peers(struct p2praft__req *r)
{
    struct p2praft_node *n = r->node;
    const struct raft_configuration *c = &n->raft.configuration;
    struct lp2p_buf b;
    unsigned i;
    lp2p__buf_init(&b);
    for (i = 0; i < c->n; i++) {
        const struct raft_server *s = &c->servers[i];
        char peer[LP2P_PEER_ID_STRMAX], line[LP2P_MULTIADDR_STRMAX + 200];
        raft_index match = 0;
        int k;
        p2praft__members_peer_str(s->address, peer, sizeof(peer));
        if (s->id == n->self_id) {
            match = raft_last_index(&n->raft);
        } else if (raft_match_index(&n->raft, s->id, &match) != 0) {
            match = 0;
        }
        k = snprintf(line, sizeof(line), "%s %s %s %" PRIu64 " %s\n", peer,
                     role_name(s->role),
                     s->id == n->self_id ? "leader" : "follower",
                     (uint64_t)match,
                     s->address != NULL && s->address[0] == '/' ? s->address
                                                                : "-");
        if (k > 0 && lp2p__buf_append(&b, line,
                                      (size_t)k < sizeof(line)
                                          ? (size_t)k
                                          : sizeof(line) - 1) != 0) {
            lp2p__buf_free(&b);
            p2praft__req_error(r, P2PRAFT_API_FAILED, "out of memory");
            return;
        }
    }
    r->index = raft_last_index(&n->raft);
    p2praft__req_reply(r, P2PRAFT_API_OK, b.data, b.len);
    lp2p__buf_free(&b);
}

/* ---- configuration changes ------------------------------------------------ */

static void removed_notice(struct p2praft_node *n, const char *peer);

static void change_cb(struct raft_change *req, int status)
{
    struct p2praft_node *n = req->data;
    struct p2praft__members *m = &n->members;
    struct p2praft__req *r = m->change_req;
    uint8_t op = m->change_op;
    m->change_busy = false;
    m->change_req = NULL;
    if (op == 0) {
        if (status == 0) {
            LOG_WARN(MODULE, "member %s is now a %s", m->change_peer,
                     role_name(m->change_role));
        } else {
            LOG_INFO(MODULE, "could not make %s a %s: %s", m->change_peer,
                     role_name(m->change_role), raft_strerror(status));
            m->next_promote = uv_now(&n->loop) + PROMOTE_RETRY_MS;
        }
        return;
    }
    if (status == 0) {
        LOG_WARN(MODULE, "member %s %s (configuration at index %" PRIu64 ")",
                 m->change_peer,
                 op == P2PRAFT_API_PEER_ADD ? "added" : "removed",
                 (uint64_t)n->raft.configuration_committed_index);
        if (op == P2PRAFT_API_PEER_RM && !n->stopping) {
            removed_notice(n, m->change_peer);
        }
    }
    if (r == NULL) {
        return;
    }
    r->pending--;
    if (r->phase == P2PRAFT__REQ_DONE) {
        p2praft__req_maybe_free(r);
        return;
    }
    if (status == 0) {
        r->index = n->raft.configuration_committed_index;
        p2praft__req_reply(r, P2PRAFT_API_OK, m->change_peer,
                           strlen(m->change_peer));
        return;
    }
    p2praft__req_error(r, P2PRAFT_API_UNKNOWN,
                       "the configuration change was submitted, then: %s; "
                       "the outcome is unknown (see p2praft peers ls)",
                       raft_strerror(status));
}

/* Not now, and nothing was submitted: try again. A request forwarded by
 * another member is answered at once (BUSY, NOT LEADER), so that the
 * member retries it within its own deadline, not this node. */
static void again(struct p2praft__req *r, bool not_leader, const char *why)
{
    if (r->local_only) {
        p2praft__req_error(r, not_leader ? P2PRAFT_API_NOTLEADER
                                         : P2PRAFT_API_BUSY,
                           "%s", why);
    } else {
        p2praft__req_retry(r);
    }
}

/* The answer to a change raft refused before it took it. */
static void refused(struct p2praft__req *r, int rv, const char *what)
{
    struct p2praft_node *n = r->node;
    switch (rv) {
    case RAFT_NOTLEADER:
    case RAFT_LEADERSHIPLOST:
        again(r, true, "not the leader"); /* not submitted */
        return;
    case RAFT_CANTCHANGE:
        again(r, false, "the last configuration change is not committed yet");
        return;
    case RAFT_DUPLICATEID:
    case RAFT_DUPLICATEADDRESS:
    case RAFT_BADID:
    case RAFT_NOTFOUND:
    case RAFT_BADROLE:
        p2praft__req_error(r, P2PRAFT_API_BADREQ, "%s: %s (not changed)",
                           what, raft_errmsg(&n->raft)[0] != '\0'
                                     ? raft_errmsg(&n->raft)
                                     : raft_strerror(rv));
        return;
    default:
        p2praft__req_error(r, P2PRAFT_API_FAILED, "%s: %s (not changed)",
                           what, raft_strerror(rv));
        return;
    }
}

static void taken(struct p2praft__req *r, uint8_t op, raft_id id,
                  const char *peer)
{
    struct p2praft__members *m = &r->node->members;
    m->change_busy = true;
    m->change_req = r;
    m->change_op = op;
    m->change_id = id;
    snprintf(m->change_peer, sizeof(m->change_peer), "%s", peer);
    r->pending++;
    r->maybe_applied = true;
    r->phase = P2PRAFT__REQ_BUSY;
}

static void serve_add(struct p2praft__req *r)
{
    struct p2praft_node *n = r->node;
    struct p2praft__members *m = &n->members;
    const char *ma = r->q.key != NULL ? r->q.key : "";
    const struct raft_server *s;
    struct lp2p_peer_id pid;
    char peer[LP2P_PEER_ID_STRMAX];
    raft_id id;
    int rv;
    if (ma[0] != '/' || p2praft__addr_peer(ma, &pid) != 0) {
        p2praft__req_error(r, P2PRAFT_API_BADREQ,
                           "'%s' is not a multiaddr ending in /p2p/<peer "
                           "id> (not added)",
                           ma);
        return;
    }
    lp2p_peer_id_to_string(&pid, peer, sizeof(peer));
    id = p2praft_server_id(&pid);
    s = conf_get(&n->raft.configuration, id);
    if (s != NULL) {
        p2praft__req_error(r, P2PRAFT_API_BADREQ,
                           "%s is already a member (%s): not added", peer,
                           role_name(s->role));
        return;
    }
    if (m->change_busy) {
        again(r, false, "another configuration change is in progress");
        return;
    }
    /* Dial it with this address from now on. On p2praft's wire every node
     * learns it from the configuration entry, whose server address it is.
     * On the hashicorp wire the server address is the peer ID string, as
     * go-libp2p-raft has it (a Go node dials an address as a peer ID): the
     * other members must be given the new member's address themselves. */
    lp2p_peerstore_add_addr(n->host, &pid, ma, LP2P_TTL_PERMANENT);
    m->change.data = n;
    rv = raft_add(&n->raft, &m->change, id,
                  n->cfg.wire == P2PRAFT_WIRE_HASHICORP ? peer : ma,
                  change_cb);
    if (rv != 0) {
        refused(r, rv, "cannot add");
        return;
    }
    taken(r, P2PRAFT_API_PEER_ADD, id, peer);
}

/* Hand leadership to any other voter; `r` (may be NULL) waits for it. */
static int start_transfer(struct p2praft_node *n, struct p2praft__req *r,
                          raft_id target);

static void serve_rm(struct p2praft__req *r)
{
    struct p2praft_node *n = r->node;
    struct p2praft__members *m = &n->members;
    const char *arg = r->q.key != NULL ? r->q.key : "";
    const struct raft_server *s;
    struct lp2p_peer_id pid;
    char peer[LP2P_PEER_ID_STRMAX];
    raft_id id;
    int rv;
    if (p2praft__addr_peer(arg, &pid) != 0) {
        p2praft__req_error(r, P2PRAFT_API_BADREQ,
                           "'%s' is not a peer ID (not removed)", arg);
        return;
    }
    lp2p_peer_id_to_string(&pid, peer, sizeof(peer));
    id = p2praft_server_id(&pid);
    s = conf_get(&n->raft.configuration, id);
    if (s == NULL) {
        p2praft__req_error(r, P2PRAFT_API_BADREQ,
                           "%s is not a member (not removed)", peer);
        return;
    }
    if (s->role == RAFT_VOTER && voters(&n->raft.configuration) == 1) {
        p2praft__req_error(r, P2PRAFT_API_BADREQ,
                           "%s is the last voter: it cannot be removed", peer);
        return;
    }
    if (m->change_busy) {
        again(r, false, "another configuration change is in progress");
        return;
    }
    if (id == n->self_id) {
        /* The leader leaves: another voter takes over first, and carries
         * the removal out (this request retries, and goes there). */
        if (!m->xfer_busy && start_transfer(n, NULL, 0) != 0) {
            p2praft__req_error(r, P2PRAFT_API_FAILED,
                               "cannot hand leadership over before leaving: "
                               "%s (not removed)",
                               raft_errmsg(&n->raft));
            return;
        }
        again(r, true, "handing leadership over");
        return;
    }
    m->change.data = n;
    rv = raft_remove(&n->raft, &m->change, id, change_cb);
    if (rv != 0) {
        refused(r, rv, "cannot remove");
        return;
    }
    taken(r, P2PRAFT_API_PEER_RM, id, peer);
}

/* ---- leadership transfer -------------------------------------------------- */

static void xfer_cb(struct raft_transfer *req)
{
    struct p2praft_node *n = req->data;
    struct p2praft__members *m = &n->members;
    struct p2praft__req *r = m->xfer_req;
    raft_id lid = 0;
    const char *laddr = NULL;
    char peer[LP2P_PEER_ID_STRMAX];
    m->xfer_busy = false;
    m->xfer_req = NULL;
    raft_leader(&n->raft, &lid, &laddr);
    if (lid != 0 && lid != n->self_id) {
        p2praft__members_peer_str(laddr, peer, sizeof(peer));
        LOG_WARN(MODULE, "leadership handed over to %s", peer);
    } else if (lid == n->self_id) {
        LOG_WARN(MODULE, "leadership transfer did not complete: still the "
                         "leader");
    }
    if (r == NULL) {
        return;
    }
    r->pending--;
    if (r->phase == P2PRAFT__REQ_DONE) {
        p2praft__req_maybe_free(r);
        return;
    }
    if (lid != 0 && lid != n->self_id &&
        (m->xfer_target == 0 || lid == m->xfer_target)) {
        p2praft__req_reply(r, P2PRAFT_API_OK, peer, strlen(peer));
    } else if (lid == n->self_id) {
        p2praft__req_error(r, P2PRAFT_API_FAILED,
                           "leadership did not move in time (the target "
                           "lags or cannot be reached); this node still "
                           "leads");
    } else {
        p2praft__req_error(r, P2PRAFT_API_UNKNOWN,
                           "this node stepped down; its successor is not "
                           "known yet");
    }
}

static int start_transfer(struct p2praft_node *n, struct p2praft__req *r,
                          raft_id target)
{
    struct p2praft__members *m = &n->members;
    int rv;
    memset(&m->xfer, 0, sizeof(m->xfer));
    m->xfer.data = n;
    rv = raft_transfer(&n->raft, &m->xfer, target, xfer_cb);
    if (rv != 0) {
        return rv;
    }
    m->xfer_busy = true;
    m->xfer_req = r;
    m->xfer_target = target;
    if (r != NULL) {
        r->pending++;
        r->phase = P2PRAFT__REQ_BUSY;
    }
    return 0;
}

static void serve_transfer(struct p2praft__req *r)
{
    struct p2praft_node *n = r->node;
    const char *arg = r->q.key != NULL ? r->q.key : "";
    bool handover = (r->q.flags & P2PRAFT__API_HANDOVER) != 0;
    raft_id target = 0;
    int rv;
    if (arg[0] != '\0') {
        struct lp2p_peer_id pid;
        const struct raft_server *s;
        if (p2praft__addr_peer(arg, &pid) != 0) {
            p2praft__req_error(r, P2PRAFT_API_BADREQ,
                               "'%s' is not a peer ID", arg);
            return;
        }
        target = p2praft_server_id(&pid);
        s = conf_get(&n->raft.configuration, target);
        if (target == n->self_id) {
            p2praft__req_reply(r, P2PRAFT_API_OK, n->self, strlen(n->self));
            return;
        }
        if (s == NULL || s->role != RAFT_VOTER) {
            p2praft__req_error(r, P2PRAFT_API_BADREQ,
                               "%s is not a voter: leadership not moved", arg);
            return;
        }
    }
    if (voters(&n->raft.configuration) < 2) {
        if (handover) {
            p2praft__req_reply(r, P2PRAFT_API_OK, NULL, 0); /* nobody */
        } else {
            p2praft__req_error(r, P2PRAFT_API_BADREQ,
                               "no other voter to hand leadership to");
        }
        return;
    }
    if (n->members.xfer_busy) {
        again(r, false, "a leadership transfer is in progress");
        return;
    }
    rv = start_transfer(n, r, target);
    if (rv == RAFT_NOTLEADER) {
        again(r, true, "not the leader");
    } else if (rv != 0) {
        p2praft__req_error(r, P2PRAFT_API_FAILED,
                           "cannot transfer leadership: %s",
                           raft_errmsg(&n->raft));
    }
}

/* ---- REMOVED --------------------------------------------------------------- */

/* The notice's answer: nobody waits for it. */
static void notice_reply(void *owner, struct p2praft__req *r, uint8_t *frame,
                         size_t len)
{
    (void)owner;
    (void)r;
    (void)len;
    lp2p__free(frame);
}

static const struct p2praft__req_owner_ops notice_owner = {notice_reply};

/* Tell the removed peer, so that it knows why nobody answers it any more. */
static void removed_notice(struct p2praft_node *n, const char *peer)
{
    struct p2praft__req *r;
    if (strcmp(peer, n->self) == 0) {
        return;
    }
    r = p2praft__req_new(n, &notice_owner, n);
    if (r == NULL) {
        return;
    }
    r->q.op = P2PRAFT_API_REMOVED;
    r->q.key = lp2p__strdup(peer);
    if (r->q.key == NULL) {
        p2praft__req_reply(r, P2PRAFT_API_FAILED, NULL, 0);
        return;
    }
    p2praft__forward_send(r, peer);
}

/* This node learned it is no member any more: it stops campaigning (its
 * raft I/O gives it no election timeout and withholds its RequestVotes:
 * a removed node that never received the entry removing it would
 * otherwise stand for election for ever), says so in one line, and tells
 * the program (cfg.on_removed), which may stop it. */
static void mark_removed(struct p2praft_node *n, const char *how)
{
    raft_id lid = 0;
    const char *laddr = NULL;
    char by[LP2P_PEER_ID_STRMAX];
    if (n->members.removed) {
        return;
    }
    n->members.removed = true;
    p2praft__io_set_retired(&n->io, true);
    raft_leader(&n->raft, &lid, &laddr);
    if (lid != 0 && lid != n->self_id && laddr != NULL) {
        p2praft__members_peer_str(laddr, by, sizeof(by));
    } else {
        snprintf(by, sizeof(by), "its leader");
    }
    {
        char rec[600];
        snprintf(rec, sizeof(rec),
                 "this node (%s) was removed from the cluster by %s (%s)",
                 n->self, by, how);
        if (n->data_dir != NULL &&
            p2praft__datadir_mark_removed(n->data_dir, rec) != 0) {
            LOG_WARN(MODULE, "cannot record the removal in %s: %s",
                     n->data_dir, strerror(errno));
        }
    }
    LOG_WARN(MODULE,
             "this node (%s) was removed from the cluster by %s (%s): not "
             "campaigning any more, and the members refuse its streams; "
             "stopping raft. To serve again: remove the data directory and "
             "start with --join after `p2praft peers add` on a member",
             n->self, by, how);
    if (n->cfg.on_removed != NULL) {
        n->cfg.on_removed(n->cfg.on_removed_data);
    }
}

/* ---- dispatch ------------------------------------------------------------- */

bool p2praft__members_serve(struct p2praft__req *r)
{
    struct p2praft_node *n = r->node;
    bool leads = raft_state(&n->raft) == RAFT_LEADER;
    switch (r->q.op) {
    case P2PRAFT_API_REMOVED:
        if (r->local_only) {
            /* A joining node (no configuration yet) was not removed: the
             * notice is older than its admission. */
            if (n->raft.configuration.n > 0) {
                mark_removed(n, "told by the leader");
                n->members.told = true;
            }
            p2praft__req_reply(r, P2PRAFT_API_OK, NULL, 0);
            return true;
        }
        /* The leader's notice: re-sent until it is answered or expires,
         * unless the peer became a member again meanwhile. */
        if (r->q.key == NULL) {
            p2praft__req_error(r, P2PRAFT_API_BADREQ, "REMOVED is internal");
        } else {
            uint64_t id = 0;
            if (p2praft_server_id_parse(r->q.key, &id) != 0 ||
                conf_get(&n->raft.configuration, (raft_id)id) != NULL) {
                p2praft__req_reply(r, P2PRAFT_API_OK, NULL, 0);
            } else {
                p2praft__forward_send(r, r->q.key);
            }
        }
        return true;
    case P2PRAFT_API_TRANSFER:
        if ((r->q.flags & P2PRAFT__API_HANDOVER) != 0 && !leads) {
            p2praft__req_reply(r, P2PRAFT_API_OK, NULL, 0); /* nothing */
            return true;
        }
        break;
    default:
        break;
    }
    if (!leads) {
        return false;
    }
    switch (r->q.op) {
    case P2PRAFT_API_PEERS:
        serve_peers(r);
        break;
    case P2PRAFT_API_PEER_ADD:
        serve_add(r);
        break;
    case P2PRAFT_API_PEER_RM:
        serve_rm(r);
        break;
    case P2PRAFT_API_TRANSFER:
        serve_transfer(r);
        break;
    default:
        p2praft__req_error(r, P2PRAFT_API_BADREQ,
                           "operation %u is not served here", r->q.op);
        break;
    }
    return true;
}

/* ---- promoter -------------------------------------------------------------- */

static void promote(struct p2praft_node *n, const struct raft_server *s,
                    int role)
{
    struct p2praft__members *m = &n->members;
    int rv;
    m->change.data = n;
    p2praft__members_peer_str(s->address, m->change_peer,
                              sizeof(m->change_peer));
    m->change_op = 0;
    m->change_role = role;
    m->change_req = NULL;
    m->change_id = s->id;
    rv = raft_assign(&n->raft, &m->change, s->id, role, change_cb);
    if (rv != 0) {
        m->next_promote = uv_now(&n->loop) + PROMOTE_RETRY_MS;
        return;
    }
    m->change_busy = true;
}

void p2praft__members_tick(struct p2praft_node *n, uint64_t now)
{
    struct p2praft__members *m = &n->members;
    const struct raft_configuration *c = &n->raft.configuration;
    raft_index last;
    unsigned i;
    if (n->stopping || !n->raft_started ||
        raft_state(&n->raft) != RAFT_LEADER || m->change_busy ||
        m->xfer_busy || raft_transferee(&n->raft) != 0 ||
        now < m->next_promote ||
        n->raft.configuration_uncommitted_index != 0) {
        return;
    }
    last = raft_last_index(&n->raft);
    for (i = 0; i < c->n; i++) {
        const struct raft_server *s = &c->servers[i];
        raft_index match = 0;
        if (s->role == RAFT_SPARE) {
            promote(n, s, RAFT_STANDBY);
            return;
        }
        if (s->role == RAFT_STANDBY &&
            raft_match_index(&n->raft, s->id, &match) == 0 && match > 0 &&
            match + P2PRAFT_PROMOTE_LAG >= last) {
            promote(n, s, RAFT_VOTER);
            return;
        }
    }
}

/* ---- this node's own membership ------------------------------------------- */

void p2praft__members_check(struct p2praft_node *n)
{
    struct p2praft__members *m = &n->members;
    const struct raft_configuration *c = &n->raft.configuration;
    bool in;
    if (c->n == 0) {
        return; /* joining: the leader's configuration has not come yet */
    }
    if (!m->join_cleared) {
        /* From now on the configuration alone admits peers. */
        if (p2praft_io_set_members(&n->io, NULL, 0) == 0) {
            m->join_cleared = true;
        }
    }
    in = conf_get(c, n->self_id) != NULL;
    if (in && !m->was_member) {
        m->was_member = true;
        if (n->cfg.join) {
            LOG_WARN(MODULE, "joined the cluster: in its configuration at "
                             "index %" PRIu64 " as a %s",
                     (uint64_t)n->raft.configuration_committed_index,
                     role_name(conf_get(c, n->self_id)->role));
        }
    } else if (!in && m->was_member && n->caught_up) {
        /* Only once caught up: a member added again replays its own
         * removal on the way. */
        mark_removed(n, "its configuration no longer lists it");
    } else if (in && m->removed && !m->told) {
        m->removed = false;
        if (n->data_dir != NULL) {
            p2praft__datadir_mark_removed(n->data_dir, NULL);
        }
        p2praft__io_set_retired(&n->io, false);
        LOG_WARN(MODULE, "this node is a member again");
    }
}
