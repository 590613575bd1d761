/*
 * hashicorp RPCs <-> libraft raft_message (see hcmap.h, and
 * doc/hashicorp-wire.md for the field-by-field mapping and why).
 *
 * Inbound requests are checked for everything libraft asserts on (libraft
 * trusts its own peers; these bytes come from another implementation):
 * entry terms nonzero and non-decreasing, PrevLogEntry and PrevLogTerm
 * zero together, snapshot index and term nonzero. A request that fails is
 * refused before libraft sees it.
 */
#include "raft/hcmap.h"

#include <string.h>

#include "lp2p.h"
#include "p2praft.h"
#include "util/heap.h"

/* RAFT_BARRIER payloads: libraft's own no-op (the entry a new leader
 * appends) is 8 zero bytes; a barrier from a hashicorp LogBarrier carries
 * the little-endian value 1, so that the two stay distinct. */
#define BARRIER_LEN 8
static const uint8_t noop_payload[BARRIER_LEN] = {0};
static const uint8_t barrier_payload[BARRIER_LEN] = {1, 0, 0, 0, 0, 0, 0, 0};

/* libraft message versions (src/message.h of libraft 0.22). */
#define RV_VERSION 2
#define RV_RESULT_VERSION 2
#define AE_RESULT_VERSION 2

#define MAX_ID_LEN 256

static const char err_unexpected[] = "unexpected command";
static const char err_protocol[] = "operation not supported with current protocol version";

/* ---- identities ----------------------------------------------------------- */

int p2praft__hc_resolve_peer_id(void *ctx, const uint8_t *id, size_t len,
                                raft_id *out)
{
    char s[MAX_ID_LEN + 1];
    uint64_t v;
    int rv;
    (void)ctx;
    if (id == NULL || len == 0 || len > MAX_ID_LEN ||
        memchr(id, 0, len) != NULL) {
        return LP2P_EPROTO;
    }
    memcpy(s, id, len);
    s[len] = '\0';
    rv = p2praft_server_id_parse(s, &v);
    if (rv != 0) {
        return LP2P_EPROTO;
    }
    *out = v;
    return 0;
}

static int resolve(const struct p2praft__hc_map *m, const uint8_t *id,
                   size_t len, raft_id *out)
{
    if (id == NULL || len == 0) {
        return LP2P_EPROTO;
    }
    if (m->resolve != NULL) {
        return m->resolve(m->resolve_ctx, id, len, out);
    }
    return p2praft__hc_resolve_peer_id(NULL, id, len, out);
}

static struct p2praft__hc_bytes str_bytes(const char *s)
{
    struct p2praft__hc_bytes b;
    b.p = (const uint8_t *)s;
    b.len = strlen(s);
    return b;
}

/* A nil or empty identity field is fine (older senders omit some); any
 * other value must be the authenticated peer. */
static bool names_peer(const struct p2praft__hc_bytes *b, const char *from)
{
    return b->p == NULL || b->len == 0 ||
           (b->len == strlen(from) && memcmp(b->p, from, b->len) == 0);
}

static int check_header(const struct p2praft__hc_header *h, const char *from)
{
    /* hashicorp at protocol 3 refuses anything below 2. */
    if (h->protocol_version < 2 ||
        h->protocol_version > P2PRAFT__HC_PROTOCOL_VERSION) {
        return LP2P_EUNSUPPORTED;
    }
    if (!names_peer(&h->id, from) || !names_peer(&h->addr, from)) {
        return LP2P_EPEERID;
    }
    return 0;
}

static void local_header(const struct p2praft__hc_map *m,
                         struct p2praft__hc_header *h)
{
    h->protocol_version = P2PRAFT__HC_PROTOCOL_VERSION;
    h->id = str_bytes(m->local_id);
    h->addr = str_bytes(m->local_id);
}

/* ---- roles and configurations ---------------------------------------------- */

/* hashicorp/raft's suffrage and libraft's role: one table, read both ways. */
static const struct {
    int64_t suffrage;
    int role;
} roles[] = {
    {P2PRAFT__HC_VOTER, RAFT_VOTER},
    {P2PRAFT__HC_NONVOTER, RAFT_STANDBY},
    {P2PRAFT__HC_STAGING, RAFT_SPARE},
};

int p2praft__hc_role_of(int64_t suffrage, int *role)
{
    size_t i;
    for (i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
        if (roles[i].suffrage == suffrage) {
            *role = roles[i].role;
            return 0;
        }
    }
    return LP2P_EUNSUPPORTED;
}

int p2praft__hc_suffrage_of(int role, int64_t *suffrage)
{
    size_t i;
    for (i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
        if (roles[i].role == role) {
            *suffrage = roles[i].suffrage;
            return 0;
        }
    }
    return LP2P_EUNSUPPORTED;
}

static int raft_err(int rv)
{
    return rv == RAFT_NOMEM ? LP2P_ENOMEM : LP2P_EPROTO;
}

