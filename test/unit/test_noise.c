/* Noise XX: cacophony vectors, the captured js-libp2p handshake, the
 * libp2p payload, transport framing, and failure modes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lp2p.h"
#include "oom.h"
#include "p2p/key.h"
#include "p2p/noise.h"
#include "test.h"
#include "util/buf.h"

/* ------------------------------------------------------------------- */
/* A minimal JSON reader (objects, arrays, strings without escapes other
 * than \" and \\, literals) for the cacophony file.                     */

enum jtype { J_NULL, J_STR, J_OBJ, J_ARR, J_LIT };

struct jv {
    enum jtype type;
    char *str;          /* J_STR, J_LIT */
    size_t n;           /* children */
    char **keys;        /* J_OBJ */
    struct jv *kids;
};

static void j_ws(const char **p)
{
    while (**p == ' ' || **p == '\n' || **p == '\r' || **p == '\t') {
        (*p)++;
    }
}

static char *j_string(const char **p)
{
    const char *s = ++(*p);
    char *out, *o;
    while (**p != '"') {
        ASSERT(**p != '\0');
        if (**p == '\\') {
            (*p)++;
        }
        (*p)++;
    }
    out = malloc((size_t)(*p - s) + 1);
    ASSERT(out != NULL);
    for (o = out; s < *p; s++) {
        if (*s == '\\') {
            s++;
        }
        *o++ = *s;
    }
    *o = '\0';
    (*p)++;
    return out;
}

static void j_parse(const char **p, struct jv *v)
{
    memset(v, 0, sizeof(*v));
    j_ws(p);
    if (**p == '"') {
        v->type = J_STR;
        v->str = j_string(p);
    } else if (**p == '{' || **p == '[') {
        int obj = **p == '{';
        char close = obj ? '}' : ']';
        v->type = obj ? J_OBJ : J_ARR;
        (*p)++;
        j_ws(p);
        while (**p != close) {
            v->kids = realloc(v->kids, (v->n + 1) * sizeof(*v->kids));
            v->keys = realloc(v->keys, (v->n + 1) * sizeof(*v->keys));
            ASSERT(v->kids != NULL && v->keys != NULL);
            v->keys[v->n] = NULL;
            if (obj) {
                j_ws(p);
                ASSERT(**p == '"');
                v->keys[v->n] = j_string(p);
                j_ws(p);
                ASSERT(**p == ':');
                (*p)++;
            }
            j_parse(p, &v->kids[v->n]);
            v->n++;
            j_ws(p);
            if (**p == ',') {
                (*p)++;
                j_ws(p);
            } else {
                ASSERT(**p == close);
            }
        }
        (*p)++;
    } else {
        const char *s = *p;
        while (**p != ',' && **p != '}' && **p != ']' && **p != '\0' &&
               **p != ' ' && **p != '\n') {
            (*p)++;
        }
        ASSERT(*p > s);
        v->type = J_LIT;
        v->str = strndup(s, (size_t)(*p - s));
    }
}

static void j_free(struct jv *v)
{
    size_t i;
    for (i = 0; i < v->n; i++) {
        j_free(&v->kids[i]);
        if (v->keys != NULL) {
            free(v->keys[i]);
        }
    }
    free(v->kids);
    free(v->keys);
    free(v->str);
}

static const struct jv *j_get(const struct jv *o, const char *key)
{
    size_t i;
    if (o->type != J_OBJ) {
        return NULL;
    }
    for (i = 0; i < o->n; i++) {
        if (strcmp(o->keys[i], key) == 0) {
            return &o->kids[i];
        }
    }
    return NULL;
}

static const char *j_str(const struct jv *o, const char *key)
{
    const struct jv *v = j_get(o, key);
    return v != NULL && v->type == J_STR ? v->str : NULL;
}

/* ------------------------------------------------------------------- */
/* Helpers                                                              */

static void unhex32(const char *hex, uint8_t out[32])
{
    size_t n;
    uint8_t *b = test__unhex(hex, &n);
    ASSERT_EQ(n, 32);
    memcpy(out, b, 32);
    free(b);
}

/* ------------------------------------------------------------------- */
/* Cacophony                                                            */

static int psk_present(const struct jv *v)
{
    size_t i;
    for (i = 0; i < v->n; i++) {
        if (strstr(v->keys[i], "psk") != NULL) {
            const struct jv *k = &v->kids[i];
            if (k->type != J_ARR || k->n > 0) {
                return 1;
            }
        }
    }
    return 0;
}

