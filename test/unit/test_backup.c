/*
 * Backups (raft/backup.h): what `snapshot save` writes and `restore`
 * reads. A backup round-trips (index, term, configuration, state); every
 * single changed byte, a truncation at any length and an extra byte are
 * refused with a sentence; the public check reports what it holds.
 */
#include <raft.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "p2praft.h"
#include "raft/backup.h"
#include "raft/kv.h"
#include "test.h"
#include "util/buf.h"

static const struct p2praft_type *ST = &p2praft__kv_state_type;

/* A kv state with n keys (one with binary bytes), encoded. */
static void kv_bytes(unsigned n, uint8_t **out, size_t *len)
{
    struct p2praft__kv_state *st = p2praft_value_new(ST);
    struct p2praft__kv_op op;
    struct p2praft__kv_result res;
    char key[16];
    unsigned i;
    ASSERT(st != NULL);
    for (i = 0; i < n; i++) {
        memset(&op, 0, sizeof(op));
        snprintf(key, sizeof(key), "key%u", i);
        op.kind = P2PRAFT__KV_SET;
        op.key = key;
        op.value.data = (uint8_t *)(i == 0 ? "\x00\xff\x01" : "value");
        op.value.len = i == 0 ? 3 : 5;
        ASSERT_OK(p2praft__kv_op_ops.apply_in_place(&op, st, &res, NULL));
    }
    ASSERT_OK(p2praft_encode_snapshot(ST, st, out, len));
    p2praft_value_destroy(ST, st);
}

static const char *const PEERS[3] = {
    "12D3KooWNnrveEpLpCp98HYtHvRMWF7eNqviwQNsxWHYMpN4a35d",
    "12D3KooWHQZQu3hNtJgQXjW2Wzgtji2ML8pE7KDuMBKWeh4YY19m",
    "12D3KooWMUZAcHnUzWsvUVR1JrBh7NppgsV1Atm7kz83SJVdTz8h"};

static void make_backup(unsigned keys, struct lp2p_buf *b)
{
    struct raft_configuration conf;
    uint8_t *payload;
    size_t plen;
    unsigned i;
    raft_configuration_init(&conf);
    for (i = 0; i < 3; i++) {
        uint64_t id;
        ASSERT_OK(p2praft_server_id_parse(PEERS[i], &id));
        ASSERT_OK(raft_configuration_add(&conf, id, PEERS[i], RAFT_VOTER));
    }
    kv_bytes(keys, &payload, &plen);
    lp2p__buf_init(b);
    ASSERT_OK(p2praft__backup_encode(1234, 7, &conf, payload, plen, b));
    raft_configuration_close(&conf);
    p2praft_free(payload);
}

TEST(backup, round_trip)
{
    struct lp2p_buf b;
    struct p2praft__backup bk;
    struct p2praft_backup_info info;
    char why[256];
    make_backup(50, &b);
    /* what `snapshot save` checks before it replaces a file */
    ASSERT(b.len > P2PRAFT_BACKUP_MAGIC_LEN);
    ASSERT(memcmp(b.data, P2PRAFT_BACKUP_MAGIC, P2PRAFT_BACKUP_MAGIC_LEN) == 0);
    ASSERT_OK(p2praft__backup_parse(b.data, b.len, &bk, why, sizeof(why)));
    ASSERT_EQ_U64(bk.index, 1234);
    ASSERT_EQ_U64(bk.term, 7);
    ASSERT_EQ_U64(bk.keys, 50);
    ASSERT_EQ_U64(bk.conf.n, 3);
    ASSERT_STR_EQ(bk.conf.servers[1].address, PEERS[1]);
    ASSERT_EQ_U64(bk.state_len, bk.payload_len + 56);
    p2praft__backup_release(&bk);
    ASSERT_OK(p2praft_backup_check(b.data, b.len, &info, why, sizeof(why)));
    ASSERT_EQ_U64(info.index, 1234);
    ASSERT_EQ_U64(info.keys, 50);
    ASSERT_EQ_U64(info.n_members, 3);
    ASSERT_STR_EQ(info.members[2], PEERS[2]);
    lp2p__buf_free(&b);
}

TEST(backup, every_changed_byte_is_refused)
{
    struct lp2p_buf b;
    struct p2praft__backup bk;
    char why[256];
    size_t i;
    make_backup(20, &b);
    for (i = 0; i < b.len; i++) {
        b.data[i] ^= 0x20;
        why[0] = '\0';
        ASSERT_ERR(p2praft__backup_parse(b.data, b.len, &bk, why,
                                         sizeof(why)),
                   LP2P_ECORRUPT);
        ASSERT(why[0] != '\0');
        b.data[i] ^= 0x20;
    }
    ASSERT_OK(p2praft__backup_parse(b.data, b.len, &bk, why, sizeof(why)));
    p2praft__backup_release(&bk);
    lp2p__buf_free(&b);
}

TEST(backup, truncated_or_extended_is_refused)
{
    struct lp2p_buf b;
    struct p2praft__backup bk;
    char why[256];
    size_t len;
    make_backup(20, &b);
    for (len = 0; len < b.len; len++) {
        /* a copy of exactly len bytes: an over-read would show under
         * ASan or valgrind */
        uint8_t *p = malloc(len > 0 ? len : 1);
        ASSERT(p != NULL);
        memcpy(p, b.data, len);
        ASSERT_ERR(p2praft__backup_parse(p, len, &bk, why, sizeof(why)),
                   LP2P_ECORRUPT);
        free(p);
    }
    ASSERT(strstr(why, "truncated") != NULL);
    ASSERT_OK(lp2p__buf_append(&b, "x", 1));
    ASSERT_ERR(p2praft__backup_parse(b.data, b.len, &bk, why, sizeof(why)),
               LP2P_ECORRUPT);
    ASSERT(strstr(why, "extra") != NULL);
    ASSERT_ERR(p2praft_backup_check((const uint8_t *)"{\"entries\":[]}", 14,
                                    NULL, why, sizeof(why)),
               P2PRAFT_ECORRUPT);
    ASSERT(strstr(why, "not a p2praft backup") != NULL);
    lp2p__buf_free(&b);
}