int p2praft__hc_conf_to_raft(const struct p2praft__hc_map *m,
                             const struct p2praft__hc_configuration *hc,
                             struct raft_configuration *out)
{
    char addr[MAX_ID_LEN + 1];
    size_t i;
    int rv = 0;
    raft_configuration_init(out);
    for (i = 0; i < hc->n && rv == 0; i++) {
        const struct p2praft__hc_server *s = &hc->servers[i];
        raft_id id;
        int role;
        if (s->id.p == NULL || s->id.len == 0 || s->id.len > MAX_ID_LEN ||
            s->address.len != s->id.len ||
            memcmp(s->id.p, s->address.p, s->id.len) != 0 ||
            memchr(s->id.p, 0, s->id.len) != NULL) {
            rv = LP2P_EPROTO; /* go-libp2p-raft has ID == Address */
            break;
        }
        rv = resolve(m, s->id.p, s->id.len, &id);
        if (rv != 0) {
            rv = rv == LP2P_ENOMEM ? rv : LP2P_EPROTO;
            break;
        }
        rv = p2praft__hc_role_of(s->suffrage, &role);
        if (rv != 0) {
            rv = LP2P_EPROTO;
            break;
        }
        memcpy(addr, s->id.p, s->id.len);
        addr[s->id.len] = '\0';
        rv = raft_configuration_add(out, id, addr, role);
        if (rv != 0) {
            rv = raft_err(rv); /* duplicate ID or address: EPROTO */
        }
    }
    if (rv != 0) {
        raft_configuration_close(out);
        raft_configuration_init(out);
    }
    return rv;
}

/* The peer ID string a server goes by on the hashicorp wire, borrowed from
 * its address: the address itself when it is a peer ID; the last component
 * of a multiaddr ending in /p2p/<id> (a member added with its address on
 * p2praft's own wire, or restored so), since go-libp2p-raft dials a
 * ServerAddress as a peer ID and nothing else. The caller resolves the
 * result (a string that is no peer ID fails there). */
static struct p2praft__hc_bytes server_peer_id(const char *address)
{
    static const char p2p[] = "/p2p";
    const char *last;
    size_t plen = sizeof(p2p) - 1;
    if (address[0] != '/') {
        return str_bytes(address);
    }
    last = strrchr(address, '/');
    if ((size_t)(last - address) < plen ||
        memcmp(last - plen, p2p, plen) != 0) {
        return str_bytes(""); /* a multiaddr without a peer ID */
    }
    return str_bytes(last + 1);
}

int p2praft__hc_conf_from_raft(const struct p2praft__hc_map *m,
                               const struct raft_configuration *conf,
                               struct p2praft__hc_configuration *out)
{
    unsigned i;
    memset(out, 0, sizeof(*out));
    /* EncodeConfiguration of a configuration with servers: never nil. */
    if (conf->n == 0) {
        out->servers_nil = true;
        return 0;
    }
    out->servers = lp2p__calloc(conf->n, sizeof(*out->servers));
    if (out->servers == NULL) {
        return LP2P_ENOMEM;
    }
    out->n = conf->n;
    for (i = 0; i < conf->n; i++) {
        const struct raft_server *s = &conf->servers[i];
        struct p2praft__hc_server *h = &out->servers[i];
        struct p2praft__hc_bytes peer = {NULL, 0};
        raft_id id;
        int rv;
        if (s->address == NULL) {
            rv = LP2P_EPROTO;
        } else {
            peer = server_peer_id(s->address);
            rv = resolve(m, peer.p, peer.len, &id);
        }
        if (rv == 0 && id != s->id) {
            rv = LP2P_EPROTO;
        }
        if (rv == 0) {
            rv = p2praft__hc_suffrage_of(s->role, &h->suffrage);
        }
        if (rv != 0) {
            p2praft__hc_conf_release(out);
            memset(out, 0, sizeof(*out));
            return rv == LP2P_ENOMEM ? rv : LP2P_EPROTO;
        }
        h->id = peer;
        h->address = peer;
    }
    return 0;
}

/* ---- requests we send ------------------------------------------------------ */

/* Owned scratch for one outbound message: encoded configurations. */
struct scratch {
    struct lp2p_buf *bufs;
    size_t n;
};

static void scratch_free(struct scratch *s)
{
    size_t i;
    for (i = 0; i < s->n; i++) {
        lp2p__buf_free(&s->bufs[i]);
    }
    lp2p__free(s->bufs);
    memset(s, 0, sizeof(*s));
}

/* libraft configuration -> hashicorp Configuration bytes in s->bufs[k]. */
static int encode_conf_into(const struct p2praft__hc_map *m,
                            const struct raft_configuration *conf,
                            struct lp2p_buf *out, struct lp2p_buf *peers)
{
    struct p2praft__hc_configuration hc;
    int rv = p2praft__hc_conf_from_raft(m, conf, &hc);
    if (rv != 0) {
        return rv;
    }
    rv = p2praft__hc_conf_encode(&hc, out);
    if (rv == 0 && peers != NULL) {
        rv = p2praft__hc_peers_encode(&hc, peers);
    }
    p2praft__hc_conf_release(&hc);
    return rv;
}

