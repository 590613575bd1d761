/*
 * multistream-select 1.0 (see multistream.h).
 *
 * Happy path, initiator: start() writes header + proposal; feed() reads the
 * responder's header, then either the echo of the proposal (done) or "na"
 * (propose the next one; ENOPROTO when none is left). Responder: feed()
 * reads the header and answers with ours, then answers each proposal with
 * "na" or its echo (done), and "ls" with the list.
 *
 * Failure modes: a first message other than the header (EPROTO), a
 * message without its trailing '\n' or with a zero or non-minimal length
 * (EPROTO), a length above 1024 (ETOOBIG), an answer that is neither the
 * proposal nor "na" (EPROTO). Any error kills the object.
 */
#include <limits.h>
#include <string.h>

#include "lp2p.h"
#include "multistream.h"
#include "../util/varint.h"

#define HEADER_LEN (sizeof(LP2P_MSS_HEADER) - 1)

static int is(const uint8_t *s, size_t len, const char *lit)
{
    size_t n = strlen(lit);
    return len == n && memcmp(s, lit, n) == 0;
}

int lp2p__mss_write_msg(struct lp2p_buf *out, const char *s, size_t len)
{
    int rv;
    if (len + 1 > LP2P_MSS_MAX_MSG) {
        return LP2P_ETOOBIG;
    }
    rv = lp2p__buf_reserve(out, len + 3);
    if (rv != 0) {
        return rv;
    }
    rv = lp2p__buf_append_varint(out, len + 1);
    if (rv == 0) {
        rv = lp2p__buf_append(out, s, len);
    }
    if (rv == 0) {
        rv = lp2p__buf_append_byte(out, '\n');
    }
    return rv;
}

static int check_protos(const char *const *protos, size_t n)
{
    size_t i;
    if (n > 0 && protos == NULL) {
        return LP2P_EINVAL;
    }
    for (i = 0; i < n; i++) {
        size_t l;
        if (protos[i] == NULL) {
            return LP2P_EINVAL;
        }
        l = strlen(protos[i]);
        if (l == 0 || l + 1 > LP2P_MSS_MAX_MSG ||
            memchr(protos[i], '\n', l) != NULL) {
            return LP2P_EINVAL;
        }
    }
    return 0;
}

static void init_common(struct lp2p_mss *m, int initiator,
                        const char *const *protos, size_t n)
{
    memset(m, 0, sizeof(*m));
    m->initiator = initiator;
    m->state = LP2P_MSS_IDLE;
    m->protos = protos;
    m->nprotos = n;
}

int lp2p__mss_init_initiator(struct lp2p_mss *m, const char *const *protos,
                             size_t n)
{
    int rv = check_protos(protos, n);
    if (rv != 0) {
        return rv;
    }
    init_common(m, 1, protos, n);
    return 0;
}

int lp2p__mss_set_ls(struct lp2p_mss *m, lp2p_mss_ls_cb cb, void *ctx)
{
    if (!m->initiator || m->state != LP2P_MSS_IDLE) {
        return LP2P_ESTATE;
    }
    m->want_ls = 1;
    m->ls_cb = cb;
    m->ls_ctx = ctx;
    return 0;
}

int lp2p__mss_init_responder(struct lp2p_mss *m, const char *const *protos,
                             size_t n, lp2p_mss_match_cb match, void *ctx)
{
    int rv = check_protos(protos, n);
    if (rv != 0) {
        return rv;
    }
    init_common(m, 0, protos, n);
    m->match = match;
    m->match_ctx = ctx;
    return 0;
}

int lp2p__mss_start(struct lp2p_mss *m, struct lp2p_buf *out)
{
    int rv;
    if (m->state != LP2P_MSS_IDLE) {
        return LP2P_ESTATE;
    }
    if (m->initiator) {
        if (m->nprotos == 0 && !m->want_ls) {
            m->state = LP2P_MSS_FAILED;
            return LP2P_EINVAL;
        }
        rv = lp2p__mss_write_msg(out, LP2P_MSS_HEADER, HEADER_LEN);
        if (rv == 0) {
            if (m->want_ls) {
                rv = lp2p__mss_write_msg(out, "ls", 2);
                m->ls_pending = 1;
            } else {
                rv = lp2p__mss_write_msg(out, m->protos[0],
                                         strlen(m->protos[0]));
            }
        }
        if (rv != 0) {
            m->state = LP2P_MSS_FAILED;
            return rv;
        }
    }
    m->state = LP2P_MSS_RUNNING;
    return 0;
}

