/* The raft message codec (format and contract: rpc.h). */
#include <string.h>

#include "raft/rpc.h"
#include "util/heap.h"
#include "p2praft.h"

enum { S_PRE = 0, S_HDR, S_PAYLOAD, S_ERR };

#define ADDR_MAX 1024u /* longest server address in a configuration */

/* Fixed header sizes (type and version bytes included, prefix not). */
#define H_AE 38u  /* 2 + 4*8 + 4, then 13 per entry */
#define H_AER 30u /* 2 + 3*8 + 2*2 */
#define H_RV 27u  /* 2 + 3*8 + 1 */
#define H_RVR 15u /* 2 + 8 + 1 + 2*2 */
#define H_IS 46u  /* 2 + 5*8 + 4, then 11 + len per server */
#define H_TN 26u  /* 2 + 3*8 */
#define AE_ENTRY 13u
#define IS_SERVER 11u

/* ---- big-endian helpers ---------------------------------------------- */

static uint8_t *put8(uint8_t *p, uint8_t v)
{
    *p = v;
    return p + 1;
}

static uint8_t *put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
    return p + 2;
}

static uint8_t *put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
    return p + 4;
}

static uint8_t *put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)(v >> 32));
    return put32(p + 4, (uint32_t)v);
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) << 32 | get32(p + 4);
}

/* ---- encoding --------------------------------------------------------- */

int p2praft__rpc_header_len(const struct raft_message *m, size_t *len)
{
    size_t h;
    unsigned i;
    switch (m->type) {
    case RAFT_APPEND_ENTRIES:
        if (m->append_entries.n_entries > P2PRAFT__RPC_ENTRIES_MAX ||
            (m->append_entries.n_entries > 0 &&
             m->append_entries.entries == NULL)) {
            return LP2P_EINVAL;
        }
        for (i = 0; i < m->append_entries.n_entries; i++) {
            if (m->append_entries.entries[i].buf.len > UINT32_MAX) {
                return LP2P_EINVAL;
            }
        }
        h = H_AE + (size_t)AE_ENTRY * m->append_entries.n_entries;
        break;
    case RAFT_APPEND_ENTRIES_RESULT:
        h = H_AER;
        break;
    case RAFT_REQUEST_VOTE:
        h = H_RV;
        break;
    case RAFT_REQUEST_VOTE_RESULT:
        h = H_RVR;
        break;
    case RAFT_INSTALL_SNAPSHOT: {
        const struct raft_configuration *c = &m->install_snapshot.conf;
        if (c->n > P2PRAFT__RPC_SERVERS_MAX) {
            return LP2P_EINVAL;
        }
        h = H_IS;
        for (i = 0; i < c->n; i++) {
            size_t alen;
            if (c->servers[i].address == NULL) {
                return LP2P_EINVAL;
            }
            alen = strlen(c->servers[i].address);
            if (alen > ADDR_MAX) {
                return LP2P_EINVAL;
            }
            h += IS_SERVER + alen;
        }
        break;
    }
    case RAFT_TIMEOUT_NOW:
        h = H_TN;
        break;
    default:
        return LP2P_EINVAL;
    }
    if (h > P2PRAFT__RPC_HEADER_MAX) {
        return LP2P_ETOOBIG;
    }
    *len = 4 + h;
    return 0;
}

uint64_t p2praft__rpc_payload_len(const struct raft_message *m)
{
    uint64_t n = 0;
    unsigned i;
    if (m->type == RAFT_APPEND_ENTRIES) {
        for (i = 0; i < m->append_entries.n_entries; i++) {
            n += m->append_entries.entries[i].buf.len;
        }
    } else if (m->type == RAFT_INSTALL_SNAPSHOT) {
        n = m->install_snapshot.data.len;
    }
    return n;
}

