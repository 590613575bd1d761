/*
 * Ed25519 keys, key files, peer IDs and their multihash/CID forms
 * (src/p2p/key.c and peerid.c, which share p2p/key.h), against the spec
 * vectors and test/vectors/libp2p-keys-peerids.txt (every entry of which
 * is used; a missing section fails the test).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lp2p.h"
#include "oom.h"
#include "p2p/key.h"
#include "test.h"
#include "util/base32.h"
#include "util/base58.h"

#define VECTORS "libp2p-keys-peerids.txt"

/* Parse through a guarded copy that ends with the NUL. */
static int pid_parse(struct lp2p_peer_id *id, const char *s)
{
    size_t n = strlen(s) + 1;
    uint8_t *g = test__guarded(s, n);
    int rv = lp2p_peer_id_parse(id, (const char *)g);
    test__guarded_free(g, n);
    return rv;
}

static int pid_from_bytes(struct lp2p_peer_id *id, const uint8_t *p, size_t n)
{
    uint8_t *g = test__guarded(p, n);
    int rv = lp2p_peer_id_from_bytes(id, g, n);
    test__guarded_free(g, n);
    return rv;
}

static int pub_decode(const uint8_t *p, size_t n, uint8_t pub[32])
{
    uint8_t *g = test__guarded(p, n);
    int rv = lp2p__pubkey_pb_decode(g, n, pub);
    test__guarded_free(g, n);
    return rv;
}

static int key_unmarshal(struct lp2p_key *k, const uint8_t *p, size_t n)
{
    uint8_t *g = test__guarded(p, n);
    int rv = lp2p_key_unmarshal(k, g, n);
    test__guarded_free(g, n);
    return rv;
}

/* ---- the shared vector file ---- */

struct vec_key {
    uint8_t seed[32], pub[32];
    char pub_pb[80], priv_pb[160], peer_id[64], mh[80], cid[80];
};

struct vec_file {
    struct vec_key keys[16];
    int nkeys;
    char spec_pub_pb[80], spec_peer_id[64], spec_cid[80];
    char sign_msg[64], sign_sig[140];
    char ex1_prefix[32], ex1_mh[80], ex1_cid[80];
    char ex2_mh[80], ex2_cid[80];
};

/* Copy the value after `key` in `line` up to white space, or fail. */
static void field(const char *line, const char *key, char *out, size_t cap)
{
    const char *p = strstr(line, key);
    size_t n;
    if (p == NULL) {
        test__fail(__FILE__, __LINE__, "vector line lacks '%s': %s", key, line);
    }
    p += strlen(key);
    while (*p == ' ') {
        p++;
    }
    n = strcspn(p, " \t\n");
    if (n == 0 || n >= cap) {
        test__fail(__FILE__, __LINE__, "bad '%s' value in: %s", key, line);
    }
    memcpy(out, p, n);
    out[n] = '\0';
}

static void unhex_into(const char *hex, uint8_t *out, size_t want)
{
    size_t n;
    uint8_t *p = test__unhex(hex, &n);
    if (n != want) {
        test__fail(__FILE__, __LINE__, "hex %s: %zu bytes, want %zu", hex, n,
                   want);
    }
    memcpy(out, p, n);
    free(p);
}

