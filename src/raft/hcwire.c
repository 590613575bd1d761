/*
 * hashicorp/raft NetworkTransport wire codec (see hcwire.h).
 *
 * Every struct is described once by a table of its fields in the order
 * go-msgpack v2 writes them (sorted by name, RPCHeader's fields merged in);
 * the same table drives encoding (that order, every field, no omitempty)
 * and decoding (any order, unknown keys skipped, duplicates refused).
 *
 * Framing first, decoding second: lp2p__mp_value_len() finds where the
 * msgpack value ends in the bytes received so far (LP2P_EAGAIN until it is
 * all there), then the table decoder runs over exactly that slice. So a
 * message is decoded once, and a cut message is never half-decoded.
 */
#include "raft/hcwire.h"

#include <stddef.h>
#include <string.h>

#include "lp2p.h"
#include "util/heap.h"
#include "util/mpack.h"

enum fkind {
    F_U64,     /* uint64_t */
    F_I64,     /* int64_t */
    F_BOOL,    /* bool */
    F_BYTES,   /* struct p2praft__hc_bytes */
    F_TIME,    /* struct p2praft__hc_time */
    F_LOGS,    /* struct p2praft__hc_log *, size_t count, bool nil */
    F_SERVERS  /* struct p2praft__hc_server *, size_t count, bool nil */
};

struct field {
    const char *name;
    uint8_t kind;
    size_t off;
    size_t off_n;   /* F_LOGS, F_SERVERS: the count */
    size_t off_nil; /* F_LOGS, F_SERVERS: the nil flag */
};

struct sdesc {
    const struct field *f;
    size_t n;
};

#define FIELD(T, name, kind, member) {name, kind, offsetof(T, member), 0, 0}
#define HEADER_ADDR(T) FIELD(T, "Addr", F_BYTES, header.addr)
#define HEADER_ID(T) FIELD(T, "ID", F_BYTES, header.id)
#define HEADER_PV(T) FIELD(T, "ProtocolVersion", F_I64, header.protocol_version)
#define DESC(table) {table, sizeof(table) / sizeof(table[0])}

#define T struct p2praft__hc_append_entries
static const struct field f_append_entries[] = {
    HEADER_ADDR(T),
    {"Entries", F_LOGS, offsetof(T, entries), offsetof(T, n_entries),
     offsetof(T, entries_nil)},
    HEADER_ID(T),
    FIELD(T, "Leader", F_BYTES, leader),
    FIELD(T, "LeaderCommitIndex", F_U64, leader_commit_index),
    FIELD(T, "PrevLogEntry", F_U64, prev_log_entry),
    FIELD(T, "PrevLogTerm", F_U64, prev_log_term),
    HEADER_PV(T),
    FIELD(T, "Term", F_U64, term),
};
#undef T

#define T struct p2praft__hc_append_entries_resp
static const struct field f_append_entries_resp[] = {
    HEADER_ADDR(T),
    HEADER_ID(T),
    FIELD(T, "LastLog", F_U64, last_log),
    FIELD(T, "NoRetryBackoff", F_BOOL, no_retry_backoff),
    HEADER_PV(T),
    FIELD(T, "Success", F_BOOL, success),
    FIELD(T, "Term", F_U64, term),
};
#undef T

#define T struct p2praft__hc_request_vote
static const struct field f_request_vote[] = {
    HEADER_ADDR(T),
    FIELD(T, "Candidate", F_BYTES, candidate),
    HEADER_ID(T),
    FIELD(T, "LastLogIndex", F_U64, last_log_index),
    FIELD(T, "LastLogTerm", F_U64, last_log_term),
    FIELD(T, "LeadershipTransfer", F_BOOL, leadership_transfer),
    HEADER_PV(T),
    FIELD(T, "Term", F_U64, term),
};
#undef T

#define T struct p2praft__hc_request_vote_resp
static const struct field f_request_vote_resp[] = {
    HEADER_ADDR(T),
    FIELD(T, "Granted", F_BOOL, granted),
    HEADER_ID(T),
    FIELD(T, "Peers", F_BYTES, peers),
    HEADER_PV(T),
    FIELD(T, "Term", F_U64, term),
};
#undef T