/*
 * Next complete message from the pending buffer and `in` (advancing
 * *off). Returns 1 with (*msg, *mlen) set to the body (trailing '\n'
 * included), 0 when the input ran out (the partial message is kept), or an
 * error. *msg may point into m->pend: it stays valid until the next call.
 */
static int next_msg(struct lp2p_mss *m, const uint8_t *in, size_t len,
                    size_t *off, const uint8_t **msg, size_t *mlen)
{
    uint64_t v = 0;
    int hl;
    size_t need, take;

    if (m->pend_len == 0) {
        hl = lp2p__varint_decode(in + *off, len - *off, &v);
        if (hl > 0) {
            if (v > LP2P_MSS_MAX_MSG) {
                return LP2P_ETOOBIG;
            }
            if (v == 0) {
                return LP2P_EPROTO;
            }
            if (len - *off - (size_t)hl >= v) {
                *msg = in + *off + hl;
                *mlen = (size_t)v;
                *off += (size_t)hl + (size_t)v;
                return 1;
            }
        } else if (hl == LP2P_EAGAIN) {
            /* A 2-byte prefix always decodes when it encodes <= 1024. */
            if (len - *off >= 2) {
                return LP2P_ETOOBIG;
            }
        } else if (hl == LP2P_ENONMINIMAL) {
            return LP2P_EPROTO;
        } else {
            return LP2P_ETOOBIG;
        }
        /* Incomplete: keep what we have (at most 2 + 1023 bytes). */
        take = len - *off;
        memcpy(m->pend, in + *off, take);
        m->pend_len = take;
        *off = len;
        return 0;
    }

    /* Complete the length prefix one byte at a time (at most 2 bytes). */
    for (;;) {
        hl = lp2p__varint_decode(m->pend, m->pend_len, &v);
        if (hl > 0) {
            break;
        }
        if (hl == LP2P_ENONMINIMAL) {
            return LP2P_EPROTO;
        }
        if (hl != LP2P_EAGAIN || m->pend_len >= 2) {
            return LP2P_ETOOBIG;
        }
        if (*off == len) {
            return 0;
        }
        m->pend[m->pend_len++] = in[(*off)++];
    }
    if (v > LP2P_MSS_MAX_MSG) {
        return LP2P_ETOOBIG;
    }
    if (v == 0) {
        return LP2P_EPROTO;
    }
    need = (size_t)hl + (size_t)v - m->pend_len;
    take = len - *off < need ? len - *off : need;
    memcpy(m->pend + m->pend_len, in + *off, take);
    m->pend_len += take;
    *off += take;
    if (take < need) {
        return 0;
    }
    *msg = m->pend + hl;
    *mlen = (size_t)v;
    m->pend_len = 0;
    return 1;
}

static void select_proto(struct lp2p_mss *m, const uint8_t *s, size_t len)
{
    memcpy(m->selected, s, len);
    m->selected[len] = '\0';
    m->state = LP2P_MSS_DONE;
}

/* The ls answer: uvarint(len) || (uvarint(len) proto '\n')* || '\n'. */
static int write_ls(struct lp2p_mss *m, struct lp2p_buf *out)
{
    uint8_t body[LP2P_MSS_MAX_MSG];
    size_t blen = 0, i;
    int rv;
    for (i = 0; i < m->nprotos; i++) {
        size_t l = strlen(m->protos[i]);
        size_t vl = lp2p__varint_len(l + 1);
        /* Keep room for the final '\n'; drop what does not fit. */
        if (blen + vl + l + 1 + 1 > sizeof(body)) {
            break;
        }
        blen += lp2p__varint_encode(l + 1, body + blen);
        memcpy(body + blen, m->protos[i], l);
        blen += l;
        body[blen++] = '\n';
    }
    body[blen++] = '\n';
    rv = lp2p__buf_append_varint(out, blen);
    if (rv == 0) {
        rv = lp2p__buf_append(out, body, blen);
    }
    return rv;
}