static void run_cacophony(const struct jv *v)
{
    struct lp2p_noise_xx ini, res;
    struct lp2p_noise_cipher ci_tx, ci_rx, cr_tx, cr_rx;
    uint8_t is[32], ie[32], rs[32], re[32];
    uint8_t *ipro, *rpro, *hh;
    size_t iplen, rplen, hhlen, i;
    const struct jv *msgs = j_get(v, "messages");
    ASSERT(msgs != NULL && msgs->type == J_ARR && msgs->n >= 3);
    unhex32(j_str(v, "init_static"), is);
    unhex32(j_str(v, "init_ephemeral"), ie);
    unhex32(j_str(v, "resp_static"), rs);
    unhex32(j_str(v, "resp_ephemeral"), re);
    ipro = test__unhex(j_str(v, "init_prologue") ? j_str(v, "init_prologue")
                                                  : "", &iplen);
    rpro = test__unhex(j_str(v, "resp_prologue") ? j_str(v, "resp_prologue")
                                                  : "", &rplen);
    ASSERT_OK(lp2p__noise_xx_init(&ini, 1, ipro, iplen, is, ie));
    ASSERT_OK(lp2p__noise_xx_init(&res, 0, rpro, rplen, rs, re));
    ASSERT_OK(lp2p__noise_cipher_init(&ci_tx));
    ASSERT_OK(lp2p__noise_cipher_init(&ci_rx));
    ASSERT_OK(lp2p__noise_cipher_init(&cr_tx));
    ASSERT_OK(lp2p__noise_cipher_init(&cr_rx));
    for (i = 0; i < msgs->n; i++) {
        const struct jv *m = &msgs->kids[i];
        size_t plen, clen;
        uint8_t *pl = test__unhex(j_str(m, "payload"), &plen);
        uint8_t *ct = test__unhex(j_str(m, "ciphertext"), &clen);
        int from_init = i % 2 == 0;
        struct lp2p_buf wire, back;
        lp2p__buf_init(&wire);
        lp2p__buf_init(&back);
        if (i < 3) {
            ASSERT_OK(lp2p__noise_xx_write(from_init ? &ini : &res, pl, plen,
                                           &wire));
            ASSERT_OK(lp2p__noise_xx_read(from_init ? &res : &ini, wire.data,
                                          wire.len, &back));
            if (i == 2) {
                ASSERT_OK(lp2p__noise_xx_split(&ini, &ci_tx, &ci_rx));
                ASSERT_OK(lp2p__noise_xx_split(&res, &cr_tx, &cr_rx));
            }
        } else {
            struct lp2p_noise_cipher *tx = from_init ? &ci_tx : &cr_tx;
            struct lp2p_noise_cipher *rx = from_init ? &cr_rx : &ci_rx;
            ASSERT_OK(lp2p__buf_reserve(&wire, plen + 16));
            ASSERT_OK(lp2p__noise_cipher_encrypt(tx, NULL, 0, pl, plen,
                                                 wire.data));
            wire.len = plen + 16;
            ASSERT_OK(lp2p__buf_reserve(&back, plen + 16));
            ASSERT_OK(lp2p__noise_cipher_decrypt(rx, NULL, 0, wire.data,
                                                 wire.len, back.data));
            back.len = plen;
        }
        ASSERT_EQ(wire.len, clen);
        ASSERT_MEM_EQ(wire.data, ct, clen);
        ASSERT_EQ(back.len, plen);
        ASSERT_MEM_EQ(back.data, pl, plen);
        lp2p__buf_free(&wire);
        lp2p__buf_free(&back);
        free(pl);
        free(ct);
    }
    hh = test__unhex(j_str(v, "handshake_hash"), &hhlen);
    ASSERT_EQ(hhlen, 32);
    ASSERT_MEM_EQ(ini.h, hh, 32);
    ASSERT_MEM_EQ(res.h, hh, 32);
    free(hh);
    free(ipro);
    free(rpro);
    lp2p__noise_xx_close(&ini);
    lp2p__noise_xx_close(&res);
    lp2p__noise_cipher_close(&ci_tx);
    lp2p__noise_cipher_close(&ci_rx);
    lp2p__noise_cipher_close(&cr_tx);
    lp2p__noise_cipher_close(&cr_rx);
}

TEST(noise, cacophony_vectors)
{
    size_t len, i, ran = 0, skipped = 0;
    uint8_t *text = test__read_vector(
        "noise_XX_25519_ChaChaPoly_SHA256.cacophony.json", &len);
    const char *p = (const char *)text;
    struct jv root;
    const struct jv *vecs;
    j_parse(&p, &root);
    vecs = j_get(&root, "vectors");
    ASSERT(vecs != NULL && vecs->type == J_ARR);
    for (i = 0; i < vecs->n; i++) {
        const struct jv *v = &vecs->kids[i];
        const char *name = j_str(v, "protocol_name");
        if (name == NULL ||
            strcmp(name, "Noise_XX_25519_ChaChaPoly_SHA256") != 0 ||
            psk_present(v)) {
            skipped++;
            continue;
        }
        run_cacophony(v);
        ran++;
    }
    printf("     cacophony: %zu XX vector(s) run, %zu skipped\n", ran,
           skipped);
    ASSERT(ran >= 1);
    j_free(&root);
    free(text);
}

/* ------------------------------------------------------------------- */
/* The captured js-libp2p handshake                                     */

struct capture {
    uint8_t seed[2][32], s[2][32], e[2][32];
    uint8_t *payload[2]; /* [0] = A (msg3), [1] = B (msg2) */
    size_t payload_len[2];
    uint8_t *msg[3];
    size_t msg_len[3];
    uint8_t h[32], k_i2r[32], k_r2i[32];
};

/* The hex word after `key` in `line`. */
static char *word_after(const char *line, const char *key)
{
    const char *p = strstr(line, key);
    size_t n = 0;
    ASSERT(p != NULL);
    p += strlen(key);
    while (p[n] != '\0' && p[n] != ' ' && p[n] != '\n') {
        n++;
    }
    return strndup(p, n);
}

static void hex_after(const char *line, const char *key, uint8_t out[32])
{
    char *w = word_after(line, key);
    unhex32(w, out);
    free(w);
}

static uint8_t *hexbuf_after(const char *line, const char *key, size_t *len)
{
    char *w = word_after(line, key);
    uint8_t *b = test__unhex(w, len);
    free(w);
    return b;
}

static void load_capture(struct capture *c)
{
    size_t len;
    char *text = (char *)test__read_vector("libp2p-noise-handshake.txt", &len);
    char *line, *save = NULL;
    int got = 0;
    memset(c, 0, sizeof(*c));
    for (line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "A: ", 3) == 0 || strncmp(line, "B: ", 3) == 0) {
            int who = line[0] == 'B';
            hex_after(line, "ed25519 seed=", c->seed[who]);
            hex_after(line, "noise static priv=", c->s[who]);
            hex_after(line, "ephemeral priv=", c->e[who]);
            got |= 1 << who;
        } else if (strncmp(line, "payload B", 9) == 0) {
            c->payload[1] = hexbuf_after(line, "): ", &c->payload_len[1]);
            got |= 4;
        } else if (strncmp(line, "payload A", 9) == 0) {
            c->payload[0] = hexbuf_after(line, "): ", &c->payload_len[0]);
            got |= 8;
        } else if (strncmp(line, "msg", 3) == 0 && line[3] >= '1' &&
                   line[3] <= '3') {
            int i = line[3] - '1';
            c->msg[i] = hexbuf_after(line, "B): ", &c->msg_len[i]);
            ASSERT(strstr(line, "matches wire: true") != NULL);
            got |= 16 << i;
        } else if (strncmp(line, "handshake hash h = ", 19) == 0) {
            hex_after(line, "h = ", c->h);
            got |= 128;
        } else if (strncmp(line, "k_i2r = ", 8) == 0) {
            hex_after(line, "k_i2r = ", c->k_i2r);
            hex_after(line, "k_r2i = ", c->k_r2i);
            got |= 256;
        }
    }
    ASSERT_EQ(got, 511);
    free(text);
}

static void free_capture(struct capture *c)
{
    int i;
    for (i = 0; i < 2; i++) {
        free(c->payload[i]);
    }
    for (i = 0; i < 3; i++) {
        free(c->msg[i]);
    }
}

static const char *YAMUX[] = {"/yamux/1.0.0"};

static void check_frame(const struct lp2p_buf *b, const uint8_t *msg,
                        size_t len)
{
    ASSERT_EQ(b->len, len + 2);
    ASSERT_EQ(b->data[0], (uint8_t)(len >> 8));
    ASSERT_EQ(b->data[1], (uint8_t)len);
    ASSERT_MEM_EQ(b->data + 2, msg, len);
}