static void load_vectors(struct vec_file *v)
{
    size_t len;
    char *text = (char *)test__read_vector(VECTORS, &len);
    char *line, *save = NULL;
    struct vec_key *k = NULL;
    int have_spec = 0, have_sign = 0, have_ex1 = 0, have_ex2 = 0, i;
    memset(v, 0, sizeof(*v));
    for (line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "seed=", 5) == 0) {
            char tmp[80];
            unsigned b;
            ASSERT(v->nkeys < 16);
            k = &v->keys[v->nkeys++];
            ASSERT(sscanf(line, "seed=%2xx32", &b) == 1);
            memset(k->seed, (int)b, 32);
            field(line, "pub=", tmp, sizeof(tmp));
            unhex_into(tmp, k->pub, 32);
        } else if (strncmp(line, "  PublicKey pb=", 15) == 0 && k) {
            field(line, "pb=", k->pub_pb, sizeof(k->pub_pb));
        } else if (strncmp(line, "  PrivateKey pb=", 16) == 0 && k) {
            field(line, "pb=", k->priv_pb, sizeof(k->priv_pb));
        } else if (strncmp(line, "  peerId=", 9) == 0 && k) {
            field(line, "peerId=", k->peer_id, sizeof(k->peer_id));
            field(line, "multihash=", k->mh, sizeof(k->mh));
        } else if (strncmp(line, "  cidv1=", 8) == 0 && k) {
            field(line, "cidv1=", k->cid, sizeof(k->cid));
        } else if (strncmp(line, "spec ED25519 vector:", 20) == 0) {
            field(line, "pub pb =", v->spec_pub_pb, sizeof(v->spec_pub_pb));
            field(line, "peerId =", v->spec_peer_id, sizeof(v->spec_peer_id));
            field(line, "cid =", v->spec_cid, sizeof(v->spec_cid));
            have_spec = 1;
            k = NULL;
        } else if (strncmp(line, "spec ED25519 key signs \"", 24) == 0) {
            const char *q = line + 24, *e = strchr(q, '"');
            ASSERT(e != NULL && (size_t)(e - q) < sizeof(v->sign_msg));
            memcpy(v->sign_msg, q, (size_t)(e - q));
            field(e, "->", v->sign_sig, sizeof(v->sign_sig));
            have_sign = 1;
        } else if (strncmp(line, "spec example 12D3KooW", 21) == 0) {
            /* "spec example 12D3KooWD3eck… multihash = ..": the text is
             * abbreviated, keep its ASCII prefix. */
            const char *q = line + 13;
            size_t n = 0;
            while (q[n] != '\0' && (unsigned char)q[n] < 0x80 && q[n] != ' ') {
                n++;
            }
            ASSERT(n > 8 && n < sizeof(v->ex1_prefix));
            memcpy(v->ex1_prefix, q, n);
            field(line, "multihash =", v->ex1_mh, sizeof(v->ex1_mh));
            field(line, "cid =", v->ex1_cid, sizeof(v->ex1_cid));
            have_ex1 = 1;
        } else if (strncmp(line, "spec example Qm", 15) == 0) {
            field(line, "(sha256 multihash) =", v->ex2_mh, sizeof(v->ex2_mh));
            field(line, "cid =", v->ex2_cid, sizeof(v->ex2_cid));
            have_ex2 = 1;
        } else if (strncmp(line, "multiaddr ", 10) == 0 ||
                   strncmp(line, "p2p with CID", 12) == 0) {
            k = NULL; /* test_multiaddr.c reads these */
        }
    }
    free(text);
    if (v->nkeys < 4 || !have_spec || !have_sign || !have_ex1 || !have_ex2) {
        test__fail(__FILE__, __LINE__,
                   "%s: missing section (keys %d, spec %d, sign %d, "
                   "examples %d %d)",
                   VECTORS, v->nkeys, have_spec, have_sign, have_ex1, have_ex2);
    }
    for (i = 0; i < v->nkeys; i++) {
        k = &v->keys[i];
        if (!k->pub_pb[0] || !k->priv_pb[0] || !k->peer_id[0] || !k->mh[0] ||
            !k->cid[0]) {
            test__fail(__FILE__, __LINE__, "%s: key %d lacks a line", VECTORS,
                       i);
        }
    }
}

static void hex_of(const uint8_t *p, size_t n, char *out)
{
    test__hex(p, n, out);
}