#define T struct p2praft__hc_request_pre_vote
static const struct field f_request_pre_vote[] = {
    HEADER_ADDR(T),
    HEADER_ID(T),
    FIELD(T, "LastLogIndex", F_U64, last_log_index),
    FIELD(T, "LastLogTerm", F_U64, last_log_term),
    HEADER_PV(T),
    FIELD(T, "Term", F_U64, term),
};
#undef T

#define T struct p2praft__hc_request_pre_vote_resp
static const struct field f_request_pre_vote_resp[] = {
    HEADER_ADDR(T),
    FIELD(T, "Granted", F_BOOL, granted),
    HEADER_ID(T),
    HEADER_PV(T),
    FIELD(T, "Term", F_U64, term),
};
#undef T

#define T struct p2praft__hc_install_snapshot
static const struct field f_install_snapshot[] = {
    HEADER_ADDR(T),
    FIELD(T, "Configuration", F_BYTES, configuration),
    FIELD(T, "ConfigurationIndex", F_U64, configuration_index),
    HEADER_ID(T),
    FIELD(T, "LastLogIndex", F_U64, last_log_index),
    FIELD(T, "LastLogTerm", F_U64, last_log_term),
    FIELD(T, "Leader", F_BYTES, leader),
    FIELD(T, "Peers", F_BYTES, peers),
    HEADER_PV(T),
    FIELD(T, "Size", F_I64, size),
    FIELD(T, "SnapshotVersion", F_I64, snapshot_version),
    FIELD(T, "Term", F_U64, term),
};
#undef T

#define T struct p2praft__hc_install_snapshot_resp
static const struct field f_install_snapshot_resp[] = {
    HEADER_ADDR(T),
    HEADER_ID(T),
    HEADER_PV(T),
    FIELD(T, "Success", F_BOOL, success),
    FIELD(T, "Term", F_U64, term),
};
#undef T

#define T struct p2praft__hc_timeout_now
static const struct field f_timeout_now[] = {
    HEADER_ADDR(T),
    HEADER_ID(T),
    HEADER_PV(T),
};
#undef T

#define T struct p2praft__hc_timeout_now_resp
static const struct field f_timeout_now_resp[] = {
    HEADER_ADDR(T),
    HEADER_ID(T),
    HEADER_PV(T),
};
#undef T

#define T struct p2praft__hc_log
static const struct field f_log[] = {
    FIELD(T, "AppendedAt", F_TIME, appended_at),
    FIELD(T, "Data", F_BYTES, data),
    FIELD(T, "Extensions", F_BYTES, extensions),
    FIELD(T, "Index", F_U64, index),
    FIELD(T, "Term", F_U64, term),
    FIELD(T, "Type", F_U64, type),
};
#undef T

#define T struct p2praft__hc_configuration
static const struct field f_configuration[] = {
    {"Servers", F_SERVERS, offsetof(T, servers), offsetof(T, n),
     offsetof(T, servers_nil)},
};
#undef T

#define T struct p2praft__hc_server
static const struct field f_server[] = {
    FIELD(T, "Address", F_BYTES, address),
    FIELD(T, "ID", F_BYTES, id),
    FIELD(T, "Suffrage", F_I64, suffrage),
};
#undef T

static const struct sdesc d_log = DESC(f_log);
static const struct sdesc d_server = DESC(f_server);
static const struct sdesc d_configuration = DESC(f_configuration);

/* Request and response descriptions, by rpc type. */
static const struct sdesc d_req[] = {
    DESC(f_append_entries), DESC(f_request_vote), DESC(f_install_snapshot),
    DESC(f_timeout_now), DESC(f_request_pre_vote)};
static const struct sdesc d_resp[] = {
    DESC(f_append_entries_resp), DESC(f_request_vote_resp),
    DESC(f_install_snapshot_resp), DESC(f_timeout_now_resp),
    DESC(f_request_pre_vote_resp)};

#define N_RPC (sizeof(d_req) / sizeof(d_req[0]))

/* ---- time ----------------------------------------------------------------- */