static bool is_noop_payload(const struct raft_buffer *b)
{
    return b->len == BARRIER_LEN && memcmp(b->base, noop_payload, BARRIER_LEN) == 0;
}

static int encode_append_entries(const struct p2praft__hc_map *m,
                                 const struct raft_append_entries *ae,
                                 struct lp2p_buf *wire)
{
    struct p2praft__hc_req req;
    struct p2praft__hc_append_entries *h = &req.append_entries;
    struct scratch s;
    struct p2praft__hc_log *logs = NULL;
    raft_index last_new;
    unsigned i;
    int rv = 0;
    memset(&req, 0, sizeof(req));
    memset(&s, 0, sizeof(s));
    req.type = P2PRAFT__HC_APPEND_ENTRIES;
    local_header(m, &h->header);
    h->term = ae->term;
    h->leader = str_bytes(m->local_id);
    h->prev_log_entry = ae->prev_log_index;
    h->prev_log_term = ae->prev_log_term;
    /* A hashicorp follower commits min(LeaderCommitIndex, its last index),
     * which may count a stale suffix beyond these entries; libraft's rule is
     * min(leader_commit, index of the last new entry). Send libraft's. */
    last_new = ae->prev_log_index + ae->n_entries;
    h->leader_commit_index =
        ae->leader_commit < last_new ? ae->leader_commit : last_new;
    /* A Go leader's heartbeat (PrevLogEntry 0, LeaderCommitIndex 0) has nil
     * Entries; its other AppendEntries an empty or full array. */
    h->entries_nil = ae->n_entries == 0 && ae->prev_log_index == 0 &&
                     h->leader_commit_index == 0;
    if (ae->n_entries > 0) {
        logs = lp2p__calloc(ae->n_entries, sizeof(*logs));
        s.bufs = lp2p__calloc(ae->n_entries, sizeof(*s.bufs));
        if (logs == NULL || s.bufs == NULL) {
            rv = LP2P_ENOMEM;
            goto out;
        }
    }
    for (i = 0; i < ae->n_entries && rv == 0; i++) {
        const struct raft_entry *e = &ae->entries[i];
        struct p2praft__hc_log *l = &logs[i];
        l->index = ae->prev_log_index + 1 + i;
        l->term = e->term;
        /* libraft keeps no AppendedAt: the zero time, as hashicorp's own
         * bootstrap entry has (Go uses it only for a metric, skipping zero). */
        p2praft__hc_time_zero(&l->appended_at);
        switch (e->type) {
        case RAFT_COMMAND:
            l->type = P2PRAFT__HC_LOG_COMMAND;
            if (e->buf.len > 0) {
                l->data.p = e->buf.base;
                l->data.len = e->buf.len;
            }
            break;
        case RAFT_BARRIER:
            l->type = is_noop_payload(&e->buf) ? P2PRAFT__HC_LOG_NOOP
                                               : P2PRAFT__HC_LOG_BARRIER;
            break;
        case RAFT_CHANGE: {
            struct raft_configuration conf;
            struct lp2p_buf *b = &s.bufs[s.n++];
            lp2p__buf_init(b);
            rv = raft_configuration_decode(&e->buf, &conf);
            if (rv != 0) {
                rv = raft_err(rv);
                break;
            }
            rv = encode_conf_into(m, &conf, b, NULL);
            raft_configuration_close(&conf);
            l->type = P2PRAFT__HC_LOG_CONFIGURATION;
            l->data.p = b->data;
            l->data.len = b->len;
            break;
        }
        default:
            rv = LP2P_EINVAL;
        }
    }
    if (rv == 0) {
        h->entries = logs;
        h->n_entries = ae->n_entries;
        rv = p2praft__hc_req_encode(&req, wire);
    }
out:
    lp2p__free(logs);
    scratch_free(&s);
    return rv;
}

static int encode_install_snapshot(const struct p2praft__hc_map *m,
                                   const struct raft_install_snapshot *is,
                                   struct lp2p_buf *wire)
{
    struct p2praft__hc_req req;
    struct p2praft__hc_install_snapshot *h = &req.install_snapshot;
    struct lp2p_buf conf, peers;
    int rv;
    memset(&req, 0, sizeof(req));
    lp2p__buf_init(&conf);
    lp2p__buf_init(&peers);
    rv = encode_conf_into(m, &is->conf, &conf, &peers);
    if (rv == 0) {
        req.type = P2PRAFT__HC_INSTALL_SNAPSHOT;
        local_header(m, &h->header);
        h->snapshot_version = 1;
        h->term = is->term;
        h->leader = str_bytes(m->local_id);
        h->last_log_index = is->last_index;
        h->last_log_term = is->last_term;
        h->peers.p = peers.data;
        h->peers.len = peers.len;
        h->configuration.p = conf.data;
        h->configuration.len = conf.len;
        h->configuration_index = is->conf_index;
        h->size = (int64_t)is->data.len;
        rv = p2praft__hc_req_encode(&req, wire);
    }
    lp2p__buf_free(&conf);
    lp2p__buf_free(&peers);
    return rv;
}