TEST(keys, vector_file_keys)
{
    struct vec_file v;
    int i;
    load_vectors(&v);
    for (i = 0; i < v.nkeys; i++) {
        struct vec_key *vk = &v.keys[i];
        struct lp2p_key key, back;
        struct lp2p_peer_id id, id2;
        uint8_t pb[36], priv[LP2P_KEY_MARSHALLED_LEN], pub[32];
        char hex[2 * 80 + 1], s[LP2P_PEER_ID_STRMAX];
        size_t n;
        uint8_t *raw;

        ASSERT_OK(lp2p_key_from_seed(&key, vk->seed));
        ASSERT_MEM_EQ(key.pub, vk->pub, 32);
        lp2p__pubkey_pb_encode(key.pub, pb);
        hex_of(pb, sizeof(pb), hex);
        ASSERT_STR_EQ(hex, vk->pub_pb);
        ASSERT_OK(lp2p_key_marshal(&key, priv));
        hex_of(priv, sizeof(priv), hex);
        ASSERT_STR_EQ(hex, vk->priv_pb);

        /* Decode both protobufs from the vector bytes. */
        raw = test__unhex(vk->priv_pb, &n);
        ASSERT_OK(key_unmarshal(&back, raw, n));
        ASSERT_MEM_EQ(&back, &key, sizeof(key));
        free(raw);
        raw = test__unhex(vk->pub_pb, &n);
        ASSERT_OK(pub_decode(raw, n, pub));
        ASSERT_MEM_EQ(pub, vk->pub, 32);
        ASSERT_OK(lp2p_peer_id_from_pubkey_pb(raw, n, &id2));
        free(raw);

        ASSERT_OK(lp2p_peer_id_from_key(&key, &id));
        ASSERT(lp2p_peer_id_equal(&id, &id2));
        hex_of(id.bytes, id.len, hex);
        ASSERT_STR_EQ(hex, vk->mh);
        ASSERT_OK(lp2p_peer_id_to_string(&id, s, sizeof(s)));
        ASSERT_STR_EQ(s, vk->peer_id);
        ASSERT_OK(lp2p_peer_id_to_cid(&id, s, sizeof(s)));
        ASSERT_STR_EQ(s, vk->cid);

        /* Both text forms parse back to the same multihash. */
        ASSERT_OK(pid_parse(&id2, vk->peer_id));
        ASSERT(lp2p_peer_id_equal(&id, &id2));
        memset(&id2, 0, sizeof(id2));
        ASSERT_OK(pid_parse(&id2, vk->cid));
        ASSERT(lp2p_peer_id_equal(&id, &id2));
        raw = test__unhex(vk->mh, &n);
        ASSERT_OK(pid_from_bytes(&id2, raw, n));
        ASSERT(lp2p_peer_id_equal(&id, &id2));
        free(raw);

        /* Sign and verify with each key. */
        {
            uint8_t sig[LP2P_ED25519_SIGLEN];
            ASSERT_OK(lp2p_key_sign(&key, (const uint8_t *)"msg", 3, sig));
            ASSERT_OK(lp2p_ed25519_verify(key.pub, (const uint8_t *)"msg", 3,
                                          sig));
            ASSERT_ERR(lp2p_ed25519_verify(key.pub, (const uint8_t *)"msh", 3,
                                           sig),
                       LP2P_EBADSIG);
        }
        lp2p_key_wipe(&key);
        lp2p_key_wipe(&back);
    }
}