void p2praft__rpc_header_write(const struct raft_message *m, uint8_t *out)
{
    uint8_t *p = out + 4;
    unsigned i;
    p = put8(p, (uint8_t)m->type);
    switch (m->type) {
    case RAFT_APPEND_ENTRIES: {
        const struct raft_append_entries *a = &m->append_entries;
        p = put8(p, a->version);
        p = put64(p, a->term);
        p = put64(p, a->prev_log_index);
        p = put64(p, a->prev_log_term);
        p = put64(p, a->leader_commit);
        p = put32(p, a->n_entries);
        for (i = 0; i < a->n_entries; i++) {
            p = put64(p, a->entries[i].term);
            p = put8(p, (uint8_t)a->entries[i].type);
            p = put32(p, (uint32_t)a->entries[i].buf.len);
        }
        break;
    }
    case RAFT_APPEND_ENTRIES_RESULT: {
        const struct raft_append_entries_result *a = &m->append_entries_result;
        p = put8(p, a->version);
        p = put64(p, a->term);
        p = put64(p, a->rejected);
        p = put64(p, a->last_log_index);
        p = put16(p, a->features);
        p = put16(p, a->capacity);
        break;
    }
    case RAFT_REQUEST_VOTE: {
        const struct raft_request_vote *a = &m->request_vote;
        p = put8(p, a->version);
        p = put64(p, a->term);
        p = put64(p, a->last_log_index);
        p = put64(p, a->last_log_term);
        p = put8(p, (uint8_t)((a->disrupt_leader ? 1 : 0) |
                              (a->pre_vote ? 2 : 0)));
        break;
    }
    case RAFT_REQUEST_VOTE_RESULT: {
        const struct raft_request_vote_result *a = &m->request_vote_result;
        p = put8(p, a->version);
        p = put64(p, a->term);
        p = put8(p, (uint8_t)((a->vote_granted ? 1 : 0) |
                              (a->pre_vote ? 2 : 0)));
        p = put16(p, a->features);
        p = put16(p, a->capacity);
        break;
    }
    case RAFT_INSTALL_SNAPSHOT: {
        const struct raft_install_snapshot *a = &m->install_snapshot;
        p = put8(p, a->version);
        p = put64(p, a->term);
        p = put64(p, a->last_index);
        p = put64(p, a->last_term);
        p = put64(p, a->conf_index);
        p = put64(p, a->data.len);
        p = put32(p, a->conf.n);
        for (i = 0; i < a->conf.n; i++) {
            size_t alen = strlen(a->conf.servers[i].address);
            p = put64(p, a->conf.servers[i].id);
            p = put8(p, (uint8_t)a->conf.servers[i].role);
            p = put16(p, (uint16_t)alen);
            memcpy(p, a->conf.servers[i].address, alen);
            p += alen;
        }
        break;
    }
    case RAFT_TIMEOUT_NOW: {
        const struct raft_timeout_now *a = &m->timeout_now;
        p = put8(p, a->version);
        p = put64(p, a->term);
        p = put64(p, a->last_log_index);
        p = put64(p, a->last_log_term);
        break;
    }
    default:
        break;
    }
    put32(out, (uint32_t)(p - out - 4));
}

void p2praft__rpc_fix_stale_reject(struct raft_message *m, raft_term ae_term,
                                   raft_index last_index)
{
    struct raft_append_entries_result *r = &m->append_entries_result;
    if (m->type != RAFT_APPEND_ENTRIES_RESULT || r->rejected == 0 ||
        r->term <= ae_term) {
        return;
    }
    r->last_log_index = last_index < r->rejected ? last_index
                                                 : r->rejected - 1;
}

/* ---- decoding --------------------------------------------------------- */

void p2praft__rpc_message_release(struct raft_message *m)
{
    if (m->type == RAFT_APPEND_ENTRIES) {
        if (m->append_entries.entries != NULL) {
            if (m->append_entries.n_entries > 0) {
                raft_free(m->append_entries.entries[0].batch);
            }
            raft_free(m->append_entries.entries);
        }
        m->append_entries.entries = NULL;
        m->append_entries.n_entries = 0;
    } else if (m->type == RAFT_INSTALL_SNAPSHOT) {
        raft_configuration_close(&m->install_snapshot.conf);
        raft_free(m->install_snapshot.data.base);
        m->install_snapshot.data.base = NULL;
        m->install_snapshot.data.len = 0;
    }
}