TEST(noise, js_libp2p_capture_byte_for_byte)
{
    struct capture c;
    struct lp2p_key ka, kb;
    struct lp2p_peer_id ida, idb;
    struct lp2p_noise_config ca, cb;
    struct lp2p_noise_hs a, b;
    struct lp2p_noise_transport ta, tb;
    struct lp2p_buf out, pl;
    uint8_t pub[32];
    load_capture(&c);
    ASSERT_OK(lp2p_key_from_seed(&ka, c.seed[0]));
    ASSERT_OK(lp2p_key_from_seed(&kb, c.seed[1]));
    ASSERT_OK(lp2p_peer_id_from_key(&ka, &ida));
    ASSERT_OK(lp2p_peer_id_from_key(&kb, &idb));
    lp2p__buf_init(&out);
    lp2p__buf_init(&pl);

    /* The payloads themselves (Ed25519 signatures are deterministic). */
    ASSERT_OK(lp2p__x25519_pub(c.s[1], pub));
    ASSERT_OK(lp2p__noise_payload_build(&kb, pub, YAMUX, 1, &pl));
    ASSERT_EQ(pl.len, c.payload_len[1]);
    ASSERT_MEM_EQ(pl.data, c.payload[1], pl.len);
    pl.len = 0;
    ASSERT_OK(lp2p__x25519_pub(c.s[0], pub));
    ASSERT_OK(lp2p__noise_payload_build(&ka, pub, YAMUX, 1, &pl));
    ASSERT_EQ(pl.len, c.payload_len[0]);
    ASSERT_MEM_EQ(pl.data, c.payload[0], pl.len);

    memset(&ca, 0, sizeof(ca));
    ca.identity = &ka;
    ca.expected = &idb;
    ca.muxers = YAMUX;
    ca.nmuxers = 1;
    cb = ca;
    cb.identity = &kb;
    cb.expected = NULL;
    ASSERT_OK(lp2p__noise_hs_init(&a, 1, &ca));
    ASSERT_OK(lp2p__noise_hs_init(&b, 0, &cb));
    ASSERT_OK(lp2p__noise_hs_set_test_keys(&a, c.s[0], c.e[0]));
    ASSERT_OK(lp2p__noise_hs_set_test_keys(&b, c.s[1], c.e[1]));

    ASSERT_OK(lp2p__noise_hs_start(&a, &out));
    check_frame(&out, c.msg[0], 32);
    ASSERT_OK(lp2p__noise_hs_start(&b, &pl));
    pl.len = 0;
    ASSERT_EQ(lp2p__noise_hs_feed(&b, out.data, out.len, &pl), (int)out.len);
    check_frame(&pl, c.msg[1], c.msg_len[1]);
    ASSERT_EQ(c.msg_len[1], 216);
    out.len = 0;
    ASSERT_EQ(lp2p__noise_hs_feed(&a, pl.data, pl.len, &out), (int)pl.len);
    check_frame(&out, c.msg[2], c.msg_len[2]);
    ASSERT_EQ(c.msg_len[2], 184);
    ASSERT(lp2p__noise_hs_done(&a));
    pl.len = 0;
    ASSERT_EQ(lp2p__noise_hs_feed(&b, out.data, out.len, &pl), (int)out.len);
    ASSERT(lp2p__noise_hs_done(&b));
    ASSERT_EQ(pl.len, 0);

    ASSERT_MEM_EQ(a.xx.h, c.h, 32);
    ASSERT_MEM_EQ(b.xx.h, c.h, 32);
    ASSERT(lp2p_peer_id_equal(lp2p__noise_hs_remote_id(&a), &idb));
    ASSERT(lp2p_peer_id_equal(lp2p__noise_hs_remote_id(&b), &ida));
    ASSERT_STR_EQ(lp2p__noise_hs_muxer(&a), "/yamux/1.0.0");
    ASSERT_STR_EQ(lp2p__noise_hs_muxer(&b), "/yamux/1.0.0");

    ASSERT_OK(lp2p__noise_hs_split(&a, &ta));
    ASSERT_OK(lp2p__noise_hs_split(&b, &tb));
    ASSERT_MEM_EQ(ta.tx.k, c.k_i2r, 32);
    ASSERT_MEM_EQ(ta.rx.k, c.k_r2i, 32);
    ASSERT_MEM_EQ(tb.tx.k, c.k_r2i, 32);
    ASSERT_MEM_EQ(tb.rx.k, c.k_i2r, 32);

    lp2p__noise_hs_close(&a);
    lp2p__noise_hs_close(&b);
    lp2p__noise_transport_close(&ta);
    lp2p__noise_transport_close(&tb);
    lp2p__buf_free(&out);
    lp2p__buf_free(&pl);
    free_capture(&c);
}

/* ------------------------------------------------------------------- */
/* Back to back                                                         */

struct pair {
    struct lp2p_key ka, kb;
    struct lp2p_peer_id ida, idb;
    struct lp2p_noise_hs a, b;
    struct lp2p_noise_transport ta, tb;
};

/* Run a handshake, moving bytes in chunks of `chunk` (0 = whole). Returns
 * 0 or the first error; `extra` bytes of transport data from the
 * initiator ride in the same chunk as message 3 when non-NULL. */
static int handshake(struct pair *p, size_t chunk)
{
    struct lp2p_buf ab, ba;
    int rv = 0, rounds = 0;
    lp2p__buf_init(&ab);
    lp2p__buf_init(&ba);
    rv = lp2p__noise_hs_start(&p->a, &ab);
    if (rv == 0) {
        rv = lp2p__noise_hs_start(&p->b, &ba);
    }
    while (rv == 0 && rounds++ < 10 &&
           (!lp2p__noise_hs_done(&p->a) || !lp2p__noise_hs_done(&p->b))) {
        struct lp2p_noise_hs *to = ab.len > 0 ? &p->b : &p->a;
        struct lp2p_buf *src = ab.len > 0 ? &ab : &ba;
        struct lp2p_buf *dst = ab.len > 0 ? &ba : &ab;
        size_t off = 0, n = chunk == 0 ? src->len : chunk;
        if (src->len == 0) {
            rv = LP2P_ESTATE;
            break;
        }
        while (off < src->len) {
            size_t k = src->len - off < n ? src->len - off : n;
            int c = lp2p__noise_hs_feed(to, src->data + off, k, dst);
            if (c < 0) {
                rv = c;
                break;
            }
            ASSERT_EQ(c, (int)k);
            off += k;
        }
        src->len = 0;
    }
    lp2p__buf_free(&ab);
    lp2p__buf_free(&ba);
    return rv;
}