int p2praft__hc_encode_request(const struct p2praft__hc_map *m,
                               const struct raft_message *msg,
                               struct lp2p_buf *wire,
                               struct p2praft__hc_pending *pending)
{
    struct p2praft__hc_req req;
    size_t mark = wire->len;
    int rv;
    memset(&req, 0, sizeof(req));
    memset(pending, 0, sizeof(*pending));
    switch (msg->type) {
    case RAFT_APPEND_ENTRIES:
        pending->type = P2PRAFT__HC_APPEND_ENTRIES;
        pending->term = msg->append_entries.term;
        pending->prev_log_index = msg->append_entries.prev_log_index;
        pending->n_entries = msg->append_entries.n_entries;
        rv = encode_append_entries(m, &msg->append_entries, wire);
        break;
    case RAFT_REQUEST_VOTE: {
        const struct raft_request_vote *rv_ = &msg->request_vote;
        pending->term = rv_->term;
        if (rv_->pre_vote) {
            pending->type = req.type = P2PRAFT__HC_REQUEST_PRE_VOTE;
            local_header(m, &req.request_pre_vote.header);
            req.request_pre_vote.term = rv_->term;
            req.request_pre_vote.last_log_index = rv_->last_log_index;
            req.request_pre_vote.last_log_term = rv_->last_log_term;
        } else {
            pending->type = req.type = P2PRAFT__HC_REQUEST_VOTE;
            local_header(m, &req.request_vote.header);
            req.request_vote.term = rv_->term;
            req.request_vote.candidate = str_bytes(m->local_id);
            req.request_vote.last_log_index = rv_->last_log_index;
            req.request_vote.last_log_term = rv_->last_log_term;
            req.request_vote.leadership_transfer = rv_->disrupt_leader;
        }
        rv = p2praft__hc_req_encode(&req, wire);
        break;
    }
    case RAFT_INSTALL_SNAPSHOT:
        pending->type = P2PRAFT__HC_INSTALL_SNAPSHOT;
        pending->term = msg->install_snapshot.term;
        pending->last_index = msg->install_snapshot.last_index;
        rv = encode_install_snapshot(m, &msg->install_snapshot, wire);
        break;
    case RAFT_TIMEOUT_NOW:
        /* hashicorp's TimeoutNow is the header alone: the term and log
         * position libraft sends have no place on this wire. */
        pending->type = req.type = P2PRAFT__HC_TIMEOUT_NOW;
        pending->term = msg->timeout_now.term;
        local_header(m, &req.timeout_now.header);
        rv = p2praft__hc_req_encode(&req, wire);
        break;
    default:
        rv = LP2P_EINVAL;
        break;
    }
    if (rv != 0) {
        wire->len = mark;
        memset(pending, 0, sizeof(*pending));
    }
    return rv;
}

/* ---- responses to what we sent ---------------------------------------------- */

static void result_header(struct raft_message *out, enum raft_message_type t,
                          raft_id from_id, const char *from)
{
    memset(out, 0, sizeof(*out));
    out->type = t;
    out->server_id = from_id;
    out->server_address = from;
}

