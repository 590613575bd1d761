/*
 * Ed25519 keys through OpenSSL 3 (EVP_PKEY_ED25519, one-shot
 * EVP_DigestSign/Verify with no digest), their PublicKey/PrivateKey
 * protobufs, and key files.
 *
 * OpenSSL allocates with its own allocator, so the lp2p heap hook does not
 * see it; every EVP object is freed before returning, and the OpenSSL
 * error queue is cleared on failure so it does not leak into later calls.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "lp2p.h"
#include "key.h"
#include "pb.h"
#include "../util/heap.h"
#include "../util/log.h"

#define KEY_FILE_MAX 4096

int lp2p_key_from_seed(struct lp2p_key *key, const uint8_t seed[32])
{
    EVP_PKEY *pk;
    size_t publen = sizeof(key->pub);
    uint8_t s[32];
    memcpy(s, seed, 32); /* seed may alias key->seed */
    pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, s, 32);
    if (pk == NULL) {
        OPENSSL_cleanse(s, sizeof(s));
        ERR_clear_error();
        return LP2P_ECRYPTO;
    }
    if (EVP_PKEY_get_raw_public_key(pk, key->pub, &publen) != 1 ||
        publen != 32) {
        EVP_PKEY_free(pk);
        OPENSSL_cleanse(s, sizeof(s));
        ERR_clear_error();
        return LP2P_ECRYPTO;
    }
    EVP_PKEY_free(pk);
    memcpy(key->seed, s, 32);
    OPENSSL_cleanse(s, sizeof(s));
    return 0;
}

int lp2p_key_generate(struct lp2p_key *key)
{
    uint8_t seed[32];
    int rv;
    if (RAND_priv_bytes(seed, sizeof(seed)) != 1) {
        ERR_clear_error();
        return LP2P_ECRYPTO;
    }
    rv = lp2p_key_from_seed(key, seed);
    OPENSSL_cleanse(seed, sizeof(seed));
    return rv;
}

int lp2p_key_sign(const struct lp2p_key *key, const uint8_t *msg, size_t len,
                  uint8_t sig[LP2P_ED25519_SIGLEN])
{
    EVP_PKEY *pk;
    EVP_MD_CTX *ctx;
    size_t siglen = LP2P_ED25519_SIGLEN;
    int rv = LP2P_ECRYPTO;
    static const uint8_t empty[1] = {0};
    if (msg == NULL) {
        msg = empty; /* OpenSSL wants a pointer even for len 0 */
    }
    pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, key->seed, 32);
    if (pk == NULL) {
        goto out;
    }
    ctx = EVP_MD_CTX_new();
    if (ctx == NULL) {
        goto out_pk;
    }
    if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, pk) == 1 &&
        EVP_DigestSign(ctx, sig, &siglen, msg, len) == 1 &&
        siglen == LP2P_ED25519_SIGLEN) {
        rv = 0;
    }
    EVP_MD_CTX_free(ctx);
out_pk:
    EVP_PKEY_free(pk);
out:
    if (rv != 0) {
        ERR_clear_error();
    }
    return rv;
}

int lp2p_ed25519_verify(const uint8_t pub[32], const uint8_t *msg, size_t len,
                        const uint8_t sig[64])
{
    EVP_PKEY *pk;
    EVP_MD_CTX *ctx;
    int rv = LP2P_EBADSIG;
    static const uint8_t empty[1] = {0};
    if (msg == NULL) {
        msg = empty;
    }
    pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, 32);
    if (pk == NULL) {
        ERR_clear_error();
        return LP2P_ECRYPTO;
    }
    ctx = EVP_MD_CTX_new();
    if (ctx == NULL) {
        EVP_PKEY_free(pk);
        ERR_clear_error();
        return LP2P_ECRYPTO;
    }
    if (EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pk) == 1 &&
        EVP_DigestVerify(ctx, sig, LP2P_ED25519_SIGLEN, msg, len) == 1) {
        rv = 0;
    }
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pk);
    if (rv != 0) {
        ERR_clear_error();
    }
    return rv;
}

void lp2p_key_wipe(struct lp2p_key *key)
{
    OPENSSL_cleanse(key, sizeof(*key));
}