static void pair_init(struct pair *p, const char *const *ma, size_t na,
                      const char *const *mb, size_t nb,
                      const struct lp2p_peer_id *expected)
{
    struct lp2p_noise_config ca, cb;
    memset(p, 0, sizeof(*p));
    ASSERT_OK(lp2p_key_generate(&p->ka));
    ASSERT_OK(lp2p_key_generate(&p->kb));
    ASSERT_OK(lp2p_peer_id_from_key(&p->ka, &p->ida));
    ASSERT_OK(lp2p_peer_id_from_key(&p->kb, &p->idb));
    memset(&ca, 0, sizeof(ca));
    memset(&cb, 0, sizeof(cb));
    ca.identity = &p->ka;
    ca.expected = expected != NULL ? expected : &p->idb;
    ca.muxers = ma;
    ca.nmuxers = na;
    cb.identity = &p->kb;
    cb.muxers = mb;
    cb.nmuxers = nb;
    ASSERT_OK(lp2p__noise_hs_init(&p->a, 1, &ca));
    ASSERT_OK(lp2p__noise_hs_init(&p->b, 0, &cb));
}

static void pair_close(struct pair *p)
{
    lp2p__noise_hs_close(&p->a);
    lp2p__noise_hs_close(&p->b);
    lp2p__noise_transport_close(&p->ta);
    lp2p__noise_transport_close(&p->tb);
    lp2p_key_wipe(&p->ka);
    lp2p_key_wipe(&p->kb);
}

/* Send `len` bytes from tx to rx, the ciphertext cut into `chunk`-byte
 * pieces; the plaintext must come back intact. */
static void transfer(struct lp2p_noise_transport *tx,
                     struct lp2p_noise_transport *rx, size_t len,
                     size_t chunk)
{
    struct lp2p_buf ct, pt;
    uint8_t *data = malloc(len + 1);
    size_t i, off = 0, frames;
    ASSERT(data != NULL);
    for (i = 0; i < len; i++) {
        data[i] = (uint8_t)(i * 31 + 7);
    }
    lp2p__buf_init(&ct);
    lp2p__buf_init(&pt);
    ASSERT_OK(lp2p__noise_transport_encrypt(tx, data, len, &ct));
    frames = (len + LP2P_NOISE_MAX_PLAIN - 1) / LP2P_NOISE_MAX_PLAIN;
    ASSERT_EQ(ct.len, len + frames * 18);
    if (chunk == 0) {
        chunk = ct.len + 1;
    }
    while (off < ct.len) {
        size_t n = ct.len - off < chunk ? ct.len - off : chunk;
        /* Guarded copies cost a mapping each: only for big pieces. */
        int guard = n >= 1000 || ct.len < 2000;
        uint8_t *g = guard ? test__guarded(ct.data + off, n) : ct.data + off;
        int rv = lp2p__noise_transport_decrypt(rx, g, n, &pt);
        if (guard) {
            test__guarded_free(g, n);
        }
        ASSERT_OK(rv);
        off += n;
    }
    ASSERT_EQ(pt.len, len);
    if (len > 0) {
        ASSERT_MEM_EQ(pt.data, data, len);
    }
    ASSERT_EQ(rx->rlen, 0);
    lp2p__buf_free(&ct);
    lp2p__buf_free(&pt);
    free(data);
}

TEST(noise, back_to_back_real_payloads)
{
    static const size_t sizes[] = {0, 1, 100, 65519, 65520, 200000};
    static const size_t chunks[] = {0, 1, 7, 1000, 65537};
    struct pair p;
    size_t i, j;
    pair_init(&p, YAMUX, 1, YAMUX, 1, NULL);
    ASSERT_OK(handshake(&p, 0));
    ASSERT(lp2p_peer_id_equal(lp2p__noise_hs_remote_id(&p.a), &p.idb));
    ASSERT(lp2p_peer_id_equal(lp2p__noise_hs_remote_id(&p.b), &p.ida));
    ASSERT_MEM_EQ(p.a.remote_pub, p.kb.pub, 32);
    ASSERT_MEM_EQ(p.b.remote_pub, p.ka.pub, 32);
    ASSERT_STR_EQ(lp2p__noise_hs_muxer(&p.a), "/yamux/1.0.0");
    ASSERT_OK(lp2p__noise_hs_split(&p.a, &p.ta));
    ASSERT_OK(lp2p__noise_hs_split(&p.b, &p.tb));
    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        for (j = 0; j < sizeof(chunks) / sizeof(chunks[0]); j++) {
            if (sizes[i] > 1000 && chunks[j] == 1) {
                continue; /* slow under valgrind; small sizes cover it */
            }
            transfer(&p.ta, &p.tb, sizes[i], chunks[j]);
            transfer(&p.tb, &p.ta, sizes[i], chunks[j]);
        }
    }
    pair_close(&p);
}

TEST(noise, handshake_byte_by_byte)
{
    struct pair p;
    size_t chunk;
    for (chunk = 1; chunk <= 3; chunk++) {
        pair_init(&p, NULL, 0, YAMUX, 1, NULL);
        ASSERT_OK(handshake(&p, chunk));
        /* The initiator sent no list: no inlined muxer on either side. */
        ASSERT(lp2p__noise_hs_muxer(&p.a) == NULL);
        ASSERT(lp2p__noise_hs_muxer(&p.b) == NULL);
        ASSERT(lp2p_peer_id_equal(lp2p__noise_hs_remote_id(&p.b), &p.ida));
        pair_close(&p);
    }
}