int p2praft__hc_decode_response(const struct p2praft__hc_pending *p,
                                const struct p2praft__hc_resp *resp,
                                raft_id from_id, const char *from,
                                struct raft_message *out, bool *deliver)
{
    bool error = resp->error.len > 0 || resp->nil;
    *deliver = false;
    if (resp->type != p->type) {
        return LP2P_EINVAL;
    }
    switch (p->type) {
    case P2PRAFT__HC_APPEND_ENTRIES: {
        const struct p2praft__hc_append_entries_resp *r = &resp->append_entries;
        struct raft_append_entries_result *res = &out->append_entries_result;
        if (error) {
            return 0; /* libraft resends on its next heartbeat */
        }
        result_header(out, RAFT_APPEND_ENTRIES_RESULT, from_id, from);
        res->version = AE_RESULT_VERSION;
        res->term = r->term;
        if (r->success) {
            /* libraft counts last_log_index as matched: it must be what
             * this request proved, not the follower's last index (which
             * may include a stale suffix). */
            res->rejected = 0;
            res->last_log_index = p->prev_log_index + p->n_entries;
        } else if (r->term > p->term) {
            /* Stale leader: libraft steps down on the term alone. */
            res->rejected = p->prev_log_index;
            res->last_log_index = 0;
        } else {
            if (p->prev_log_index == 0) {
                return 0; /* not a log mismatch: nothing libraft can use */
            }
            res->rejected = p->prev_log_index;
            /* libraft's convention: below the rejected index. */
            res->last_log_index = r->last_log < p->prev_log_index
                                      ? r->last_log
                                      : p->prev_log_index - 1;
        }
        *deliver = true;
        return 0;
    }
    case P2PRAFT__HC_INSTALL_SNAPSHOT: {
        const struct p2praft__hc_install_snapshot_resp *r =
            &resp->install_snapshot;
        struct raft_append_entries_result *res = &out->append_entries_result;
        if (error) {
            return 0;
        }
        /* libraft expects an AppendEntries result for a snapshot. */
        result_header(out, RAFT_APPEND_ENTRIES_RESULT, from_id, from);
        res->version = AE_RESULT_VERSION;
        res->term = r->term;
        if (r->success) {
            res->rejected = 0;
            res->last_log_index = p->last_index;
        } else {
            res->rejected = p->last_index;
            res->last_log_index = 0;
        }
        *deliver = true;
        return 0;
    }
    case P2PRAFT__HC_REQUEST_VOTE:
        if (error) {
            return 0;
        }
        result_header(out, RAFT_REQUEST_VOTE_RESULT, from_id, from);
        out->request_vote_result.version = RV_RESULT_VERSION;
        out->request_vote_result.term = resp->request_vote.term;
        out->request_vote_result.vote_granted = resp->request_vote.granted;
        out->request_vote_result.pre_vote = false;
        *deliver = true;
        return 0;
    case P2PRAFT__HC_REQUEST_PRE_VOTE: {
        struct raft_request_vote_result *res = &out->request_vote_result;
        if (resp->error.len == strlen(err_unexpected) &&
            memcmp(resp->error.p, err_unexpected, resp->error.len) == 0) {
            /* hashicorp 1.7's own rule: a peer that does not know the
             * command counts as granting the pre-vote. */
            result_header(out, RAFT_REQUEST_VOTE_RESULT, from_id, from);
            res->version = RV_RESULT_VERSION;
            res->term = p->term;
            res->vote_granted = true;
            res->pre_vote = true;
            *deliver = true;
            return 0;
        }
        if (error) {
            return 0;
        }
        result_header(out, RAFT_REQUEST_VOTE_RESULT, from_id, from);
        res->version = RV_RESULT_VERSION;
        res->term = resp->request_pre_vote.term;
        /* A grant in a later term than asked cannot be: libraft asserts it
         * away. Take it as the denial that carries the newer term. */
        res->vote_granted =
            resp->request_pre_vote.granted && resp->request_pre_vote.term <= p->term;
        res->pre_vote = true;
        *deliver = true;
        return 0;
    }
    case P2PRAFT__HC_TIMEOUT_NOW:
        return 0; /* libraft has no TimeoutNow result */
    default:
        return LP2P_EINVAL;
    }
}

/* ---- requests we receive ---------------------------------------------------- */

/* The libraft payload of one hashicorp entry, in `tmp` when it must be
 * built (configurations). */
static int entry_payload(const struct p2praft__hc_map *m,
                         const struct p2praft__hc_log *l,
                         enum raft_entry_type *type, struct raft_buffer *tmp,
                         const uint8_t **p, size_t *len)
{
    struct p2praft__hc_configuration hc;
    struct raft_configuration conf;
    int rv;
    if (l->extensions.p != NULL && l->extensions.len > 0) {
        return LP2P_EUNSUPPORTED; /* libraft entries cannot carry them */
    }
    switch (l->type) {
    case P2PRAFT__HC_LOG_COMMAND:
        *type = RAFT_COMMAND;
        *p = l->data.p;
        *len = l->data.len;
        return 0;
    case P2PRAFT__HC_LOG_NOOP:
    case P2PRAFT__HC_LOG_BARRIER:
        if (l->data.len > 0) {
            return LP2P_EUNSUPPORTED;
        }
        *type = RAFT_BARRIER;
        *p = l->type == P2PRAFT__HC_LOG_NOOP ? noop_payload : barrier_payload;
        *len = BARRIER_LEN;
        return 0;
    case P2PRAFT__HC_LOG_CONFIGURATION:
        *type = RAFT_CHANGE;
        rv = p2praft__hc_conf_decode(l->data.p != NULL ? l->data.p
                                                        : (const uint8_t *)"",
                                     l->data.len, &hc);
        if (rv != 0) {
            return rv == LP2P_ENOMEM ? rv : LP2P_EPROTO;
        }
        rv = p2praft__hc_conf_to_raft(m, &hc, &conf);
        p2praft__hc_conf_release(&hc);
        if (rv != 0) {
            return rv;
        }
        if (conf.n == 0) {
            raft_configuration_close(&conf);
            return LP2P_EPROTO;
        }
        rv = raft_configuration_encode(&conf, tmp);
        raft_configuration_close(&conf);
        if (rv != 0) {
            return raft_err(rv);
        }
        *p = tmp->base;
        *len = tmp->len;
        return 0;
    default:
        return LP2P_EUNSUPPORTED; /* LogAddPeer/RemovePeerDeprecated, unknown */
    }
}