void p2praft__rpc_dec_init(struct p2praft__rpc_dec *d, uint64_t max_payload)
{
    memset(d, 0, sizeof(*d));
    d->max_payload = max_payload;
    d->state = S_PRE;
}

void p2praft__rpc_dec_close(struct p2praft__rpc_dec *d)
{
    lp2p__free(d->hdr);
    d->hdr = NULL;
    if (d->msg.type != 0) {
        p2praft__rpc_message_release(&d->msg);
    }
    memset(&d->msg, 0, sizeof(d->msg));
    d->payload = NULL;
    d->state = S_ERR;
}

int p2praft__rpc_dec_idle(const struct p2praft__rpc_dec *d)
{
    return d->state == S_PRE && d->pre_got == 0;
}

static int valid_entry_type(unsigned t)
{
    return t == RAFT_COMMAND || t == RAFT_BARRIER || t == RAFT_CHANGE;
}

static int parse_append_entries(struct p2praft__rpc_dec *d, const uint8_t *h,
                                size_t len)
{
    struct raft_append_entries *a = &d->msg.append_entries;
    uint64_t total = 0;
    uint32_t n, i;
    uint8_t *batch;
    size_t off = 0;
    if (len < H_AE) {
        return LP2P_EMALFORMED;
    }
    a->term = get64(h + 2);
    a->prev_log_index = get64(h + 10);
    a->prev_log_term = get64(h + 18);
    a->leader_commit = get64(h + 26);
    n = get32(h + 34);
    if (n > P2PRAFT__RPC_ENTRIES_MAX ||
        len != H_AE + (size_t)AE_ENTRY * n) {
        return LP2P_EMALFORMED;
    }
    /* libraft asserts both: the first entry has no predecessor term. */
    if ((a->prev_log_index == 0) != (a->prev_log_term == 0)) {
        return LP2P_EMALFORMED;
    }
    for (i = 0; i < n; i++) {
        const uint8_t *e = h + H_AE + (size_t)AE_ENTRY * i;
        if (get64(e) == 0 || !valid_entry_type(e[8])) {
            return LP2P_EMALFORMED;
        }
        total += get32(e + 9);
    }
    if (total > d->max_payload) {
        return LP2P_ETOOBIG;
    }
    if (n == 0) {
        return 0;
    }
    a->entries = raft_calloc(n, sizeof(*a->entries));
    if (a->entries == NULL) {
        return LP2P_ENOMEM;
    }
    /* One batch for every entry, never NULL: libraft frees entries[0].batch
     * once it has copied the entries it keeps. */
    batch = raft_malloc(total > 0 ? (size_t)total : 1);
    if (batch == NULL) {
        raft_free(a->entries);
        a->entries = NULL;
        return LP2P_ENOMEM;
    }
    a->n_entries = n;
    for (i = 0; i < n; i++) {
        const uint8_t *e = h + H_AE + (size_t)AE_ENTRY * i;
        a->entries[i].term = get64(e);
        a->entries[i].type = (enum raft_entry_type)e[8];
        a->entries[i].buf.len = get32(e + 9);
        a->entries[i].buf.base = batch + off;
        a->entries[i].batch = batch;
        off += a->entries[i].buf.len;
    }
    d->payload = batch;
    d->payload_len = total;
    return 0;
}

