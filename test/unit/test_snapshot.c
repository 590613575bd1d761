/*
 * Snapshots carry a checksum (raft/snapshot.h): the frame's checks, the
 * FSM that writes framed snapshots and refuses damaged ones on restore (at
 * load and on install alike: raft calls the same restore), and
 * DecodeSnapshot's raft path. The bare EncodeSnapshot bytes stay the
 * state's codec output (interop/go/snapshot checks them against Go).
 */
#include <raft.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "p2praft.h"
#include "raft/kv.h"
#include "raft/snapshot.h"
#include "test.h"

static const struct p2praft_type *ST = &p2praft__kv_state_type;

/* A kv state with n keys, encoded bare into *out. */
static void kv_bytes(unsigned n, uint8_t **out, size_t *len)
{
    struct p2praft__kv_state *st = p2praft_value_new(ST), *ns;
    struct p2praft__kv_op op;
    char key[16];
    unsigned i;
    ASSERT(st != NULL);
    for (i = 0; i < n; i++) {
        memset(&op, 0, sizeof(op));
        snprintf(key, sizeof(key), "key%u", i);
        op.kind = P2PRAFT__KV_SET;
        op.key = key;
        op.value.data = (uint8_t *)"value";
        op.value.len = 5;
        ns = p2praft_value_new(ST);
        ASSERT(ns != NULL);
        ASSERT_OK(p2praft__kv_op_ops.apply_to(&op, st, ns, NULL));
        p2praft_value_destroy(ST, st);
        st = ns;
    }
    ASSERT_OK(p2praft_encode_snapshot(ST, st, out, len));
    p2praft_value_destroy(ST, st);
}

/* header + payload in one raft-allocated buffer */
static uint8_t *framed(const uint8_t *payload, size_t len, size_t *flen)
{
    uint8_t *f = raft_malloc(P2PRAFT__SNAP_HEADER + len);
    ASSERT(f != NULL);
    ASSERT_OK(p2praft__snapshot_header(f, payload, len));
    memcpy(f + P2PRAFT__SNAP_HEADER, payload, len);
    *flen = P2PRAFT__SNAP_HEADER + len;
    return f;
}

TEST(snapshot, frame_checks_every_byte)
{
    uint8_t *bare, *f;
    const uint8_t *payload;
    size_t len, flen, plen, i;
    char why[128];
    kv_bytes(100, &bare, &len);
    /* the bare bytes are the codec's msgpack map, not a frame */
    ASSERT(!p2praft__snapshot_is_framed(bare, len));
    f = framed(bare, len, &flen);
    ASSERT(p2praft__snapshot_is_framed(f, flen));
    ASSERT_OK(p2praft__snapshot_unframe(f, flen, &payload, &plen, why,
                                        sizeof(why)));
    ASSERT_EQ(plen, len);
    ASSERT_MEM_EQ(payload, bare, len);
    /* any byte changed, anywhere, is refused (and still looks framed, so
     * it is never taken for bare bytes) */
    for (i = 0; i < flen; i++) {
        f[i] ^= 0x20;
        ASSERT(p2praft__snapshot_is_framed(f, flen));
        ASSERT_ERR(p2praft__snapshot_unframe(f, flen, &payload, &plen, why,
                                             sizeof(why)),
                   P2PRAFT_ECORRUPT);
        f[i] ^= 0x20;
    }
    /* cut short or extended */
    ASSERT_ERR(p2praft__snapshot_unframe(f, flen - 1, &payload, &plen, why,
                                         sizeof(why)),
               P2PRAFT_ECORRUPT);
    ASSERT(strstr(why, "follow") != NULL);
    ASSERT_ERR(p2praft__snapshot_unframe(f, 10, &payload, &plen, why,
                                         sizeof(why)),
               P2PRAFT_ECORRUPT);
    f[flen / 2] ^= 1;
    ASSERT_ERR(p2praft__snapshot_unframe(f, flen, &payload, &plen, why,
                                         sizeof(why)),
               P2PRAFT_ECORRUPT);
    ASSERT(strstr(why, "SHA-256") != NULL);
    raft_free(f);
    p2praft_free(bare);
}