/* One entry's payload while an AppendEntries is translated: borrowed from
 * the request, a static barrier payload, or an encoded configuration. */
struct payload {
    const uint8_t *p;
    size_t len;
    struct raft_buffer owned; /* raft_malloc'd (configurations) */
};

static int decode_append_entries(const struct p2praft__hc_map *m,
                                 const struct p2praft__hc_append_entries *h,
                                 struct raft_append_entries *ae)
{
    struct payload *pl = NULL;
    struct raft_entry *entries = NULL;
    uint8_t *batch = NULL;
    size_t i, total = 0, off = 0;
    raft_term last_term = h->prev_log_term;
    int rv = 0;

    if (h->term == 0 || (h->prev_log_entry == 0) != (h->prev_log_term == 0) ||
        h->prev_log_term > h->term || h->n_entries > (unsigned)-1) {
        return LP2P_EPROTO;
    }
    for (i = 0; i < h->n_entries; i++) {
        const struct p2praft__hc_log *l = &h->entries[i];
        /* libraft derives indexes from PrevLogEntry, and asserts that terms
         * are nonzero and never decrease along its log. */
        if (l->index != h->prev_log_entry + 1 + i || l->term == 0 ||
            l->term < last_term || l->term > h->term) {
            return LP2P_EPROTO;
        }
        last_term = l->term;
    }
    memset(ae, 0, sizeof(*ae));
    ae->term = h->term;
    ae->prev_log_index = h->prev_log_entry;
    ae->prev_log_term = h->prev_log_term;
    ae->leader_commit = h->leader_commit_index;
    if (h->n_entries == 0) {
        return 0;
    }
    /* libraft frees entries[0].batch and the array after delivery: one
     * batch for all payloads, both from raft_malloc(). */
    pl = lp2p__calloc(h->n_entries, sizeof(*pl));
    entries = raft_calloc(h->n_entries, sizeof(*entries));
    if (pl == NULL || entries == NULL) {
        rv = LP2P_ENOMEM;
        goto out;
    }
    for (i = 0; i < h->n_entries && rv == 0; i++) {
        rv = entry_payload(m, &h->entries[i], &entries[i].type, &pl[i].owned,
                           &pl[i].p, &pl[i].len);
        total += pl[i].len;
    }
    if (rv != 0) {
        goto out;
    }
    batch = raft_malloc(total > 0 ? total : 1);
    if (batch == NULL) {
        rv = LP2P_ENOMEM;
        goto out;
    }
    for (i = 0; i < h->n_entries; i++) {
        if (pl[i].len > 0) {
            memcpy(batch + off, pl[i].p, pl[i].len);
        }
        entries[i].term = h->entries[i].term;
        entries[i].buf.base = batch + off;
        entries[i].buf.len = pl[i].len;
        entries[i].batch = batch;
        off += pl[i].len;
    }
    ae->entries = entries;
    ae->n_entries = (unsigned)h->n_entries;
    entries = NULL;
    batch = NULL;
out:
    if (pl != NULL) {
        for (i = 0; i < h->n_entries; i++) {
            raft_free(pl[i].owned.base);
        }
    }
    lp2p__free(pl);
    raft_free(entries);
    raft_free(batch);
    return rv;
}

static int decode_install_snapshot(const struct p2praft__hc_map *m,
                                   const struct p2praft__hc_install_snapshot *h,
                                   const uint8_t *snapshot, size_t len,
                                   struct raft_install_snapshot *is)
{
    struct p2praft__hc_configuration hc;
    int rv;
    if (h->snapshot_version != 1) {
        return LP2P_EUNSUPPORTED; /* version 0 used Peers; none since 1.0 */
    }
    if (h->size < 0 || (uint64_t)h->size != len) {
        return LP2P_EINVAL;
    }
    if (h->term == 0 || h->last_log_index == 0 || h->last_log_term == 0 ||
        h->last_log_term > h->term || h->configuration_index == 0 ||
        h->configuration_index > h->last_log_index ||
        h->configuration.p == NULL) {
        return LP2P_EPROTO;
    }
    memset(is, 0, sizeof(*is));
    rv = p2praft__hc_conf_decode(h->configuration.p, h->configuration.len, &hc);
    if (rv != 0) {
        return rv == LP2P_ENOMEM ? rv : LP2P_EPROTO;
    }
    rv = p2praft__hc_conf_to_raft(m, &hc, &is->conf);
    p2praft__hc_conf_release(&hc);
    if (rv != 0) {
        return rv;
    }
    if (is->conf.n == 0) {
        raft_configuration_close(&is->conf);
        return LP2P_EPROTO;
    }
    is->data.base = raft_malloc(len > 0 ? len : 1);
    if (is->data.base == NULL) {
        raft_configuration_close(&is->conf);
        return LP2P_ENOMEM;
    }
    if (len > 0) {
        memcpy(is->data.base, snapshot, len);
    }
    is->data.len = len;
    is->term = h->term;
    is->last_index = h->last_log_index;
    is->last_term = h->last_log_term;
    is->conf_index = h->configuration_index;
    return 0;
}