void lp2p__pubkey_pb_encode(const uint8_t pub[32], uint8_t out[36])
{
    out[0] = 0x08;
    out[1] = LP2P_KEYTYPE_ED25519;
    out[2] = 0x12;
    out[3] = 32;
    memcpy(out + 4, pub, 32);
}

/* Walk a PublicKey/PrivateKey protobuf {1: Type, 2: Data}; last field wins
 * as protobuf says. Returns 0, or the reader's error. */
static int key_pb_fields(const uint8_t *p, size_t len, int *have_type,
                         uint64_t *type, const uint8_t **data, size_t *dlen)
{
    struct lp2p_pb_reader r;
    struct lp2p_pb_field f;
    int rv;
    *have_type = 0;
    *data = NULL;
    *dlen = 0;
    lp2p__pb_reader_init(&r, p, len);
    while ((rv = lp2p__pb_next(&r, &f)) == 1) {
        if (f.num == 1) {
            if (f.wire != LP2P_PB_VARINT) {
                return LP2P_EMALFORMED;
            }
            *have_type = 1;
            *type = f.u64;
        } else if (f.num == 2) {
            if (f.wire != LP2P_PB_LEN) {
                return LP2P_EMALFORMED;
            }
            *data = f.data;
            *dlen = f.len;
        }
    }
    return rv;
}

int lp2p__pubkey_pb_decode(const uint8_t *pb, size_t len, uint8_t pub[32])
{
    int have_type, rv;
    uint64_t type = 0;
    const uint8_t *data;
    size_t dlen;
    rv = key_pb_fields(pb, len, &have_type, &type, &data, &dlen);
    if (rv != 0 || !have_type || data == NULL) {
        return LP2P_EBADKEY;
    }
    if (type != LP2P_KEYTYPE_ED25519) {
        return LP2P_EUNSUPPORTED;
    }
    if (dlen != 32) {
        return LP2P_EBADKEY;
    }
    memcpy(pub, data, 32);
    return 0;
}

int lp2p_key_marshal(const struct lp2p_key *key, uint8_t out[68])
{
    out[0] = 0x08;
    out[1] = LP2P_KEYTYPE_ED25519;
    out[2] = 0x12;
    out[3] = 64;
    memcpy(out + 4, key->seed, 32);
    memcpy(out + 36, key->pub, 32);
    return 0;
}

int lp2p_key_unmarshal(struct lp2p_key *key, const uint8_t *p, size_t len)
{
    int have_type, rv;
    uint64_t type = 0;
    const uint8_t *data;
    size_t dlen;
    struct lp2p_key k;
    if (len == 0) {
        rv = LP2P_ETRUNCATED;
        goto fail;
    }
    rv = key_pb_fields(p, len, &have_type, &type, &data, &dlen);
    if (rv != 0) {
        rv = rv == LP2P_ETRUNCATED ? LP2P_ETRUNCATED : LP2P_EBADKEY;
        goto fail;
    }
    if (!have_type || data == NULL) {
        rv = LP2P_EBADKEY;
        goto fail;
    }
    if (type != LP2P_KEYTYPE_ED25519) {
        rv = LP2P_EUNSUPPORTED;
        goto fail;
    }
    if (dlen != 64 && dlen != 96) {
        rv = LP2P_EBADKEY;
        goto fail;
    }
    rv = lp2p_key_from_seed(&k, data);
    if (rv != 0) {
        goto fail;
    }
    if (CRYPTO_memcmp(k.pub, data + 32, 32) != 0 ||
        (dlen == 96 && CRYPTO_memcmp(k.pub, data + 64, 32) != 0)) {
        lp2p_key_wipe(&k);
        rv = LP2P_EBADKEY;
        goto fail;
    }
    *key = k;
    lp2p_key_wipe(&k);
    return 0;
fail:
    lp2p_key_wipe(key);
    return rv;
}

/* An errno of a key file operation, as an LP2P_E* code. */
static int file_error(int err)
{
    switch (err) {
    case ENOENT:
    case ENOTDIR:
        return LP2P_ENOTFOUND;
    case EACCES:
    case EPERM:
        return LP2P_EACCESS;
    case EISDIR:
        return LP2P_EISDIR;
    default:
        return LP2P_EIO;
    }
}