/* Parse an ls answer body (final '\n' already stripped). */
static int read_ls(struct lp2p_mss *m, const uint8_t *s, size_t len)
{
    size_t off = 0;
    if (is(s, len, "na")) {
        return 0;
    }
    while (off < len) {
        uint64_t v;
        int hl = lp2p__varint_decode(s + off, len - off, &v);
        if (hl <= 0 || v == 0 || v > len - off - (size_t)hl) {
            return LP2P_EPROTO;
        }
        off += (size_t)hl;
        if (s[off + v - 1] != '\n') {
            return LP2P_EPROTO;
        }
        if (m->ls_cb != NULL) {
            char tmp[LP2P_MSS_MAX_MSG];
            memcpy(tmp, s + off, (size_t)v - 1);
            tmp[v - 1] = '\0';
            m->ls_cb(m->ls_ctx, tmp, (size_t)v - 1);
        }
        off += (size_t)v;
    }
    return 0;
}

static int on_msg_initiator(struct lp2p_mss *m, const uint8_t *s, size_t len,
                            struct lp2p_buf *out)
{
    const char *p;
    int rv;
    if (m->ls_pending) {
        rv = read_ls(m, s, len);
        if (rv != 0) {
            return rv;
        }
        m->ls_pending = 0;
        if (m->nprotos == 0) {
            m->state = LP2P_MSS_LISTED;
            return 0;
        }
        return lp2p__mss_write_msg(out, m->protos[0], strlen(m->protos[0]));
    }
    p = m->protos[m->cur];
    if (is(s, len, p)) {
        select_proto(m, s, len);
        return 0;
    }
    if (is(s, len, "na")) {
        m->cur++;
        if (m->cur == m->nprotos) {
            return LP2P_ENOPROTO;
        }
        p = m->protos[m->cur];
        return lp2p__mss_write_msg(out, p, strlen(p));
    }
    return LP2P_EPROTO;
}

static int on_msg_responder(struct lp2p_mss *m, const uint8_t *s, size_t len,
                            struct lp2p_buf *out)
{
    size_t i;
    if (is(s, len, "ls")) {
        return write_ls(m, out);
    }
    for (i = 0; i < m->nprotos; i++) {
        if (is(s, len, m->protos[i])) {
            select_proto(m, s, len);
            return lp2p__mss_write_msg(out, (const char *)s, len);
        }
    }
    if (m->match != NULL && !is(s, len, LP2P_MSS_HEADER) &&
        memchr(s, '\0', len) == NULL) {
        memcpy(m->selected, s, len);
        m->selected[len] = '\0';
        if (m->match(m->match_ctx, m->selected, len)) {
            select_proto(m, s, len);
            return lp2p__mss_write_msg(out, (const char *)s, len);
        }
        m->selected[0] = '\0';
    }
    return lp2p__mss_write_msg(out, "na", 2);
}

int lp2p__mss_feed(struct lp2p_mss *m, const uint8_t *in, size_t len,
                   struct lp2p_buf *out)
{
    size_t off = 0;
    int rv = 0;
    if (m->state != LP2P_MSS_RUNNING) {
        return LP2P_ESTATE;
    }
    if (len > INT_MAX) {
        len = INT_MAX; /* the caller feeds the rest next time */
    }
    while (off < len && m->state == LP2P_MSS_RUNNING) {
        const uint8_t *msg = NULL;
        size_t mlen = 0;
        rv = next_msg(m, in, len, &off, &msg, &mlen);
        if (rv <= 0) {
            break;
        }
        if (msg[mlen - 1] != '\n') {
            rv = LP2P_EPROTO;
            break;
        }
        mlen--;
        if (!m->header_seen) {
            if (!is(msg, mlen, LP2P_MSS_HEADER)) {
                rv = LP2P_EPROTO;
                break;
            }
            m->header_seen = 1;
            if (!m->initiator && !m->header_sent) {
                rv = lp2p__mss_write_msg(out, LP2P_MSS_HEADER, HEADER_LEN);
                if (rv != 0) {
                    break;
                }
                m->header_sent = 1;
            }
            continue;
        }
        rv = m->initiator ? on_msg_initiator(m, msg, mlen, out)
                          : on_msg_responder(m, msg, mlen, out);
        if (rv != 0) {
            break;
        }
    }
    if (rv < 0) {
        m->state = LP2P_MSS_FAILED;
        m->selected[0] = '\0';
        return rv;
    }
    return (int)off;
}

int lp2p__mss_done(const struct lp2p_mss *m)
{
    return m->state == LP2P_MSS_DONE;
}

const char *lp2p__mss_selected(const struct lp2p_mss *m)
{
    return m->state == LP2P_MSS_DONE ? m->selected : NULL;
}