TEST(keys, vector_file_spec)
{
    struct vec_file v;
    struct lp2p_peer_id id, id2;
    uint8_t pub[32], sig[64];
    char s[LP2P_PEER_ID_STRMAX], hex[200];
    uint8_t *raw;
    size_t n;
    load_vectors(&v);

    /* The peer-ids spec's Ed25519 vector. */
    raw = test__unhex(v.spec_pub_pb, &n);
    ASSERT_OK(pub_decode(raw, n, pub));
    ASSERT_OK(lp2p_peer_id_from_pubkey_pb(raw, n, &id));
    free(raw);
    ASSERT_OK(lp2p_peer_id_to_string(&id, s, sizeof(s)));
    ASSERT_STR_EQ(s, v.spec_peer_id);
    ASSERT_OK(lp2p_peer_id_to_cid(&id, s, sizeof(s)));
    ASSERT_STR_EQ(s, v.spec_cid);
    ASSERT_OK(pid_parse(&id2, v.spec_cid));
    ASSERT(lp2p_peer_id_equal(&id, &id2));

    /* Its signature over the Noise prefix verifies; one flipped bit in
     * message, signature or key does not. */
    unhex_into(v.sign_sig, sig, 64);
    ASSERT_OK(lp2p_ed25519_verify(pub, (const uint8_t *)v.sign_msg,
                                  strlen(v.sign_msg), sig));
    sig[10] ^= 1;
    ASSERT_ERR(lp2p_ed25519_verify(pub, (const uint8_t *)v.sign_msg,
                                   strlen(v.sign_msg), sig),
               LP2P_EBADSIG);
    sig[10] ^= 1;
    ASSERT_ERR(lp2p_ed25519_verify(pub, (const uint8_t *)v.sign_msg,
                                   strlen(v.sign_msg) - 1, sig),
               LP2P_EBADSIG);
    /* Signing: the private key of that vector in the peer-ids spec
     * (peer-ids.md, "Test vectors") has this seed. The file pins it: it must
     * give the file's public key, and then exactly the file's signature
     * (Ed25519 signatures are deterministic). */
    {
        static const char seed_hex[] =
            "7e0830617c4a7de83925dfb2694556b12936c477a0e1feb2e148ec9da60fee7d";
        struct lp2p_key key;
        uint8_t seed[32], mine[64];
        unhex_into(seed_hex, seed, 32);
        ASSERT_OK(lp2p_key_from_seed(&key, seed));
        ASSERT_MEM_EQ(key.pub, pub, 32);
        ASSERT_OK(lp2p_key_sign(&key, (const uint8_t *)v.sign_msg,
                                strlen(v.sign_msg), mine));
        ASSERT_MEM_EQ(mine, sig, 64);
        lp2p_key_wipe(&key);
    }
    pub[0] ^= 1;
    ASSERT_ERR(lp2p_ed25519_verify(pub, (const uint8_t *)v.sign_msg,
                                   strlen(v.sign_msg), sig),
               LP2P_EBADSIG);

    /* Example 1: identity multihash; its text starts with the prefix. */
    raw = test__unhex(v.ex1_mh, &n);
    ASSERT_OK(pid_from_bytes(&id, raw, n));
    free(raw);
    ASSERT_OK(lp2p_peer_id_to_string(&id, s, sizeof(s)));
    ASSERT(strncmp(s, v.ex1_prefix, strlen(v.ex1_prefix)) == 0);
    ASSERT_OK(pid_parse(&id2, s));
    ASSERT(lp2p_peer_id_equal(&id, &id2));
    ASSERT_OK(lp2p_peer_id_to_cid(&id, s, sizeof(s)));
    ASSERT_STR_EQ(s, v.ex1_cid);
    ASSERT_OK(pid_parse(&id2, v.ex1_cid));
    ASSERT(lp2p_peer_id_equal(&id, &id2));

    /* Example 2: a sha2-256 ("Qm") peer ID, an opaque multihash. */
    raw = test__unhex(v.ex2_mh, &n);
    ASSERT_OK(pid_from_bytes(&id, raw, n));
    free(raw);
    ASSERT_OK(lp2p_peer_id_to_string(&id, s, sizeof(s)));
    ASSERT(strncmp(s, "Qm", 2) == 0);
    ASSERT_OK(pid_parse(&id2, s));
    ASSERT(lp2p_peer_id_equal(&id, &id2));
    ASSERT_OK(lp2p_peer_id_to_cid(&id, s, sizeof(s)));
    ASSERT_STR_EQ(s, v.ex2_cid);
    ASSERT_OK(pid_parse(&id2, v.ex2_cid));
    ASSERT(lp2p_peer_id_equal(&id, &id2));
    hex_of(id2.bytes, id2.len, hex);
    ASSERT_STR_EQ(hex, v.ex2_mh);
}

TEST(keys, rsa_sized_pubkey_hashes)
{
    /* A PublicKey protobuf over 42 bytes gets a sha2-256 peer ID. */
    uint8_t pb[43];
    struct lp2p_peer_id id;
    char s[LP2P_PEER_ID_STRMAX];
    memset(pb, 0x5a, sizeof(pb));
    ASSERT_OK(lp2p_peer_id_from_pubkey_pb(pb, 42, &id));
    ASSERT_EQ(id.len, 44);
    ASSERT_EQ(id.bytes[0], 0x00);
    ASSERT_OK(lp2p_peer_id_from_pubkey_pb(pb, 43, &id));
    ASSERT_EQ(id.len, 34);
    ASSERT_EQ(id.bytes[0], 0x12);
    ASSERT_EQ(id.bytes[1], 0x20);
    ASSERT_OK(lp2p_peer_id_to_string(&id, s, sizeof(s)));
    ASSERT(strncmp(s, "Qm", 2) == 0);
    ASSERT_ERR(lp2p_peer_id_from_pubkey_pb(pb, 0, &id), LP2P_EINVAL);
}

