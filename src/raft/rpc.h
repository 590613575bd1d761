/*
 * The raft message codec of P2PRAFT_PROTOCOL (/p2praft/raft/2.0.0): libraft
 * `struct raft_message`s to and from the bytes of a raft stream. Sans-I/O:
 * bytes in, messages out, and the other way round; no sockets, no clock.
 *
 * A stream carries frames, back to back:
 *
 *   u32 big-endian H | header (H bytes) | payload (size given by the header)
 *
 * header = u8 type (libraft's enum raft_message_type) | u8 version (the
 * message's `version` field, passed through) | the type's fields, every
 * integer big-endian, and nothing after them:
 *
 *   1 AppendEntries        u64 term, prev_log_index, prev_log_term,
 *                          leader_commit | u32 n | n x (u64 term, u8 type,
 *                          u32 len)               payload: the n entries'
 *                                                 data, concatenated
 *   2 AppendEntriesResult  u64 term, rejected, last_log_index | u16 features,
 *                          capacity
 *   3 RequestVote          u64 term, last_log_index, last_log_term |
 *                          u8 flags (1 disrupt_leader, 2 pre_vote)
 *   4 RequestVoteResult    u64 term | u8 flags (1 vote_granted, 2 pre_vote) |
 *                          u16 features, capacity
 *   5 InstallSnapshot      u64 term, last_index, last_term, conf_index,
 *                          data_len | u32 n | n x (u64 id, u8 role,
 *                          u16 len, len bytes of address)
 *                                                 payload: data_len bytes
 *   6 TimeoutNow           u64 term, last_log_index, last_log_term
 *
 * The sender's identity is not on the wire: the receiver takes it from the
 * stream (the Noise-authenticated peer) and fills server_id,
 * server_address and RequestVote's candidate_id itself.
 *
 * Decoding is incremental: feed any chunking; the payload of a large
 * AppendEntries or InstallSnapshot is copied straight from the input into
 * the buffer libraft will own (one raft_malloc() for all entries of a
 * message, entries[i].batch pointing at it), so a message is never held
 * twice. What libraft would trip over is refused as malformed instead:
 * unknown types, flags or entry types, a zero entry term, prev_log_term
 * not matching prev_log_index == 0, a snapshot with index or term 0, an
 * empty or invalid configuration, a header of the wrong length.
 */
#ifndef P2PRAFT_RAFT_RPC_H
#define P2PRAFT_RAFT_RPC_H

#include <raft.h>
#include <stddef.h>
#include <stdint.h>

/* Largest header: enough for 65536 entries of one AppendEntries. */
#define P2PRAFT__RPC_HEADER_MAX (1024u * 1024u)
#define P2PRAFT__RPC_ENTRIES_MAX 65536u
#define P2PRAFT__RPC_SERVERS_MAX 4096u
/* Bytes of the fixed part of a small message, length prefix included: the
 * largest header of the four entry-less types, and of an AppendEntries
 * without entries. */
#define P2PRAFT__RPC_SMALL_MAX 48u

/*
 * Bytes of the frame prefix and header (not the payload) that encoding `m`
 * takes, into *len. 0, LP2P_EINVAL (unknown type, too many entries or
 * servers, an address longer than 65535 bytes) or LP2P_ETOOBIG (header
 * over P2PRAFT__RPC_HEADER_MAX).
 */
int p2praft__rpc_header_len(const struct raft_message *m, size_t *len);

/* Write the length prefix and header of `m` (borrowed) into out, exactly
 * the *len of p2praft__rpc_header_len(). */
void p2praft__rpc_header_write(const struct raft_message *m, uint8_t *out);

/* Payload bytes that follow the header of `m`. */
uint64_t p2praft__rpc_payload_len(const struct raft_message *m);

struct p2praft__rpc_dec {
    uint64_t max_payload; /* largest payload accepted */
    int state;
    uint8_t pre[4];       /* length prefix being read */
    size_t pre_got;
    uint32_t hlen;
    uint8_t *hdr;         /* header split across feeds (lp2p heap) */
    size_t hdr_got;
    struct raft_message msg; /* being decoded: owns what it points at */
    uint8_t *payload;     /* destination of the payload (raft heap) */
    uint64_t payload_len, payload_got;
};

/* A decoder that accepts payloads up to max_payload bytes. */
void p2praft__rpc_dec_init(struct p2praft__rpc_dec *d, uint64_t max_payload);

/* Free a message decoded halfway. The decoder may be fed again after init. */
void p2praft__rpc_dec_close(struct p2praft__rpc_dec *d);

/* Is the decoder between frames (nothing of a message buffered)? */
int p2praft__rpc_dec_idle(const struct p2praft__rpc_dec *d);

/*
 * Feed up to `n` bytes of `p` (borrowed). *consumed receives how many were
 * used. Returns 1 when *out holds a whole message, 0 when all n bytes were
 * used without completing one, or an error: LP2P_EMALFORMED, LP2P_ETOOBIG
 * (header or payload over the limits), LP2P_ENOMEM; after an error the
 * stream is unusable (close the decoder). A message in *out owns memory
 * allocated with raft_malloc(), exactly as libraft's recv callback expects:
 * AppendEntries' entries array and its one batch (NULL and 0 entries
 * allowed), InstallSnapshot's conf and data. Its server_id, server_address
 * and request_vote.candidate_id are left 0/NULL for the caller. Pass it to
 * libraft or free it with p2praft__rpc_message_release().
 */
int p2praft__rpc_dec_feed(struct p2praft__rpc_dec *d, const uint8_t *p,
                          size_t n, size_t *consumed, struct raft_message *out);

/*
 * libraft 0.22.1 answers an AppendEntries of a stale term with a rejection
 * whose last_log_index it never sets (whatever its stack held: garbage on
 * the wire, and memory that leaves the process). When `m` is such a result
 * (rejected, of a term above `ae_term`, the term of the last AppendEntries
 * from its destination), set last_log_index as libraft's other rejections
 * do: min(last_index, rejected - 1). The receiver steps down on the term
 * anyway; the field just becomes defined.
 */
void p2praft__rpc_fix_stale_reject(struct raft_message *m, raft_term ae_term,
                                   raft_index last_index);

/* Free what a decoded message owns (entries and batch, or conf and data). */
void p2praft__rpc_message_release(struct raft_message *m);

#endif