int p2praft__hc_decode_request(const struct p2praft__hc_map *m,
                               const struct p2praft__hc_req *req,
                               const uint8_t *snapshot, size_t snapshot_len,
                               const struct p2praft__hc_local *local,
                               raft_id from_id, const char *from,
                               struct raft_message *out,
                               struct p2praft__hc_pending *pending)
{
    int rv;
    memset(out, 0, sizeof(*out));
    memset(pending, 0, sizeof(*pending));
    /* Every request type starts with its RPCHeader. */
    rv = check_header(&req->append_entries.header, from);
    if (rv != 0) {
        return rv;
    }
    out->server_id = from_id;
    out->server_address = from;
    pending->type = req->type;
    switch (req->type) {
    case P2PRAFT__HC_APPEND_ENTRIES: {
        const struct p2praft__hc_append_entries *h = &req->append_entries;
        if (!names_peer(&h->leader, from)) {
            return LP2P_EPEERID;
        }
        out->type = RAFT_APPEND_ENTRIES;
        rv = decode_append_entries(m, h, &out->append_entries);
        pending->term = h->term;
        pending->prev_log_index = h->prev_log_entry;
        pending->n_entries = (unsigned)h->n_entries;
        break;
    }
    case P2PRAFT__HC_REQUEST_VOTE: {
        const struct p2praft__hc_request_vote *h = &req->request_vote;
        if (!names_peer(&h->candidate, from)) {
            return LP2P_EPEERID;
        }
        if (h->term == 0) {
            return LP2P_EPROTO;
        }
        out->type = RAFT_REQUEST_VOTE;
        out->request_vote.version = RV_VERSION;
        out->request_vote.term = h->term;
        out->request_vote.candidate_id = from_id;
        out->request_vote.last_log_index = h->last_log_index;
        out->request_vote.last_log_term = h->last_log_term;
        out->request_vote.disrupt_leader = h->leadership_transfer;
        out->request_vote.pre_vote = false;
        pending->term = h->term;
        break;
    }
    case P2PRAFT__HC_REQUEST_PRE_VOTE: {
        const struct p2praft__hc_request_pre_vote *h = &req->request_pre_vote;
        if (h->term == 0) {
            return LP2P_EPROTO;
        }
        out->type = RAFT_REQUEST_VOTE;
        out->request_vote.version = RV_VERSION;
        out->request_vote.term = h->term;
        out->request_vote.candidate_id = from_id;
        out->request_vote.last_log_index = h->last_log_index;
        out->request_vote.last_log_term = h->last_log_term;
        out->request_vote.disrupt_leader = false;
        out->request_vote.pre_vote = true;
        pending->term = h->term;
        break;
    }
    case P2PRAFT__HC_INSTALL_SNAPSHOT: {
        const struct p2praft__hc_install_snapshot *h = &req->install_snapshot;
        if (!names_peer(&h->leader, from)) {
            return LP2P_EPEERID;
        }
        out->type = RAFT_INSTALL_SNAPSHOT;
        rv = decode_install_snapshot(m, h, snapshot, snapshot_len,
                                     &out->install_snapshot);
        pending->term = h->term;
        pending->last_index = h->last_log_index;
        break;
    }
    case P2PRAFT__HC_TIMEOUT_NOW:
        if (local == NULL) {
            rv = LP2P_EINVAL;
            break;
        }
        /* hashicorp's TimeoutNow means "start an election now"; libraft's
         * checks that term and log position are the receiver's own. They
         * are: this node's, from the raft I/O. */
        out->type = RAFT_TIMEOUT_NOW;
        out->timeout_now.term = local->current_term;
        out->timeout_now.last_log_index = local->last_index;
        out->timeout_now.last_log_term = local->last_term;
        pending->term = local->current_term;
        break;
    default:
        rv = LP2P_EUNSUPPORTED;
        break;
    }
    if (rv != 0) {
        memset(out, 0, sizeof(*out));
        memset(pending, 0, sizeof(*pending));
    }
    return rv;
}

void p2praft__hc_message_release(struct raft_message *msg)
{
    switch (msg->type) {
    case RAFT_APPEND_ENTRIES:
        if (msg->append_entries.n_entries > 0) {
            raft_free(msg->append_entries.entries[0].batch);
            raft_free(msg->append_entries.entries);
        }
        break;
    case RAFT_INSTALL_SNAPSHOT:
        raft_configuration_close(&msg->install_snapshot.conf);
        raft_free(msg->install_snapshot.data.base);
        break;
    default:
        break;
    }
    memset(msg, 0, sizeof(*msg));
}

/* ---- replies to what we received ------------------------------------------- */