TEST(peerid, rejects_bad_text)
{
    struct lp2p_peer_id id;
    char err[128];
    static const char *const malformed[] = {
        "",
        "12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH0", /* '0' */
        "12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH",  /* short */
        "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5",        /* short */
        "bafzaajaiaejcbcui4poxicprsx6vfwznhs5f24wkm4e36hmucin7g5eiag2a632",
        "bafzaajaiaejcbcui4poxicprsx6vfwznhs5f24wkm4e36hmucin7g5eiag2a632A",
        "b",
    };
    size_t i;
    for (i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
        int rv = pid_parse(&id, malformed[i]);
        /* A shortened base58 text is another number altogether, whose
         * first byte may name an unknown hash function. */
        if (rv != LP2P_EMALFORMED && rv != LP2P_ETRUNCATED &&
            rv != LP2P_EUNSUPPORTED) {
            test__fail(__FILE__, __LINE__, "'%s' gave %s", malformed[i],
                       lp2p_errname(rv));
        }
    }
    /* One character more is a different, longer number: rejected. */
    ASSERT(pid_parse(&id, "12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5"
                          "1") < 0);
    /* A CID of another codec: dag-pb (0x70) with the same multihash. */
    ASSERT_ERR(lp2p__peer_id_parse(
                   &id, "bafybeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe",
                   strlen("bafybeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe"),
                   err, sizeof(err)),
               LP2P_EUNSUPPORTED);
    ASSERT(strstr(err, "codec 0x70") != NULL);
    ASSERT(strstr(err, "libp2p-key") != NULL);
    /* Unknown multibase. */
    ASSERT_ERR(lp2p__peer_id_parse(&id, "fabc", 4, err, sizeof(err)),
               LP2P_EUNSUPPORTED);
    /* Another CID version (2) and a multibase 'z' CID of version 1. */
    {
        uint8_t raw[40];
        char txt[80];
        struct lp2p_peer_id ok;
        raw[0] = 0x02;
        raw[1] = 0x72;
        raw[2] = 0x12;
        raw[3] = 0x20;
        memset(raw + 4, 7, 32);
        txt[0] = 'b';
        ASSERT(lp2p__base32_encode(raw, 36, txt + 1, sizeof(txt) - 1) > 0);
        ASSERT_ERR(lp2p__peer_id_parse(&id, txt, strlen(txt), err, sizeof(err)),
                   LP2P_EUNSUPPORTED);
        ASSERT(strstr(err, "version 2") != NULL);
        raw[0] = 0x01;
        txt[0] = 'z';
        ASSERT(lp2p__base58_encode(raw, 36, txt + 1, sizeof(txt) - 1) > 0);
        ASSERT_OK(pid_parse(&ok, txt));
        ASSERT_EQ(ok.len, 34);
        ASSERT_MEM_EQ(ok.bytes, raw + 2, 34);
        /* Trailing byte inside the CID. */
        raw[36] = 0;
        txt[0] = 'b';
        ASSERT(lp2p__base32_encode(raw, 37, txt + 1, sizeof(txt) - 1) > 0);
        ASSERT_ERR(pid_parse(&id, txt), LP2P_ETRAILING);
    }
}