static int parse_install_snapshot(struct p2praft__rpc_dec *d,
                                  const uint8_t *h, size_t len)
{
    struct raft_install_snapshot *a = &d->msg.install_snapshot;
    char addr[ADDR_MAX + 1];
    uint64_t data_len;
    uint32_t n, i;
    size_t pos = H_IS;
    int rv;
    if (len < H_IS) {
        return LP2P_EMALFORMED;
    }
    a->term = get64(h + 2);
    a->last_index = get64(h + 10);
    a->last_term = get64(h + 18);
    a->conf_index = get64(h + 26);
    data_len = get64(h + 34);
    n = get32(h + 42);
    raft_configuration_init(&a->conf);
    if (a->last_index == 0 || a->last_term == 0 || n == 0 ||
        n > P2PRAFT__RPC_SERVERS_MAX) {
        return LP2P_EMALFORMED;
    }
    if (data_len > d->max_payload) {
        return LP2P_ETOOBIG;
    }
    for (i = 0; i < n; i++) {
        uint64_t id;
        unsigned role;
        size_t alen;
        if (len - pos < IS_SERVER) {
            return LP2P_EMALFORMED;
        }
        id = get64(h + pos);
        role = h[pos + 8];
        alen = get16(h + pos + 9);
        pos += IS_SERVER;
        if (alen == 0 || alen > ADDR_MAX || len - pos < alen ||
            memchr(h + pos, '\0', alen) != NULL) {
            return LP2P_EMALFORMED;
        }
        memcpy(addr, h + pos, alen);
        addr[alen] = '\0';
        pos += alen;
        /* Checks the ID (non-zero, unique), the address (unique) and the
         * role for us. */
        rv = raft_configuration_add(&a->conf, id, addr, (int)role);
        if (rv != 0) {
            return rv == RAFT_NOMEM ? LP2P_ENOMEM : LP2P_EMALFORMED;
        }
    }
    if (pos != len) {
        return LP2P_EMALFORMED;
    }
    if (data_len > 0) {
        a->data.base = raft_malloc((size_t)data_len);
        if (a->data.base == NULL) {
            return LP2P_ENOMEM;
        }
        a->data.len = (size_t)data_len;
    }
    d->payload = a->data.base;
    d->payload_len = data_len;
    return 0;
}

/* Parse a whole header (h, len bytes); sets up the payload destination. */
static int parse_header(struct p2praft__rpc_dec *d, const uint8_t *h,
                        size_t len)
{
    struct raft_message *m = &d->msg;
    unsigned flags;
    memset(m, 0, sizeof(*m));
    d->payload = NULL;
    d->payload_len = 0;
    d->payload_got = 0;
    switch (h[0]) {
    case RAFT_APPEND_ENTRIES:
        m->type = RAFT_APPEND_ENTRIES;
        m->append_entries.version = h[1];
        return parse_append_entries(d, h, len);
    case RAFT_APPEND_ENTRIES_RESULT:
        if (len != H_AER) {
            return LP2P_EMALFORMED;
        }
        m->type = RAFT_APPEND_ENTRIES_RESULT;
        m->append_entries_result.version = h[1];
        m->append_entries_result.term = get64(h + 2);
        m->append_entries_result.rejected = get64(h + 10);
        m->append_entries_result.last_log_index = get64(h + 18);
        m->append_entries_result.features = get16(h + 26);
        m->append_entries_result.capacity = get16(h + 28);
        return 0;
    case RAFT_REQUEST_VOTE:
        if (len != H_RV || (h[H_RV - 1] & ~3u) != 0) {
            return LP2P_EMALFORMED;
        }
        flags = h[H_RV - 1];
        m->type = RAFT_REQUEST_VOTE;
        m->request_vote.version = h[1];
        m->request_vote.term = get64(h + 2);
        m->request_vote.last_log_index = get64(h + 10);
        m->request_vote.last_log_term = get64(h + 18);
        m->request_vote.disrupt_leader = (flags & 1) != 0;
        m->request_vote.pre_vote = (flags & 2) != 0;
        return 0;
    case RAFT_REQUEST_VOTE_RESULT:
        if (len != H_RVR || (h[10] & ~3u) != 0) {
            return LP2P_EMALFORMED;
        }
        m->type = RAFT_REQUEST_VOTE_RESULT;
        m->request_vote_result.version = h[1];
        m->request_vote_result.term = get64(h + 2);
        m->request_vote_result.vote_granted = (h[10] & 1) != 0;
        m->request_vote_result.pre_vote = (h[10] & 2) != 0;
        m->request_vote_result.features = get16(h + 11);
        m->request_vote_result.capacity = get16(h + 13);
        return 0;
    case RAFT_INSTALL_SNAPSHOT:
        m->type = RAFT_INSTALL_SNAPSHOT;
        m->install_snapshot.version = h[1];
        return parse_install_snapshot(d, h, len);
    case RAFT_TIMEOUT_NOW:
        if (len != H_TN) {
            return LP2P_EMALFORMED;
        }
        m->type = RAFT_TIMEOUT_NOW;
        m->timeout_now.version = h[1];
        m->timeout_now.term = get64(h + 2);
        m->timeout_now.last_log_index = get64(h + 10);
        m->timeout_now.last_log_term = get64(h + 18);
        return 0;
    default:
        return LP2P_EMALFORMED;
    }
}