bool p2praft__hc_reply_matches(const struct p2praft__hc_pending *q,
                               const struct raft_message *result)
{
    switch (q->type) {
    case P2PRAFT__HC_APPEND_ENTRIES: {
        const struct raft_append_entries_result *r =
            &result->append_entries_result;
        if (result->type != RAFT_APPEND_ENTRIES_RESULT) {
            return false;
        }
        if (r->term > q->term) {
            return r->rejected == q->prev_log_index;
        }
        if (r->rejected == 0) {
            return q->prev_log_index + q->n_entries <= r->last_log_index;
        }
        return r->rejected == q->prev_log_index;
    }
    case P2PRAFT__HC_INSTALL_SNAPSHOT: {
        const struct raft_append_entries_result *r =
            &result->append_entries_result;
        if (result->type != RAFT_APPEND_ENTRIES_RESULT) {
            return false;
        }
        return r->term > q->term ||
               (r->rejected == 0 && r->last_log_index >= q->last_index) ||
               r->rejected == q->last_index;
    }
    case P2PRAFT__HC_REQUEST_VOTE:
    case P2PRAFT__HC_REQUEST_PRE_VOTE: {
        const struct raft_request_vote_result *r = &result->request_vote_result;
        bool pre = q->type == P2PRAFT__HC_REQUEST_PRE_VOTE;
        if (result->type != RAFT_REQUEST_VOTE_RESULT || r->pre_vote != pre) {
            return false;
        }
        /* libraft echoes a pre-vote's term; a vote's is the voter's own,
         * which is lower when it refuses because it has a leader. */
        return pre ? r->term == q->term : true;
    }
    default:
        return false;
    }
}

int p2praft__hc_encode_reply(const struct p2praft__hc_map *m,
                             const struct p2praft__hc_pending *q,
                             const struct raft_message *result,
                             const struct p2praft__hc_local *local,
                             struct lp2p_buf *wire)
{
    struct p2praft__hc_resp resp;
    size_t mark = wire->len;
    int rv;
    if (!p2praft__hc_reply_matches(q, result)) {
        return LP2P_EINVAL;
    }
    memset(&resp, 0, sizeof(resp));
    resp.type = q->type;
    resp.error.p = (const uint8_t *)"";
    switch (q->type) {
    case P2PRAFT__HC_APPEND_ENTRIES: {
        const struct raft_append_entries_result *r =
            &result->append_entries_result;
        struct p2praft__hc_append_entries_resp *h = &resp.append_entries;
        bool stale = r->term > q->term;
        local_header(m, &h->header);
        h->term = r->term;
        h->success = !stale && r->rejected == 0;
        if (stale) {
            /* libraft leaves last_log_index unset here; hashicorp sends
             * its last index. */
            h->last_log = local != NULL ? local->last_index : 0;
        } else {
            h->last_log = r->last_log_index;
        }
        /* hashicorp sets NoRetryBackoff on a log mismatch only. */
        h->no_retry_backoff = !stale && r->rejected != 0;
        break;
    }
    case P2PRAFT__HC_INSTALL_SNAPSHOT: {
        const struct raft_append_entries_result *r =
            &result->append_entries_result;
        /* hashicorp leaves this header empty. */
        resp.install_snapshot.term = r->term;
        resp.install_snapshot.success =
            r->term <= q->term && r->rejected == 0 &&
            r->last_log_index >= q->last_index;
        break;
    }
    case P2PRAFT__HC_REQUEST_VOTE:
        local_header(m, &resp.request_vote.header);
        resp.request_vote.term = result->request_vote_result.term;
        resp.request_vote.granted = result->request_vote_result.vote_granted;
        break;
    case P2PRAFT__HC_REQUEST_PRE_VOTE:
        local_header(m, &resp.request_pre_vote.header);
        resp.request_pre_vote.term = result->request_vote_result.term;
        resp.request_pre_vote.granted = result->request_vote_result.vote_granted;
        break;
    default:
        return LP2P_EINVAL;
    }
    rv = p2praft__hc_resp_encode(&resp, wire);
    if (rv != 0) {
        wire->len = mark;
    }
    return rv;
}

int p2praft__hc_encode_timeout_now_reply(struct lp2p_buf *wire)
{
    struct p2praft__hc_resp resp;
    size_t mark = wire->len;
    int rv;
    memset(&resp, 0, sizeof(resp));
    resp.type = P2PRAFT__HC_TIMEOUT_NOW;
    resp.error.p = (const uint8_t *)"";
    rv = p2praft__hc_resp_encode(&resp, wire);
    if (rv != 0) {
        wire->len = mark;
    }
    return rv;
}

int p2praft__hc_encode_error_reply(uint8_t type, int code,
                                   struct lp2p_buf *wire)
{
    struct p2praft__hc_resp resp;
    size_t mark = wire->len;
    int rv;
    memset(&resp, 0, sizeof(resp));
    resp.type = type;
    resp.nil = true;
    resp.error = str_bytes(code == LP2P_EUNSUPPORTED ? err_protocol
                                                     : err_unexpected);
    rv = p2praft__hc_resp_encode(&resp, wire);
    if (rv != 0) {
        wire->len = mark;
    }
    return rv;
}