void p2praft__hc_time_zero(struct p2praft__hc_time *t)
{
    memset(t, 0, sizeof(*t));
    t->form = P2PRAFT__HC_TIME_RAW;
    t->len = 15;
    t->b[0] = 1;    /* timeBinaryVersionV1 */
    t->b[13] = 0xff; /* zone offset -1: UTC */
    t->b[14] = 0xff;
}

bool p2praft__hc_time_is_zero(const struct p2praft__hc_time *t)
{
    struct p2praft__hc_time z;
    if (t->form == P2PRAFT__HC_TIME_NIL) {
        return true;
    }
    p2praft__hc_time_zero(&z);
    return t->form == z.form && t->len == z.len &&
           memcmp(t->b, z.b, z.len) == 0;
}

/* A time value: nil; a raw string holding MarshalBinary output (version 1,
 * 15 bytes, or version 2, 16 bytes) or a timestamp body (4, 8, 12 bytes);
 * or a timestamp extension. That is what go-msgpack v2 decodes. */
static int get_time(struct lp2p_mp_cur *c, struct p2praft__hc_time *t)
{
    const uint8_t *p;
    size_t len;
    int rv;
    memset(t, 0, sizeof(*t));
    if (lp2p__mp_left(c) < 1) {
        return LP2P_ETRUNCATED;
    }
    switch (*c->p) {
    case 0xd6: /* fixext4 */
    case 0xd7: /* fixext8 */
    case 0xc7: /* ext8 */
        if (*c->p == 0xc7) {
            if (lp2p__mp_left(c) < 3) {
                return LP2P_ETRUNCATED;
            }
            if (c->p[1] != 12 || c->p[2] != 0xff) {
                return LP2P_ETYPE;
            }
            len = 12;
            p = c->p + 3;
        } else {
            if (lp2p__mp_left(c) < 2) {
                return LP2P_ETRUNCATED;
            }
            if (c->p[1] != 0xff) {
                return LP2P_ETYPE;
            }
            len = *c->p == 0xd6 ? 4 : 8;
            p = c->p + 2;
        }
        if ((size_t)(c->end - p) < len) {
            return LP2P_ETRUNCATED;
        }
        t->form = P2PRAFT__HC_TIME_EXT;
        t->len = (uint8_t)len;
        memcpy(t->b, p, len);
        c->p = p + len;
        return 0;
    default:
        break;
    }
    rv = lp2p__mp_get_raw(c, true, &p, &len);
    if (rv != 0) {
        return rv;
    }
    if (p == NULL) {
        t->form = P2PRAFT__HC_TIME_NIL;
        return 0;
    }
    if (!(len == 4 || len == 8 || len == 12 || (len == 15 && p[0] == 1) ||
          (len == 16 && p[0] == 2))) {
        return LP2P_EMALFORMED;
    }
    t->form = P2PRAFT__HC_TIME_RAW;
    t->len = (uint8_t)len;
    memcpy(t->b, p, len);
    return 0;
}

static int put_time(struct lp2p_buf *b, const struct p2praft__hc_time *t)
{
    int rv;
    switch (t->form) {
    case P2PRAFT__HC_TIME_NIL:
        return lp2p__mp_put_nil(b);
    case P2PRAFT__HC_TIME_RAW:
        if (t->len > sizeof(t->b)) {
            return LP2P_EINVAL;
        }
        return lp2p__mp_put_raw(b, t->b, t->len);
    case P2PRAFT__HC_TIME_EXT:
        /* go-msgpack's encodeExtPreamble with tag -1. */
        if (t->len == 4) {
            rv = lp2p__buf_append(b, "\xd6\xff", 2);
        } else if (t->len == 8) {
            rv = lp2p__buf_append(b, "\xd7\xff", 2);
        } else if (t->len == 12) {
            rv = lp2p__buf_append(b, "\xc7\x0c\xff", 3);
        } else {
            return LP2P_EINVAL;
        }
        return rv != 0 ? rv : lp2p__buf_append(b, t->b, t->len);
    default:
        return LP2P_EINVAL;
    }
}

/* ---- decoding --------------------------------------------------------------- */

static void release_struct(const struct sdesc *d, void *base);

static void release_array(const struct sdesc *elem, void *arr, size_t n,
                          size_t size)
{
    size_t i;
    if (arr == NULL) {
        return;
    }
    for (i = 0; i < n; i++) {
        release_struct(elem, (uint8_t *)arr + i * size);
    }
    lp2p__free(arr);
}