TEST(noise, msg3_and_transport_data_in_one_chunk)
{
    struct pair p;
    struct lp2p_buf ab, ba, pt;
    int n;
    size_t msg3;
    pair_init(&p, YAMUX, 1, YAMUX, 1, NULL);
    lp2p__buf_init(&ab);
    lp2p__buf_init(&ba);
    lp2p__buf_init(&pt);
    ASSERT_OK(lp2p__noise_hs_start(&p.a, &ab));
    ASSERT_OK(lp2p__noise_hs_start(&p.b, &ba));
    ASSERT_EQ(lp2p__noise_hs_feed(&p.b, ab.data, ab.len, &ba), (int)ab.len);
    ab.len = 0;
    ASSERT_EQ(lp2p__noise_hs_feed(&p.a, ba.data, ba.len, &ab), (int)ba.len);
    msg3 = ab.len;
    ASSERT_OK(lp2p__noise_hs_split(&p.a, &p.ta));
    ASSERT_OK(lp2p__noise_transport_encrypt(&p.ta, (const uint8_t *)"hello",
                                            5, &ab));
    /* Responder: consumes exactly message 3, the rest is transport. */
    n = lp2p__noise_hs_feed(&p.b, ab.data, ab.len, &ba);
    ASSERT_EQ(n, (int)msg3);
    ASSERT(lp2p__noise_hs_done(&p.b));
    ASSERT_ERR(lp2p__noise_hs_feed(&p.b, ab.data, 1, &ba), LP2P_ESTATE);
    ASSERT_OK(lp2p__noise_hs_split(&p.b, &p.tb));
    ASSERT_OK(lp2p__noise_transport_decrypt(&p.tb, ab.data + n,
                                            ab.len - (size_t)n, &pt));
    ASSERT_EQ(pt.len, 5);
    ASSERT_MEM_EQ(pt.data, "hello", 5);
    lp2p__buf_free(&ab);
    lp2p__buf_free(&ba);
    lp2p__buf_free(&pt);
    pair_close(&p);
}

TEST(noise, muxer_selection)
{
    static const char *ab[] = {"/a", "/b"};
    static const char *ba[] = {"/b", "/a"};
    static const char *c[] = {"/c"};
    struct pair p;
    /* First entry of the initiator's list that the responder supports. */
    pair_init(&p, ab, 2, ba, 2, NULL);
    ASSERT_OK(handshake(&p, 0));
    ASSERT_STR_EQ(lp2p__noise_hs_muxer(&p.a), "/a");
    ASSERT_STR_EQ(lp2p__noise_hs_muxer(&p.b), "/a");
    pair_close(&p);
    pair_init(&p, ba, 2, ab, 2, NULL);
    ASSERT_OK(handshake(&p, 0));
    ASSERT_STR_EQ(lp2p__noise_hs_muxer(&p.a), "/b");
    ASSERT_STR_EQ(lp2p__noise_hs_muxer(&p.b), "/b");
    pair_close(&p);
    /* No overlap, or one side without a list: none (multistream next). */
    pair_init(&p, ab, 2, c, 1, NULL);
    ASSERT_OK(handshake(&p, 0));
    ASSERT(lp2p__noise_hs_muxer(&p.a) == NULL);
    ASSERT(lp2p__noise_hs_muxer(&p.b) == NULL);
    pair_close(&p);
    pair_init(&p, ab, 2, NULL, 0, NULL);
    ASSERT_OK(handshake(&p, 0));
    ASSERT(lp2p__noise_hs_muxer(&p.a) == NULL);
    ASSERT(lp2p__noise_hs_muxer(&p.b) == NULL);
    pair_close(&p);
}

TEST(noise, peer_id_mismatch)
{
    struct pair p;
    struct lp2p_key other;
    struct lp2p_peer_id oid;
    struct lp2p_buf ab, ba;
    ASSERT_OK(lp2p_key_generate(&other));
    ASSERT_OK(lp2p_peer_id_from_key(&other, &oid));
    pair_init(&p, YAMUX, 1, YAMUX, 1, &oid);
    lp2p__buf_init(&ab);
    lp2p__buf_init(&ba);
    ASSERT_OK(lp2p__noise_hs_start(&p.a, &ab));
    ASSERT_OK(lp2p__noise_hs_start(&p.b, &ba));
    ASSERT_EQ(lp2p__noise_hs_feed(&p.b, ab.data, ab.len, &ba), (int)ab.len);
    ab.len = 0;
    ASSERT_ERR(lp2p__noise_hs_feed(&p.a, ba.data, ba.len, &ab), LP2P_EPEERID);
    ASSERT_EQ(ab.len, 0); /* message 3 (our identity) never written */
    ASSERT(!lp2p__noise_hs_done(&p.a));
    ASSERT(lp2p__noise_hs_remote_id(&p.a) == NULL);
    ASSERT_ERR(lp2p__noise_hs_feed(&p.a, ba.data, ba.len, &ab), LP2P_ESTATE);
    lp2p__buf_free(&ab);
    lp2p__buf_free(&ba);
    lp2p_key_wipe(&other);
    pair_close(&p);
}

/*
 * A responder that speaks through the XX core with a payload of our
 * choice; returns what the initiator's feed of that msg2 says.
 */
static int initiator_vs_payload(const uint8_t *payload, size_t len)
{
    struct lp2p_key ka;
    struct lp2p_noise_config ca;
    struct lp2p_noise_hs a;
    struct lp2p_noise_xx r;
    struct lp2p_buf ab, ba, junk;
    uint8_t s[32];
    int rv;
    memset(s, 0x42, sizeof(s));
    ASSERT_OK(lp2p_key_generate(&ka));
    memset(&ca, 0, sizeof(ca));
    ca.identity = &ka;
    lp2p__buf_init(&ab);
    lp2p__buf_init(&ba);
    lp2p__buf_init(&junk);
    ASSERT_OK(lp2p__noise_hs_init(&a, 1, &ca));
    ASSERT_OK(lp2p__noise_xx_init(&r, 0, NULL, 0, s, NULL));
    ASSERT_OK(lp2p__noise_hs_start(&a, &ab));
    ASSERT_OK(lp2p__noise_xx_read(&r, ab.data + 2, ab.len - 2, &junk));
    ASSERT_OK(lp2p__buf_append(&ba, "\0\0", 2));
    ASSERT_OK(lp2p__noise_xx_write(&r, payload, len, &ba));
    ba.data[0] = (uint8_t)((ba.len - 2) >> 8);
    ba.data[1] = (uint8_t)(ba.len - 2);
    ab.len = 0;
    rv = lp2p__noise_hs_feed(&a, ba.data, ba.len, &ab);
    if (rv < 0) {
        ASSERT_EQ(ab.len, 0);
    }
    lp2p__noise_hs_close(&a);
    lp2p__noise_xx_close(&r);
    lp2p__buf_free(&ab);
    lp2p__buf_free(&ba);
    lp2p__buf_free(&junk);
    lp2p_key_wipe(&ka);
    return rv < 0 ? rv : 0;
}