TEST(peerid, rejects_bad_multihash)
{
    struct lp2p_peer_id id;
    static const uint8_t unknown_fn[] = {0x11, 0x02, 1, 2}; /* sha1 */
    static const uint8_t short_sha[] = {0x12, 0x1f, 0};
    static const uint8_t trunc[] = {0x12, 0x20, 1, 2, 3};
    static const uint8_t trailing[] = {0x00, 0x01, 0xaa, 0xbb};
    static const uint8_t empty_id[] = {0x00, 0x00};
    static const uint8_t nonmin[] = {0x80, 0x00, 0x01, 0xaa};
    static const uint8_t big_id[] = {0x00, 63};
    ASSERT_ERR(pid_from_bytes(&id, unknown_fn, sizeof(unknown_fn)),
               LP2P_EUNSUPPORTED);
    ASSERT_ERR(pid_from_bytes(&id, short_sha, sizeof(short_sha)),
               LP2P_EMALFORMED);
    ASSERT_ERR(pid_from_bytes(&id, trunc, sizeof(trunc)), LP2P_ETRUNCATED);
    ASSERT_ERR(pid_from_bytes(&id, trailing, sizeof(trailing)),
               LP2P_ETRAILING);
    ASSERT_ERR(pid_from_bytes(&id, empty_id, sizeof(empty_id)),
               LP2P_EMALFORMED);
    ASSERT_ERR(pid_from_bytes(&id, nonmin, sizeof(nonmin)), LP2P_EMALFORMED);
    ASSERT_ERR(pid_from_bytes(&id, big_id, sizeof(big_id)), LP2P_EMALFORMED);
    ASSERT_ERR(pid_from_bytes(&id, trunc, 0), LP2P_ETRUNCATED);
    ASSERT_ERR(pid_from_bytes(&id, trunc, 1), LP2P_ETRUNCATED);
}

TEST(peerid, output_capacity)
{
    struct lp2p_key key;
    struct lp2p_peer_id id;
    char s[LP2P_PEER_ID_STRMAX];
    uint8_t seed[32];
    memset(seed, 1, 32);
    ASSERT_OK(lp2p_key_from_seed(&key, seed));
    ASSERT_OK(lp2p_peer_id_from_key(&key, &id));
    ASSERT_OK(lp2p_peer_id_to_string(&id, s, sizeof(s)));
    ASSERT_OK(lp2p_peer_id_to_string(&id, s, strlen(s) + 1));
    ASSERT_ERR(lp2p_peer_id_to_string(&id, s, strlen(s)), LP2P_EOVERFLOW);
    ASSERT_OK(lp2p_peer_id_to_cid(&id, s, sizeof(s)));
    ASSERT_OK(lp2p_peer_id_to_cid(&id, s, strlen(s) + 1));
    ASSERT_ERR(lp2p_peer_id_to_cid(&id, s, strlen(s)), LP2P_EOVERFLOW);
    /* The largest peer ID fits the documented maximum in both forms. */
    id.bytes[0] = 0;
    id.bytes[1] = 62;
    memset(id.bytes + 2, 0xff, 62);
    id.len = 64;
    ASSERT_OK(lp2p_peer_id_to_string(&id, s, sizeof(s)));
    ASSERT_OK(lp2p_peer_id_to_cid(&id, s, sizeof(s)));
    {
        struct lp2p_peer_id back;
        ASSERT_OK(pid_parse(&back, s));
        ASSERT(lp2p_peer_id_equal(&id, &back));
    }
}

TEST(keys, generate_sign_verify)
{
    struct lp2p_key a, b, c;
    uint8_t sig[64];
    ASSERT_OK(lp2p_key_generate(&a));
    ASSERT_OK(lp2p_key_generate(&b));
    ASSERT(memcmp(a.seed, b.seed, 32) != 0);
    ASSERT_OK(lp2p_key_from_seed(&c, a.seed));
    ASSERT_MEM_EQ(c.pub, a.pub, 32);
    ASSERT_OK(lp2p_key_sign(&a, NULL, 0, sig));
    ASSERT_OK(lp2p_ed25519_verify(a.pub, NULL, 0, sig));
    ASSERT_ERR(lp2p_ed25519_verify(b.pub, NULL, 0, sig), LP2P_EBADSIG);
    /* from_seed with the key's own seed as input (aliasing). */
    ASSERT_OK(lp2p_key_from_seed(&a, a.seed));
    ASSERT_MEM_EQ(c.pub, a.pub, 32);
    lp2p_key_wipe(&a);
    ASSERT_EQ(a.seed[0] | a.seed[31] | a.pub[0], 0);
    lp2p_key_wipe(&b);
    lp2p_key_wipe(&c);
}

