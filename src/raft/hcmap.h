/*
 * Translation between hashicorp/raft's RPCs (hcwire.h) and libraft's
 * `struct raft_message`, so that a p2praft node can speak /raft/1.0.0/rpc
 * with go-libp2p-raft nodes at the message level: the hashicorp codec is a
 * second encoder/decoder under libraft, not a second raft. Sans-I/O: no
 * sockets, no clock; doc/hashicorp-wire.md is the specification.
 *
 * Identities: a hashicorp ServerID and ServerAddress are both the peer ID
 * string; the raft ID is p2praft_server_id() of it, through a resolver the
 * caller supplies (`struct p2praft__hc_map`). The sender of an inbound
 * request is the Noise-authenticated peer of its stream (`from`); every
 * identity inside the request (RPCHeader ID and Addr, Leader, Candidate)
 * must name that same peer or the request is refused (LP2P_EPEERID).
 *
 * hashicorp answers each request on its own stream; libraft answers with
 * separate messages, sometimes later (after persisting entries), sometimes
 * covering several requests, and answers InstallSnapshot with an
 * AppendEntries result. So each request on a stream leaves a
 * `struct p2praft__hc_pending` behind: an outbound one tells how to read
 * its response (p2praft__hc_decode_response), an inbound one which libraft
 * result answers it (p2praft__hc_reply_matches) and how
 * (p2praft__hc_encode_reply).
 *
 * Memory: raft_message contents this module builds for libraft (entries,
 * their batch, snapshot data, configurations) come from raft_malloc(), as
 * libraft frees them after delivery; p2praft__hc_message_release() frees
 * them when a message is not delivered. Everything else goes through the
 * heap hook.
 */
#ifndef P2PRAFT_RAFT_HCMAP_H
#define P2PRAFT_RAFT_HCMAP_H

#include <raft.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/hcwire.h"
#include "util/buf.h"

/* Map a hashicorp ServerID (`len` bytes, not NUL-terminated) to its raft ID:
 * 0, or an error when it is not an identity this node accepts. */
typedef int (*p2praft__hc_resolve_fn)(void *ctx, const uint8_t *id,
                                      size_t len, raft_id *out);

struct p2praft__hc_map {
    const char *local_id;           /* our peer ID string (borrowed) */
    p2praft__hc_resolve_fn resolve; /* NULL: p2praft__hc_resolve_peer_id */
    void *resolve_ctx;
};

/* The default resolver: p2praft_server_id() of a valid peer ID string. */
int p2praft__hc_resolve_peer_id(void *ctx, const uint8_t *id, size_t len,
                                raft_id *out);

/* What one request leaves behind on its stream. */
struct p2praft__hc_pending {
    uint8_t type;              /* enum p2praft__hc_rpc */
    raft_term term;            /* the request's term (0 for TimeoutNow) */
    raft_index prev_log_index; /* AppendEntries */
    unsigned n_entries;        /* AppendEntries */
    raft_index last_index;     /* InstallSnapshot: LastLogIndex */
};

/* Local facts a hashicorp message lacks (TimeoutNow carries no term or log
 * position; a stale-term rejection reports the last index). The raft I/O
 * knows them: current term from struct raft, last index and term from the
 * log it stores. */
struct p2praft__hc_local {
    raft_term current_term;
    raft_index last_index;
    raft_term last_term;
};

/* ---- configurations and roles ------------------------------------------ */

/* Suffrage <-> role: Voter <-> RAFT_VOTER, Nonvoter <-> RAFT_STANDBY,
 * Staging <-> RAFT_SPARE. LP2P_EUNSUPPORTED for anything else. */
int p2praft__hc_role_of(int64_t suffrage, int *role);
int p2praft__hc_suffrage_of(int role, int64_t *suffrage);

/* hashicorp Configuration -> libraft configuration (servers added with
 * raft_configuration_add: free with raft_configuration_close). Each server
 * must have ID == Address, resolvable; LP2P_EPROTO otherwise. */
int p2praft__hc_conf_to_raft(const struct p2praft__hc_map *m,
                             const struct p2praft__hc_configuration *hc,
                             struct raft_configuration *out);

/* libraft configuration -> hashicorp Configuration: ID = Address = the
 * server's peer ID string: its address, or the /p2p/ part of an address
 * that is a multiaddr (go-libp2p-raft dials an Address as a peer ID); it
 * must resolve to the server's raft ID (LP2P_EPROTO otherwise).
 * out->servers is allocated (release with p2praft__hc_conf_release()); its
 * strings borrow from `conf`. */
int p2praft__hc_conf_from_raft(const struct p2praft__hc_map *m,
                               const struct raft_configuration *conf,
                               struct p2praft__hc_configuration *out);

/* ---- requests we send ---------------------------------------------------- */