static int fail(struct p2praft__rpc_dec *d, int rv)
{
    p2praft__rpc_dec_close(d);
    return rv;
}

int p2praft__rpc_dec_feed(struct p2praft__rpc_dec *d, const uint8_t *p,
                          size_t n, size_t *consumed, struct raft_message *out)
{
    size_t i = 0, k;
    int rv;
    *consumed = 0;
    for (;;) {
        switch (d->state) {
        case S_PRE:
            k = 4 - d->pre_got;
            if (k > n - i) {
                k = n - i;
            }
            memcpy(d->pre + d->pre_got, p + i, k);
            d->pre_got += k;
            i += k;
            *consumed = i;
            if (d->pre_got < 4) {
                return 0;
            }
            d->pre_got = 0;
            d->hlen = get32(d->pre);
            if (d->hlen < 2) {
                return fail(d, LP2P_EMALFORMED);
            }
            if (d->hlen > P2PRAFT__RPC_HEADER_MAX) {
                return fail(d, LP2P_ETOOBIG);
            }
            d->hdr_got = 0;
            d->state = S_HDR;
            break;
        case S_HDR:
            if (d->hdr == NULL && n - i >= d->hlen) {
                /* The whole header is at hand: parse it in place. */
                rv = parse_header(d, p + i, d->hlen);
                i += d->hlen;
                *consumed = i;
            } else {
                if (d->hdr == NULL) {
                    d->hdr = lp2p__malloc(d->hlen);
                    if (d->hdr == NULL) {
                        return fail(d, LP2P_ENOMEM);
                    }
                }
                k = d->hlen - d->hdr_got;
                if (k > n - i) {
                    k = n - i;
                }
                memcpy(d->hdr + d->hdr_got, p + i, k);
                d->hdr_got += k;
                i += k;
                *consumed = i;
                if (d->hdr_got < d->hlen) {
                    return 0;
                }
                rv = parse_header(d, d->hdr, d->hlen);
                lp2p__free(d->hdr);
                d->hdr = NULL;
            }
            if (rv != 0) {
                return fail(d, rv);
            }
            d->state = S_PAYLOAD;
            break;
        case S_PAYLOAD:
            k = n - i;
            if (k > d->payload_len - d->payload_got) {
                k = (size_t)(d->payload_len - d->payload_got);
            }
            if (k > 0) {
                memcpy(d->payload + d->payload_got, p + i, k);
                d->payload_got += k;
                i += k;
                *consumed = i;
            }
            if (d->payload_got < d->payload_len) {
                return 0;
            }
            *out = d->msg;
            memset(&d->msg, 0, sizeof(d->msg));
            d->payload = NULL;
            d->payload_len = d->payload_got = 0;
            d->state = S_PRE;
            return 1;
        default:
            return LP2P_EMALFORMED;
        }
    }
}