TEST(keys, unmarshal_errors)
{
    struct lp2p_key key;
    uint8_t pb[LP2P_KEY_MARSHALLED_LEN], legacy[100], seed[32];
    uint8_t pub_pb[36], pub[32];
    memset(seed, 9, 32);
    ASSERT_OK(lp2p_key_from_seed(&key, seed));
    ASSERT_OK(lp2p_key_marshal(&key, pb));
    /* Legacy 96-byte data: seed || pub || pub. */
    legacy[0] = 0x08;
    legacy[1] = 0x01;
    legacy[2] = 0x12;
    legacy[3] = 96;
    memcpy(legacy + 4, pb + 4, 64);
    memcpy(legacy + 68, key.pub, 32);
    ASSERT_OK(key_unmarshal(&key, legacy, 100));
    legacy[99] ^= 1;
    ASSERT_ERR(key_unmarshal(&key, legacy, 100), LP2P_EBADKEY);
    /* Truncated anywhere. */
    ASSERT_ERR(key_unmarshal(&key, pb, 0), LP2P_ETRUNCATED);
    ASSERT_ERR(key_unmarshal(&key, pb, 40), LP2P_ETRUNCATED);
    ASSERT_ERR(key_unmarshal(&key, pb, 67), LP2P_ETRUNCATED);
    /* Wrong type (secp256k1). */
    pb[1] = 2;
    ASSERT_ERR(key_unmarshal(&key, pb, sizeof(pb)), LP2P_EUNSUPPORTED);
    pb[1] = 1;
    /* Public half not matching the seed. */
    pb[67] ^= 0x80;
    ASSERT_ERR(key_unmarshal(&key, pb, sizeof(pb)), LP2P_EBADKEY);
    ASSERT_EQ(key.seed[0] | key.pub[0], 0); /* wiped on failure */
    pb[67] ^= 0x80;
    /* Unknown field skipped; missing data rejected. */
    {
        uint8_t x[72];
        x[0] = 0x18; /* field 3 varint */
        x[1] = 0x05;
        x[2] = 0x22; /* field 4 bytes */
        x[3] = 0x00;
        memcpy(x + 4, pb, sizeof(pb));
        ASSERT_OK(key_unmarshal(&key, x, 72));
        ASSERT_ERR(key_unmarshal(&key, x, 6), LP2P_EBADKEY);
    }
    /* Public key protobufs. */
    lp2p__pubkey_pb_encode(key.pub, pub_pb);
    ASSERT_OK(pub_decode(pub_pb, 36, pub));
    ASSERT_MEM_EQ(pub, key.pub, 32);
    pub_pb[1] = 0; /* RSA */
    ASSERT_ERR(pub_decode(pub_pb, 36, pub), LP2P_EUNSUPPORTED);
    pub_pb[1] = 1;
    ASSERT_ERR(pub_decode(pub_pb, 35, pub), LP2P_EBADKEY);
    pub_pb[3] = 31;
    ASSERT_ERR(pub_decode(pub_pb, 35, pub), LP2P_EBADKEY);
    ASSERT_ERR(pub_decode(pub_pb, 2, pub), LP2P_EBADKEY);
    lp2p_key_wipe(&key);
}

static void tmpdir(char *out, size_t cap)
{
    const char *base = getenv("TMPDIR");
    snprintf(out, cap, "%s/p2praft-keyXXXXXX", base ? base : "/tmp");
    ASSERT(mkdtemp(out) != NULL);
}

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    ASSERT(f != NULL);
    ASSERT(fwrite(p, 1, n, f) == n);
    ASSERT(fclose(f) == 0);
}