TEST(noise, bad_signature_and_bad_payloads)
{
    struct lp2p_key kb, kc;
    struct lp2p_buf pl;
    uint8_t s[32], spub[32], other[32];
    memset(s, 0x42, sizeof(s));
    ASSERT_OK(lp2p__x25519_pub(s, spub));
    memset(other, 0x43, sizeof(other));
    ASSERT_OK(lp2p__x25519_pub(other, other));
    ASSERT_OK(lp2p_key_generate(&kb));
    ASSERT_OK(lp2p_key_generate(&kc));
    lp2p__buf_init(&pl);

    /* Sanity: the right payload passes. */
    ASSERT_OK(lp2p__noise_payload_build(&kb, spub, NULL, 0, &pl));
    ASSERT_OK(initiator_vs_payload(pl.data, pl.len));
    /* One flipped bit in the signature. */
    pl.data[pl.len - 5] ^= 0x01;
    ASSERT_ERR(initiator_vs_payload(pl.data, pl.len), LP2P_EBADSIG);
    /* A valid signature over another static key. */
    pl.len = 0;
    ASSERT_OK(lp2p__noise_payload_build(&kb, other, NULL, 0, &pl));
    ASSERT_ERR(initiator_vs_payload(pl.data, pl.len), LP2P_EBADSIG);
    /* Key of C, signature of B. */
    {
        struct lp2p_buf pc;
        lp2p__buf_init(&pc);
        pl.len = 0;
        ASSERT_OK(lp2p__noise_payload_build(&kb, spub, NULL, 0, &pl));
        ASSERT_OK(lp2p__noise_payload_build(&kc, spub, NULL, 0, &pc));
        memcpy(pl.data + 2, pc.data + 2, 36); /* identity_key field */
        ASSERT_ERR(initiator_vs_payload(pl.data, pl.len), LP2P_EBADSIG);
        /* Truncated signature. */
        ASSERT_ERR(initiator_vs_payload(pc.data, pc.len - 1), LP2P_EPROTO);
        /* Signature field with 63 bytes. */
        pc.data[39] = 63;
        ASSERT_ERR(initiator_vs_payload(pc.data, pc.len - 1), LP2P_EBADSIG);
        lp2p__buf_free(&pc);
    }
    /* Missing fields, garbage, non-Ed25519 key. */
    ASSERT_ERR(initiator_vs_payload(NULL, 0), LP2P_EPROTO);
    ASSERT_ERR(initiator_vs_payload((const uint8_t *)"\x0a\x00", 2),
               LP2P_EPROTO);
    ASSERT_ERR(initiator_vs_payload((const uint8_t *)"\xff\xff\xff", 3),
               LP2P_EPROTO);
    pl.len = 0;
    ASSERT_OK(lp2p__noise_payload_build(&kb, spub, NULL, 0, &pl));
    pl.data[3] = 0x02; /* KeyType secp256k1 */
    ASSERT_ERR(initiator_vs_payload(pl.data, pl.len), LP2P_EUNSUPPORTED);
    lp2p__buf_free(&pl);
    lp2p_key_wipe(&kb);
    lp2p_key_wipe(&kc);
}