/* Make the rename durable: fsync the directory holding `path`. Best
 * effort (some file systems refuse); `buf` has room for path + 1. */
static void sync_dir(const char *path, char *buf)
{
    char *slash;
    int fd;
    strcpy(buf, path);
    slash = strrchr(buf, '/');
    if (slash == NULL) {
        strcpy(buf, ".");
    } else if (slash == buf) {
        buf[1] = '\0';
    } else {
        *slash = '\0';
    }
    fd = open(buf, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        LOG_WARN("key", "cannot open directory %s: %s", buf, strerror(errno));
        return;
    }
    if (fsync(fd) != 0) {
        LOG_DEBUG("key", "fsync of directory %s: %s", buf, strerror(errno));
    }
    close(fd);
}

int lp2p_key_save(const char *path, const struct lp2p_key *key)
{
    uint8_t pb[LP2P_KEY_MARSHALLED_LEN];
    size_t plen = strlen(path), off = 0;
    char *tmp;
    int fd, rv = LP2P_EIO;
    tmp = lp2p__malloc(plen + sizeof(".XXXXXX"));
    if (tmp == NULL) {
        return LP2P_ENOMEM;
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".XXXXXX", sizeof(".XXXXXX"));
    fd = mkstemp(tmp); /* mode 0600 */
    if (fd < 0) {
        rv = file_error(errno);
        LOG_WARN("key", "cannot create %s: %s", tmp, strerror(errno));
        lp2p__free(tmp);
        return rv;
    }
    lp2p_key_marshal(key, pb);
    while (off < sizeof(pb)) {
        ssize_t n = write(fd, pb + off, sizeof(pb) - off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            LOG_WARN("key", "cannot write %s: %s", tmp, strerror(errno));
            goto out_close;
        }
        off += (size_t)n;
    }
    if (fchmod(fd, 0600) != 0 || fsync(fd) != 0) {
        LOG_WARN("key", "cannot sync %s: %s", tmp, strerror(errno));
        goto out_close;
    }
    if (close(fd) != 0) {
        fd = -1;
        LOG_WARN("key", "cannot close %s: %s", tmp, strerror(errno));
        goto out_unlink;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        rv = file_error(errno); /* EISDIR: the path is a directory */
        LOG_WARN("key", "cannot rename %s to %s: %s", tmp, path,
                 strerror(errno));
        goto out_unlink;
    }
    rv = 0;
    sync_dir(path, tmp);
    goto out;
out_close:
    close(fd);
out_unlink:
    unlink(tmp);
out:
    OPENSSL_cleanse(pb, sizeof(pb));
    lp2p__free(tmp);
    return rv;
}

int lp2p_key_load(const char *path, struct lp2p_key *key)
{
    uint8_t buf[KEY_FILE_MAX + 1];
    size_t len = 0;
    struct stat st;
    int fd, rv;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rv = file_error(errno);
        LOG_WARN("key", "cannot open key file %s: %s", path, strerror(errno));
        lp2p_key_wipe(key);
        return rv;
    }
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        /* open() takes a directory for reading; say what it is. */
        LOG_WARN("key", "key file %s is a directory", path);
        close(fd);
        lp2p_key_wipe(key);
        return LP2P_EISDIR;
    }
    while (len < sizeof(buf)) {
        ssize_t n = read(fd, buf + len, sizeof(buf) - len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            rv = file_error(errno);
            LOG_WARN("key", "cannot read key file %s: %s", path,
                     strerror(errno));
            close(fd);
            OPENSSL_cleanse(buf, len);
            lp2p_key_wipe(key);
            return rv;
        }
        if (n == 0) {
            break;
        }
        len += (size_t)n;
    }
    close(fd);
    if (len > KEY_FILE_MAX) {
        LOG_WARN("key", "key file %s is over %d bytes", path, KEY_FILE_MAX);
        OPENSSL_cleanse(buf, len);
        lp2p_key_wipe(key);
        return LP2P_ETOOBIG;
    }
    rv = lp2p_key_unmarshal(key, buf, len);
    OPENSSL_cleanse(buf, len);
    if (rv != 0) {
        LOG_WARN("key", "key file %s: %s", path, lp2p_strerror(rv));
    }
    return rv;
}