TEST(keys, file_roundtrip_and_errors)
{
    char dir[256], path[300], other[300];
    struct lp2p_key key, back;
    struct stat st;
    uint8_t pb[LP2P_KEY_MARSHALLED_LEN];
    size_t n;
    uint8_t *raw;
    tmpdir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/identity.key", dir);
    snprintf(other, sizeof(other), "%s/other.key", dir);

    ASSERT_OK(lp2p_key_generate(&key));
    ASSERT_OK(lp2p_key_save(path, &key));
    ASSERT(stat(path, &st) == 0);
    ASSERT_EQ(st.st_mode & 0777, 0600);
    ASSERT_EQ(st.st_size, LP2P_KEY_MARSHALLED_LEN);
    ASSERT_OK(lp2p_key_load(path, &back));
    ASSERT_MEM_EQ(&back, &key, sizeof(key));
    /* The file holds exactly the PrivateKey protobuf. */
    raw = test__read_file(path, &n);
    ASSERT_OK(lp2p_key_marshal(&key, pb));
    ASSERT_EQ(n, sizeof(pb));
    ASSERT_MEM_EQ(raw, pb, n);
    /* Saving again replaces it atomically, leaving no temporary file. */
    ASSERT_OK(lp2p_key_generate(&back));
    ASSERT_OK(lp2p_key_save(path, &back));
    ASSERT_OK(lp2p_key_load(path, &key));
    ASSERT_MEM_EQ(&back, &key, sizeof(key));

    /* Errors, each distinct. */
    ASSERT_ERR(lp2p_key_load(other, &key), LP2P_ENOTFOUND);
    write_file(other, raw, 30);
    ASSERT_ERR(lp2p_key_load(other, &key), LP2P_ETRUNCATED);
    raw[1] = 3; /* ECDSA */
    write_file(other, raw, n);
    ASSERT_ERR(lp2p_key_load(other, &key), LP2P_EUNSUPPORTED);
    raw[1] = 1;
    raw[40] ^= 1; /* public half does not match the seed */
    write_file(other, raw, n);
    ASSERT_ERR(lp2p_key_load(other, &key), LP2P_EBADKEY);
    {
        uint8_t big[5000];
        memset(big, 0, sizeof(big));
        write_file(other, big, sizeof(big));
        ASSERT_ERR(lp2p_key_load(other, &key), LP2P_ETOOBIG);
    }
    ASSERT_ERR(lp2p_key_load(dir, &key), LP2P_EISDIR); /* a directory */
    snprintf(other, sizeof(other), "%s/no/such/dir.key", dir);
    ASSERT_ERR(lp2p_key_save(other, &key), LP2P_ENOTFOUND);
    free(raw);

    snprintf(other, sizeof(other), "%s/other.key", dir);
    ASSERT(unlink(other) == 0);
    ASSERT(unlink(path) == 0);
    ASSERT(rmdir(dir) == 0); /* nothing else left behind */
    lp2p_key_wipe(&key);
    lp2p_key_wipe(&back);
}

static int save_oom_body(void *ctx)
{
    const char *path = ctx;
    struct lp2p_key key;
    uint8_t seed[32];
    memset(seed, 4, 32);
    if (lp2p_key_from_seed(&key, seed) != 0) {
        return -100;
    }
    return lp2p_key_save(path, &key);
}

static int peerid_oom_body(void *ctx)
{
    /* Peer ID text conversions allocate nothing: the sweep checks that
     * they neither allocate nor leak, and still work. */
    struct lp2p_peer_id id, back;
    char s[LP2P_PEER_ID_STRMAX];
    int rv;
    (void)ctx;
    rv = lp2p_peer_id_parse(&id, "12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5");
    if (rv == 0) {
        rv = lp2p_peer_id_to_cid(&id, s, sizeof(s));
    }
    if (rv == 0) {
        rv = lp2p_peer_id_parse(&back, s);
    }
    if (rv == 0) {
        rv = lp2p_peer_id_to_string(&back, s, sizeof(s));
    }
    return rv;
}

TEST(keys, oom_sweep)
{
    char dir[256], path[300];
    tmpdir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/k", dir);
    ASSERT(test__oom_sweep(save_oom_body, path) > 0);
    ASSERT(unlink(path) == 0);
    ASSERT(rmdir(dir) == 0);
    ASSERT_EQ(test__oom_sweep(peerid_oom_body, NULL), 0);
}