TEST(noise, all_zero_dh_rejected)
{
    /* Small-order X25519 points give an all-zero shared secret. */
    static const char *points[] = {
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"};
    size_t i;
    for (i = 0; i < 3; i++) {
        struct lp2p_key kb;
        struct lp2p_noise_config cb;
        struct lp2p_noise_hs b;
        struct lp2p_buf out;
        uint8_t frame[34];
        frame[0] = 0;
        frame[1] = 32;
        unhex32(points[i], frame + 2);
        ASSERT_OK(lp2p_key_generate(&kb));
        memset(&cb, 0, sizeof(cb));
        cb.identity = &kb;
        lp2p__buf_init(&out);
        ASSERT_OK(lp2p__noise_hs_init(&b, 0, &cb));
        ASSERT_OK(lp2p__noise_hs_start(&b, &out));
        ASSERT_ERR(lp2p__noise_hs_feed(&b, frame, sizeof(frame), &out),
                   LP2P_ECRYPTO);
        ASSERT_EQ(out.len, 0);
        lp2p__noise_hs_close(&b);
        lp2p__buf_free(&out);
        lp2p_key_wipe(&kb);
    }
}

static struct pair *ready_pair(void)
{
    struct pair *p = calloc(1, sizeof(*p));
    ASSERT(p != NULL);
    pair_init(p, NULL, 0, NULL, 0, NULL);
    ASSERT_OK(handshake(p, 0));
    ASSERT_OK(lp2p__noise_hs_split(&p->a, &p->ta));
    ASSERT_OK(lp2p__noise_hs_split(&p->b, &p->tb));
    return p;
}

TEST(noise, truncated_and_oversized_frames)
{
    struct pair *p = ready_pair();
    struct lp2p_buf ct, pt;
    uint8_t big[2 + 65535];
    static const uint8_t tiny[] = {0x00, 0x0f, 1, 2, 3};
    lp2p__buf_init(&ct);
    lp2p__buf_init(&pt);
    /* 65520 bytes: one full 65535-byte frame and one of 17. */
    {
        uint8_t *d = calloc(1, 65520);
        ASSERT_OK(lp2p__noise_transport_encrypt(&p->ta, d, 65520, &ct));
        free(d);
    }
    ASSERT_EQ(ct.len, 2 + 65535 + 2 + 17);
    ASSERT_EQ(ct.data[0], 0xff);
    ASSERT_EQ(ct.data[1], 0xff);
    ASSERT_EQ(ct.data[65537], 0x00);
    ASSERT_EQ(ct.data[65538], 17);
    /* Truncated: everything but the last byte gives only the first frame. */
    ASSERT_OK(lp2p__noise_transport_decrypt(&p->tb, ct.data, ct.len - 1, &pt));
    ASSERT_EQ(pt.len, 65519);
    ASSERT_EQ(p->tb.rlen, 18);
    ASSERT_OK(lp2p__noise_transport_decrypt(&p->tb, ct.data + ct.len - 1, 1,
                                            &pt));
    ASSERT_EQ(pt.len, 65520);
    /* A maximal frame of garbage fails authentication, no crash. */
    memset(big, 0xa5, sizeof(big));
    big[0] = 0xff;
    big[1] = 0xff;
    ASSERT_ERR(lp2p__noise_transport_decrypt(&p->tb, big, sizeof(big), &pt),
               LP2P_ECRYPTO);
    ASSERT_ERR(lp2p__noise_transport_decrypt(&p->tb, big, 2, &pt),
               LP2P_ESTATE);
    /* A frame shorter than the tag. */
    ASSERT_ERR(lp2p__noise_transport_decrypt(&p->ta, tiny, sizeof(tiny), &pt),
               LP2P_EPROTO);
    /* Keys are handed out once only. */
    {
        struct lp2p_noise_transport t2;
        ASSERT_ERR(lp2p__noise_hs_split(&p->a, &t2), LP2P_ESTATE);
    }
    pair_close(p);
    free(p);
    p = ready_pair();
    ASSERT_OK(lp2p__noise_transport_decrypt(&p->ta, tiny, 1, &pt));
    ASSERT_ERR(lp2p__noise_transport_decrypt(&p->ta, tiny + 1, 1, &pt),
               LP2P_EPROTO);
    /* The handshake refuses an oversized payload. */
    {
        struct lp2p_noise_xx x;
        struct lp2p_buf o;
        uint8_t s[32];
        memset(s, 7, sizeof(s));
        lp2p__buf_init(&o);
        ASSERT_OK(lp2p__noise_xx_init(&x, 1, NULL, 0, s, NULL));
        ASSERT_ERR(lp2p__noise_xx_write(&x, big, 65535 - 31, &o),
                   LP2P_ETOOBIG);
        ASSERT_OK(lp2p__noise_xx_write(&x, big, 65535 - 32, &o));
        ASSERT_EQ(o.len, 65535);
        lp2p__noise_xx_close(&x);
        lp2p__buf_free(&o);
    }
    /* A handshake message shorter than its tokens. */
    {
        struct lp2p_noise_config cb;
        struct lp2p_noise_hs b;
        struct lp2p_buf o;
        uint8_t m[33] = {0, 31};
        memset(&cb, 0, sizeof(cb));
        cb.identity = &p->kb;
        lp2p__buf_init(&o);
        ASSERT_OK(lp2p__noise_hs_init(&b, 0, &cb));
        ASSERT_OK(lp2p__noise_hs_start(&b, &o));
        ASSERT_ERR(lp2p__noise_hs_feed(&b, m, sizeof(m), &o), LP2P_EPROTO);
        lp2p__noise_hs_close(&b);
        lp2p__buf_free(&o);
    }
    lp2p__buf_free(&ct);
    lp2p__buf_free(&pt);
    pair_close(p);
    free(p);
}

TEST(noise, tampered_ciphertext)
{
    struct pair *p = ready_pair();
    struct lp2p_buf ct, pt;
    size_t pos;
    uint8_t msg[100];
    memset(msg, 'm', sizeof(msg));
    lp2p__buf_init(&ct);
    lp2p__buf_init(&pt);
    for (pos = 2; pos < 2 + 100 + 16; pos += 13) {
        ct.len = 0;
        pt.len = 0;
        ASSERT_OK(lp2p__noise_transport_encrypt(&p->ta, msg, sizeof(msg),
                                                &ct));
        ct.data[pos] ^= 0x80;
        ASSERT_ERR(lp2p__noise_transport_decrypt(&p->tb, ct.data, ct.len,
                                                 &pt),
                   LP2P_ECRYPTO);
        ASSERT_EQ(pt.len, 0);
        /* A fresh session for the next position. */
        pair_close(p);
        free(p);
        p = ready_pair();
    }
    /* A replayed frame is refused (nonce moved on). */
    ct.len = 0;
    ASSERT_OK(lp2p__noise_transport_encrypt(&p->ta, msg, 10, &ct));
    ASSERT_OK(lp2p__noise_transport_decrypt(&p->tb, ct.data, ct.len, &pt));
    ASSERT_ERR(lp2p__noise_transport_decrypt(&p->tb, ct.data, ct.len, &pt),
               LP2P_ECRYPTO);
    /* Tampered handshake message 2: the initiator fails cleanly. */
    {
        struct pair q;
        struct lp2p_buf ab, ba;
        pair_init(&q, NULL, 0, NULL, 0, NULL);
        lp2p__buf_init(&ab);
        lp2p__buf_init(&ba);
        ASSERT_OK(lp2p__noise_hs_start(&q.a, &ab));
        ASSERT_OK(lp2p__noise_hs_start(&q.b, &ba));
        ASSERT_EQ(lp2p__noise_hs_feed(&q.b, ab.data, ab.len, &ba),
                  (int)ab.len);
        ba.data[2 + 40] ^= 1; /* inside the encrypted static key */
        ASSERT_ERR(lp2p__noise_hs_feed(&q.a, ba.data, ba.len, &ab),
                   LP2P_ECRYPTO);
        lp2p__buf_free(&ab);
        lp2p__buf_free(&ba);
        pair_close(&q);
    }
    lp2p__buf_free(&ct);
    lp2p__buf_free(&pt);
    pair_close(p);
    free(p);
}

TEST(noise, nonce_never_wraps)
{
    struct pair *p = ready_pair();
    struct lp2p_buf ct, pt;
    lp2p__buf_init(&ct);
    lp2p__buf_init(&pt);
    p->ta.tx.n = UINT64_MAX - 1;
    p->tb.rx.n = UINT64_MAX - 1;
    ASSERT_OK(lp2p__noise_transport_encrypt(&p->ta, (const uint8_t *)"x", 1,
                                            &ct));
    ASSERT_OK(lp2p__noise_transport_decrypt(&p->tb, ct.data, ct.len, &pt));
    ASSERT_EQ(pt.len, 1);
    ASSERT_EQ_U64(p->ta.tx.n, UINT64_MAX);
    ct.len = 0;
    ASSERT_ERR(lp2p__noise_transport_encrypt(&p->ta, (const uint8_t *)"x", 1,
                                             &ct),
               LP2P_ECRYPTO);
    ASSERT_EQ(ct.len, 0);
    ASSERT_EQ_U64(p->ta.tx.n, UINT64_MAX);
    ASSERT_ERR(lp2p__noise_transport_encrypt(&p->ta, (const uint8_t *)"x", 1,
                                             &ct),
               LP2P_ESTATE);
    /* The receiving side refuses at 2^64-1 too. */
    p->tb.rx.n = UINT64_MAX;
    {
        uint8_t frame[18] = {0, 16};
        ASSERT_ERR(lp2p__noise_transport_decrypt(&p->tb, frame, 18, &pt),
                   LP2P_ECRYPTO);
    }
    lp2p__buf_free(&ct);
    lp2p__buf_free(&pt);
    pair_close(p);
    free(p);
}

TEST(noise, invalid_config_and_state)
{
    struct lp2p_noise_config c;
    struct lp2p_noise_hs hs;
    struct lp2p_noise_transport t;
    struct lp2p_key k;
    struct lp2p_peer_id id;
    struct lp2p_buf out;
    static const char *empty[] = {""};
    lp2p__buf_init(&out);
    ASSERT_OK(lp2p_key_generate(&k));
    ASSERT_OK(lp2p_peer_id_from_key(&k, &id));
    memset(&c, 0, sizeof(c));
    ASSERT_ERR(lp2p__noise_hs_init(&hs, 1, &c), LP2P_EINVAL);
    lp2p__noise_hs_close(&hs);
    c.identity = &k;
    c.muxers = empty;
    c.nmuxers = 1;
    ASSERT_ERR(lp2p__noise_hs_init(&hs, 1, &c), LP2P_EINVAL);
    lp2p__noise_hs_close(&hs);
    c.nmuxers = 0;
    c.expected = &id;
    ASSERT_ERR(lp2p__noise_hs_init(&hs, 0, &c), LP2P_EINVAL);
    lp2p__noise_hs_close(&hs);
    ASSERT_OK(lp2p__noise_hs_init(&hs, 1, &c));
    ASSERT_ERR(lp2p__noise_hs_feed(&hs, (const uint8_t *)"x", 1, &out),
               LP2P_ESTATE);
    ASSERT_ERR(lp2p__noise_hs_split(&hs, &t), LP2P_ESTATE);
    ASSERT_OK(lp2p__noise_hs_start(&hs, &out));
    ASSERT_ERR(lp2p__noise_hs_start(&hs, &out), LP2P_ESTATE);
    ASSERT_ERR(lp2p__noise_hs_set_test_keys(&hs, NULL, NULL), LP2P_ESTATE);
    lp2p__noise_hs_close(&hs);
    lp2p__noise_hs_close(&hs); /* twice is fine */
    lp2p__buf_free(&out);
    lp2p_key_wipe(&k);
}

/* ------------------------------------------------------------------- */
/* OOM sweep over a whole handshake plus one message each way.          */

struct oom_ctx {
    struct lp2p_key ka, kb;
    struct lp2p_peer_id idb;
};

static int oom_body(void *arg)
{
    struct oom_ctx *o = arg;
    struct lp2p_noise_config ca, cb;
    struct lp2p_noise_hs a, b;
    struct lp2p_noise_transport ta, tb;
    struct lp2p_buf ab, ba, pt;
    int rv, n;
    memset(&ca, 0, sizeof(ca));
    memset(&cb, 0, sizeof(cb));
    memset(&ta, 0, sizeof(ta));
    memset(&tb, 0, sizeof(tb));
    ca.identity = &o->ka;
    ca.expected = &o->idb;
    ca.muxers = YAMUX;
    ca.nmuxers = 1;
    cb.identity = &o->kb;
    cb.muxers = YAMUX;
    cb.nmuxers = 1;
    lp2p__buf_init(&ab);
    lp2p__buf_init(&ba);
    lp2p__buf_init(&pt);
    rv = lp2p__noise_hs_init(&a, 1, &ca);
    if (rv == 0) {
        rv = lp2p__noise_hs_init(&b, 0, &cb);
        if (rv != 0) {
            lp2p__noise_hs_close(&a);
            goto out;
        }
    } else {
        goto out;
    }
    /* msg1 split in two feeds so the partial-frame buffer is exercised */
    if ((rv = lp2p__noise_hs_start(&a, &ab)) != 0 ||
        (rv = lp2p__noise_hs_start(&b, &ba)) != 0) {
        goto close;
    }
    if ((n = lp2p__noise_hs_feed(&b, ab.data, 5, &ba)) < 0 ||
        (n = lp2p__noise_hs_feed(&b, ab.data + 5, ab.len - 5, &ba)) < 0) {
        rv = n;
        goto close;
    }
    ab.len = 0;
    if ((n = lp2p__noise_hs_feed(&a, ba.data, ba.len, &ab)) < 0) {
        rv = n;
        goto close;
    }
    if ((n = lp2p__noise_hs_feed(&b, ab.data, ab.len, &ba)) < 0) {
        rv = n;
        goto close;
    }
    if ((rv = lp2p__noise_hs_split(&a, &ta)) != 0 ||
        (rv = lp2p__noise_hs_split(&b, &tb)) != 0) {
        goto close;
    }
    ab.len = 0;
    rv = lp2p__noise_transport_encrypt(&ta, (const uint8_t *)"ping", 4, &ab);
    if (rv == 0) {
        rv = lp2p__noise_transport_decrypt(&tb, ab.data, 3, &pt);
    }
    if (rv == 0) {
        rv = lp2p__noise_transport_decrypt(&tb, ab.data + 3, ab.len - 3, &pt);
    }
    if (rv == 0 && (pt.len != 4 || memcmp(pt.data, "ping", 4) != 0)) {
        rv = LP2P_EINVAL;
    }
close:
    lp2p__noise_hs_close(&a);
    lp2p__noise_hs_close(&b);
    lp2p__noise_transport_close(&ta);
    lp2p__noise_transport_close(&tb);
out:
    lp2p__buf_free(&ab);
    lp2p__buf_free(&ba);
    lp2p__buf_free(&pt);
    return rv;
}

TEST(noise, oom_sweep_handshake)
{
    struct oom_ctx o;
    long n;
    ASSERT_OK(lp2p_key_generate(&o.ka));
    ASSERT_OK(lp2p_key_generate(&o.kb));
    ASSERT_OK(lp2p_peer_id_from_key(&o.kb, &o.idb));
    n = test__oom_sweep(oom_body, &o);
    ASSERT(n >= 8);
    lp2p_key_wipe(&o.ka);
    lp2p_key_wipe(&o.kb);
}

TEST(noise, empty_transport_frame)
{
    /* A frame of just a tag is legal: no plaintext, nonce advances. The
     * output buffer may still be unallocated (fuzzer find: UB on NULL). */
    struct pair *p = ready_pair();
    struct lp2p_buf pt;
    uint8_t frame[18] = {0x00, 0x10};
    lp2p__buf_init(&pt);
    ASSERT_OK(lp2p__noise_cipher_encrypt(&p->ta.tx, NULL, 0, NULL, 0,
                                         frame + 2));
    ASSERT_OK(lp2p__noise_transport_decrypt(&p->tb, frame, sizeof(frame),
                                            &pt));
    ASSERT_EQ(pt.len, 0);
    ASSERT_EQ_U64(p->tb.rx.n, 1);
    /* Garbage of the same shape fails cleanly. */
    ASSERT_ERR(lp2p__noise_transport_decrypt(&p->tb, frame, sizeof(frame),
                                             &pt),
               LP2P_ECRYPTO);
    lp2p__buf_free(&pt);
    pair_close(p);
    free(p);
}