static void release_struct(const struct sdesc *d, void *base)
{
    size_t i;
    for (i = 0; i < d->n; i++) {
        const struct field *f = &d->f[i];
        uint8_t *p = (uint8_t *)base + f->off;
        size_t *n = (size_t *)((uint8_t *)base + f->off_n);
        if (f->kind == F_LOGS) {
            struct p2praft__hc_log **arr = (struct p2praft__hc_log **)p;
            release_array(&d_log, *arr, *n, sizeof(**arr));
            *arr = NULL;
            *n = 0;
        } else if (f->kind == F_SERVERS) {
            struct p2praft__hc_server **arr = (struct p2praft__hc_server **)p;
            release_array(&d_server, *arr, *n, sizeof(**arr));
            *arr = NULL;
            *n = 0;
        }
    }
}

static int decode_struct(struct lp2p_mp_cur *c, const struct sdesc *d,
                         void *base);

/* An array of structs (or nil): allocated, each element decoded. */
static int decode_array(struct lp2p_mp_cur *c, const struct sdesc *elem,
                        size_t size, void **arr, size_t *count, bool *nil)
{
    size_t n, i;
    uint8_t *a = NULL;
    int rv = lp2p__mp_get_array_hdr(c, true, &n, nil);
    if (rv != 0) {
        return rv;
    }
    if (n > 0) {
        a = lp2p__calloc(n, size);
        if (a == NULL) {
            return LP2P_ENOMEM;
        }
    }
    for (i = 0; i < n; i++) {
        rv = decode_struct(c, elem, a + i * size);
        if (rv != 0) {
            release_array(elem, a, i + 1, size);
            return rv;
        }
    }
    *arr = a;
    *count = n;
    return 0;
}

static int decode_field(struct lp2p_mp_cur *c, const struct field *f,
                        void *base)
{
    uint8_t *p = (uint8_t *)base + f->off;
    switch (f->kind) {
    case F_U64:
        return lp2p__mp_get_uint(c, (uint64_t *)p);
    case F_I64:
        return lp2p__mp_get_int(c, (int64_t *)p);
    case F_BOOL:
        return lp2p__mp_get_bool(c, (bool *)p);
    case F_BYTES: {
        struct p2praft__hc_bytes *b = (struct p2praft__hc_bytes *)p;
        return lp2p__mp_get_raw(c, true, &b->p, &b->len);
    }
    case F_TIME:
        return get_time(c, (struct p2praft__hc_time *)p);
    case F_LOGS:
        return decode_array(c, &d_log, sizeof(struct p2praft__hc_log),
                            (void **)p, (size_t *)((uint8_t *)base + f->off_n),
                            (bool *)((uint8_t *)base + f->off_nil));
    case F_SERVERS:
        return decode_array(c, &d_server, sizeof(struct p2praft__hc_server),
                            (void **)p, (size_t *)((uint8_t *)base + f->off_n),
                            (bool *)((uint8_t *)base + f->off_nil));
    default:
        return LP2P_EINVAL;
    }
}

/* One map into zeroed `base`. On error `base` may hold allocations: the
 * caller releases it. */