TEST(snapshot, decode_snapshot_raft_path)
{
    struct p2praft__kv_state *st = p2praft_value_new(ST);
    uint8_t *bare, *f;
    size_t len, flen;
    kv_bytes(100, &bare, &len);
    f = framed(bare, len, &flen);
    /* bare bytes (as go-libp2p-raft writes them) and framed ones decode */
    ASSERT_OK(p2praft_decode_snapshot(ST, st, bare, len));
    ASSERT_EQ(st->data.len, 100);
    ASSERT_OK(p2praft_decode_snapshot(ST, st, f, flen));
    ASSERT_EQ(st->data.len, 100);
    /* a framed snapshot whose state bytes changed is refused, and the
     * target keeps its value */
    f[flen - 10] ^= 0x01;
    ASSERT_ERR(p2praft_decode_snapshot(ST, st, f, flen), P2PRAFT_ECORRUPT);
    ASSERT_EQ(st->data.len, 100);
    f[0] = 0x80; /* damage to the first byte does not make it "bare" */
    ASSERT_ERR(p2praft_decode_snapshot(ST, st, f, flen), P2PRAFT_ECORRUPT);
    p2praft_value_destroy(ST, st);
    raft_free(f);
    p2praft_free(bare);
}

/* Run the loop until the consensus's handles are closed. */
static void consensus_free(uv_loop_t *loop, struct p2praft_consensus *c)
{
    p2praft_consensus_free(c);
    while (uv_run(loop, UV_RUN_NOWAIT) != 0) {
    }
}

TEST(snapshot, fsm_writes_frames_and_refuses_damage)
{
    uv_loop_t loop;
    struct p2praft_consensus *c;
    struct raft_fsm *fsm;
    struct raft_buffer *bufs = NULL, in;
    struct p2praft__kv_state *got;
    unsigned n_bufs = 0, i;
    uint8_t *bare, *f, *whole;
    size_t len, flen, total = 0;
    ASSERT(uv_loop_init(&loop) == 0);
    ASSERT_OK(p2praft_oplog_new(&c, &loop, ST, &p2praft__kv_op_ops, NULL));
    fsm = p2praft_consensus_fsm(c);

    /* restore (what raft does at load and on install) a framed state */
    kv_bytes(100, &bare, &len);
    f = framed(bare, len, &flen);
    in.base = f;
    in.len = flen;
    ASSERT_OK(fsm->restore(fsm, &in)); /* takes f */
    ASSERT_EQ(p2praft_consensus_restored(c), 1);

    /* its snapshot is framed: header + state, which check out */
    ASSERT_OK(fsm->snapshot(fsm, &bufs, &n_bufs));
    ASSERT_EQ(n_bufs, 2);
    for (i = 0; i < n_bufs; i++) {
        total += bufs[i].len;
    }
    whole = raft_malloc(total);
    ASSERT(whole != NULL);
    for (total = 0, i = 0; i < n_bufs; i++) {
        memcpy(whole + total, bufs[i].base, bufs[i].len);
        total += bufs[i].len;
    }
    ASSERT_OK(fsm->snapshot_finalize(fsm, &bufs, &n_bufs));
    ASSERT_EQ(total, flen);
    ASSERT_MEM_EQ(whole + P2PRAFT__SNAP_HEADER, bare, len);

    /* one byte of the state changed: refused, the state stays */
    whole[total - 3] ^= 0x04;
    in.base = whole;
    in.len = total;
    ASSERT_EQ(fsm->restore(fsm, &in), RAFT_CORRUPT);
    ASSERT_EQ(p2praft_consensus_restored(c), 1);
    ASSERT_OK(p2praft_consensus_get_current_state(c, (void **)&got));
    ASSERT_EQ(got->data.len, 100);
    p2praft_value_destroy(ST, got);
    raft_free(whole); /* raft frees a refused snapshot */

    /* bare bytes (an older p2praft's snapshot) still load */
    whole = raft_malloc(len);
    ASSERT(whole != NULL);
    memcpy(whole, bare, len);
    in.base = whole;
    in.len = len;
    ASSERT_OK(fsm->restore(fsm, &in));
    ASSERT_EQ(p2praft_consensus_restored(c), 2);

    p2praft_free(bare);
    consensus_free(&loop, c);
    ASSERT(uv_loop_close(&loop) == 0);
}