/*
 * Append the hashicorp request for libraft's outbound `msg` (AppendEntries,
 * RequestVote (pre_vote: RequestPreVote, type 4), InstallSnapshot,
 * TimeoutNow) to `wire` and fill `*pending`. For InstallSnapshot only the
 * request is appended: the caller sends msg->install_snapshot.data right
 * after it. LP2P_EINVAL for result messages (they are replies: see
 * p2praft__hc_encode_reply), LP2P_EPROTO for a configuration whose
 * addresses do not resolve to its IDs, LP2P_ENOMEM.
 */
int p2praft__hc_encode_request(const struct p2praft__hc_map *m,
                               const struct raft_message *msg,
                               struct lp2p_buf *wire,
                               struct p2praft__hc_pending *pending);

/*
 * The response to a request we sent (`p`), from `from` (its raft ID and
 * address, borrowed by *out): 0 with *deliver set when `out` is a message
 * for libraft's recv callback; *deliver false when the response carries
 * nothing for libraft (TimeoutNow responses, error responses). Never
 * allocates.
 */
int p2praft__hc_decode_response(const struct p2praft__hc_pending *p,
                                const struct p2praft__hc_resp *resp,
                                raft_id from_id, const char *from,
                                struct raft_message *out, bool *deliver);

/* ---- requests we receive --------------------------------------------------- */

/*
 * libraft's message for an inbound request from `from` (authenticated
 * peer; its raft ID `from_id`). For InstallSnapshot, `snapshot` holds the
 * `Size` bytes that followed the request (copied). `local` fills what
 * TimeoutNow lacks. Fills *pending for the reply. On success the caller
 * hands *out to libraft (which frees its contents) or calls
 * p2praft__hc_message_release(). Errors (nothing allocated is left):
 * LP2P_EPEERID (an identity in the request is not `from`),
 * LP2P_EUNSUPPORTED (protocol version below 2 or above 3, snapshot version
 * other than 1, deprecated or unknown entry types, entry Extensions, data
 * in noop or barrier entries), LP2P_EPROTO (violates what libraft relies
 * on: entry indexes not following PrevLogEntry, terms zero, decreasing or
 * above the request's, PrevLogEntry/PrevLogTerm zero on one side only, a
 * snapshot without index, term or configuration, a bad configuration),
 * LP2P_EINVAL (snapshot size mismatch), LP2P_ENOMEM.
 */
int p2praft__hc_decode_request(const struct p2praft__hc_map *m,
                               const struct p2praft__hc_req *req,
                               const uint8_t *snapshot, size_t snapshot_len,
                               const struct p2praft__hc_local *local,
                               raft_id from_id, const char *from,
                               struct raft_message *out,
                               struct p2praft__hc_pending *pending);

/* Free what p2praft__hc_decode_request() allocated in `msg`. */
void p2praft__hc_message_release(struct raft_message *msg);

/*
 * Whether libraft's `result` (an AppendEntries or RequestVote result sent
 * to the peer of an inbound request `q`) is the answer to `q`:
 * - AppendEntries: success (rejected 0, same term) answers every pending
 *   request whose PrevLogEntry + entries <= last_log_index; a rejection
 *   answers the one whose PrevLogEntry is the rejected index; a higher term
 *   (the leader is stale) answers any;
 * - InstallSnapshot: an AppendEntries result with rejected 0 and
 *   last_log_index >= the snapshot's index, or rejected == that index, or
 *   a higher term;
 * - RequestVote / RequestPreVote: a vote result with the same pre-vote
 *   flag, whose term is the request's (pre-vote) or at least it (vote).
 * The raft I/O answers its pending requests in stream order.
 */
bool p2praft__hc_reply_matches(const struct p2praft__hc_pending *q,
                               const struct raft_message *result);

/*
 * Append the hashicorp response to `q` made from libraft's `result` (which
 * must match it) to `wire`. `local` gives LastLog for stale-term
 * rejections. LP2P_EINVAL if `result` cannot answer `q`.
 */
int p2praft__hc_encode_reply(const struct p2praft__hc_map *m,
                             const struct p2praft__hc_pending *q,
                             const struct raft_message *result,
                             const struct p2praft__hc_local *local,
                             struct lp2p_buf *wire);

/* The reply to a TimeoutNow, sent as soon as libraft has it: hashicorp's
 * empty TimeoutNowResponse. */
int p2praft__hc_encode_timeout_now_reply(struct lp2p_buf *wire);

/*
 * An error reply to a request of rpc `type` that this node refuses, as
 * hashicorp's dispatcher writes it (the error string, a nil response):
 * LP2P_EUNSUPPORTED gives raft.ErrUnsupportedProtocol's message (for a bad
 * RPCHeader version), anything else "unexpected command" (which hashicorp
 * 1.7 candidates count as a granted pre-vote).
 */
int p2praft__hc_encode_error_reply(uint8_t type, int code,
                                   struct lp2p_buf *wire);

#endif