static int decode_struct(struct lp2p_mp_cur *c, const struct sdesc *d,
                         void *base)
{
    uint32_t seen = 0;
    size_t n, i, j;
    int rv = lp2p__mp_get_map_hdr(c, &n);
    if (rv != 0) {
        return rv;
    }
    for (i = 0; i < n; i++) {
        const uint8_t *key;
        size_t klen;
        rv = lp2p__mp_get_raw(c, false, &key, &klen);
        if (rv != 0) {
            return rv;
        }
        for (j = 0; j < d->n; j++) {
            if (strlen(d->f[j].name) == klen &&
                memcmp(d->f[j].name, key, klen) == 0) {
                break;
            }
        }
        if (j == d->n) {
            /* A field this version does not know: Go ignores it too. */
            rv = lp2p__mp_skip(c);
        } else if (seen & (1u << j)) {
            return LP2P_EMALFORMED; /* duplicate key */
        } else {
            seen |= 1u << j;
            rv = decode_field(c, &d->f[j], base);
        }
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

/* Decode the one value in buf[0..len) with description d into base. */
static int decode_exact(const uint8_t *buf, size_t len, const struct sdesc *d,
                        void *base)
{
    struct lp2p_mp_cur c;
    int rv;
    lp2p__mp_cur_init(&c, buf, len);
    rv = decode_struct(&c, d, base);
    if (rv == 0 && c.p != c.end) {
        rv = LP2P_ETRAILING;
    }
    if (rv != 0) {
        release_struct(d, base);
    }
    return rv;
}

int p2praft__hc_req_decode(const uint8_t *buf, size_t len, size_t max,
                           struct p2praft__hc_req *out, size_t *consumed)
{
    size_t n;
    int rv;
    memset(out, 0, sizeof(*out));
    if (len < 1) {
        return max < 1 ? LP2P_ETOOBIG : LP2P_EAGAIN;
    }
    if (buf[0] >= N_RPC) {
        return LP2P_EUNSUPPORTED;
    }
    if (max < 1) {
        return LP2P_ETOOBIG;
    }
    rv = lp2p__mp_value_len(buf + 1, len - 1, max - 1, &n);
    if (rv != 0) {
        return rv;
    }
    out->type = buf[0];
    rv = decode_exact(buf + 1, n, &d_req[out->type], &out->append_entries);
    if (rv != 0) {
        memset(out, 0, sizeof(*out));
        return rv;
    }
    if (out->type == P2PRAFT__HC_INSTALL_SNAPSHOT &&
        out->install_snapshot.size < 0) {
        memset(out, 0, sizeof(*out));
        return LP2P_EMALFORMED;
    }
    *consumed = 1 + n;
    return 0;
}

void p2praft__hc_req_release(struct p2praft__hc_req *req)
{
    if (req != NULL && req->type < N_RPC) {
        release_struct(&d_req[req->type], &req->append_entries);
    }
}

int p2praft__hc_resp_decode(uint8_t type, const uint8_t *buf, size_t len,
                            size_t max, struct p2praft__hc_resp *out,
                            size_t *consumed)
{
    struct lp2p_mp_cur c;
    size_t n1, n2;
    int rv;
    memset(out, 0, sizeof(*out));
    if (type >= N_RPC) {
        return LP2P_EINVAL;
    }
    rv = lp2p__mp_value_len(buf, len, max, &n1);
    if (rv != 0) {
        return rv;
    }
    rv = lp2p__mp_value_len(buf + n1, len - n1, max - n1, &n2);
    if (rv != 0) {
        return rv;
    }
    lp2p__mp_cur_init(&c, buf, n1);
    rv = lp2p__mp_get_raw(&c, false, &out->error.p, &out->error.len);
    if (rv != 0) {
        memset(out, 0, sizeof(*out));
        return rv;
    }
    out->type = type;
    if (n2 == 1 && buf[n1] == 0xc0) {
        out->nil = true;
    } else {
        rv = decode_exact(buf + n1, n2, &d_resp[type], &out->append_entries);
        if (rv != 0) {
            memset(out, 0, sizeof(*out));
            return rv;
        }
    }
    *consumed = n1 + n2;
    return 0;
}

void p2praft__hc_resp_release(struct p2praft__hc_resp *resp)
{
    if (resp != NULL && resp->type < N_RPC && !resp->nil) {
        release_struct(&d_resp[resp->type], &resp->append_entries);
    }
}

int p2praft__hc_conf_decode(const uint8_t *buf, size_t len,
                            struct p2praft__hc_configuration *out)
{
    memset(out, 0, sizeof(*out));
    return decode_exact(buf, len, &d_configuration, out);
}

void p2praft__hc_conf_release(struct p2praft__hc_configuration *conf)
{
    if (conf != NULL) {
        release_struct(&d_configuration, conf);
    }
}

/* ---- encoding ------------------------------------------------------------ */

static int put_bytes(struct lp2p_buf *b, const struct p2praft__hc_bytes *v)
{
    if (v->p == NULL) {
        return lp2p__mp_put_nil(b);
    }
    return lp2p__mp_put_raw(b, v->p, v->len);
}

static int encode_struct(struct lp2p_buf *b, const struct sdesc *d,
                         const void *base);

static int encode_array(struct lp2p_buf *b, const struct sdesc *elem,
                        size_t size, const void *arr, size_t n, bool nil)
{
    size_t i;
    int rv;
    if (n == 0 && nil) {
        return lp2p__mp_put_nil(b);
    }
    if (n > 0 && arr == NULL) {
        return LP2P_EINVAL;
    }
    rv = lp2p__mp_put_array_hdr(b, n);
    for (i = 0; rv == 0 && i < n; i++) {
        rv = encode_struct(b, elem, (const uint8_t *)arr + i * size);
    }
    return rv;
}

static int encode_field(struct lp2p_buf *b, const struct field *f,
                        const void *base)
{
    const uint8_t *p = (const uint8_t *)base + f->off;
    switch (f->kind) {
    case F_U64:
        return lp2p__mp_put_uint(b, *(const uint64_t *)p);
    case F_I64:
        return lp2p__mp_put_int(b, *(const int64_t *)p);
    case F_BOOL:
        return lp2p__mp_put_bool(b, *(const bool *)p);
    case F_BYTES:
        return put_bytes(b, (const struct p2praft__hc_bytes *)p);
    case F_TIME:
        return put_time(b, (const struct p2praft__hc_time *)p);
    case F_LOGS:
    case F_SERVERS:
        return encode_array(
            b, f->kind == F_LOGS ? &d_log : &d_server,
            f->kind == F_LOGS ? sizeof(struct p2praft__hc_log)
                              : sizeof(struct p2praft__hc_server),
            *(void *const *)p, *(const size_t *)((const uint8_t *)base + f->off_n),
            *(const bool *)((const uint8_t *)base + f->off_nil));
    default:
        return LP2P_EINVAL;
    }
}

static int encode_struct(struct lp2p_buf *b, const struct sdesc *d,
                         const void *base)
{
    size_t i;
    int rv = lp2p__mp_put_map_hdr(b, d->n);
    for (i = 0; rv == 0 && i < d->n; i++) {
        rv = lp2p__mp_put_raw(b, d->f[i].name, strlen(d->f[i].name));
        if (rv == 0) {
            rv = encode_field(b, &d->f[i], base);
        }
    }
    return rv;
}

int p2praft__hc_req_encode(const struct p2praft__hc_req *req,
                           struct lp2p_buf *out)
{
    int rv;
    if (req->type >= N_RPC) {
        return LP2P_EINVAL;
    }
    rv = lp2p__buf_append_byte(out, req->type);
    if (rv != 0) {
        return rv;
    }
    return encode_struct(out, &d_req[req->type], &req->append_entries);
}

int p2praft__hc_resp_encode(const struct p2praft__hc_resp *resp,
                            struct lp2p_buf *out)
{
    int rv;
    if (resp->type >= N_RPC) {
        return LP2P_EINVAL;
    }
    /* The error string is a Go string: never nil on the wire. */
    rv = lp2p__mp_put_raw(out, resp->error.p, resp->error.len);
    if (rv != 0) {
        return rv;
    }
    if (resp->nil) {
        return lp2p__mp_put_nil(out);
    }
    return encode_struct(out, &d_resp[resp->type], &resp->append_entries);
}

int p2praft__hc_conf_encode(const struct p2praft__hc_configuration *conf,
                            struct lp2p_buf *out)
{
    return encode_struct(out, &d_configuration, conf);
}

int p2praft__hc_peers_encode(const struct p2praft__hc_configuration *conf,
                             struct lp2p_buf *out)
{
    size_t i, voters = 0;
    int rv;
    for (i = 0; i < conf->n; i++) {
        voters += conf->servers[i].suffrage == P2PRAFT__HC_VOTER;
    }
    /* encodePeers builds a nil [][]byte and appends: no voter gives nil. */
    if (voters == 0) {
        return lp2p__mp_put_nil(out);
    }
    rv = lp2p__mp_put_array_hdr(out, voters);
    for (i = 0; rv == 0 && i < conf->n; i++) {
        if (conf->servers[i].suffrage == P2PRAFT__HC_VOTER) {
            rv = put_bytes(out, &conf->servers[i].address);
        }
    }
    return rv;
}
