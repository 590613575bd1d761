/*
 * hashicorp/raft's NetworkTransport wire, as go-libp2p-raft v0.5.0 carries it
 * on /raft/1.0.0/rpc: a sans-I/O codec (no sockets, no clock).
 *
 * On a stream, the side that opened it writes requests, each one rpc type
 * byte then a msgpack request (InstallSnapshot is followed by `Size` raw
 * snapshot bytes); the other side writes, for each request in order, a
 * msgpack error string then a msgpack response (nil when the error is set
 * by hashicorp's dispatcher). AppendEntries may be pipelined: several
 * requests before the first response.
 *
 * The encoding is hashicorp's (go-msgpack v2, zero MsgpackHandle, time.Time
 * by MarshalBinary), as test/vectors/hashicorp/ shows it: each struct is a
 * map keyed by field name, the fields sorted by name, the embedded
 * RPCHeader's fields merged in; []byte and strings as raw strings (never
 * str8 or bin); nil slices as nil. Encoding reproduces captured bytes
 * exactly. Decoding accepts any valid msgpack form of each field and any
 * key order (as Go does), skips unknown keys, and refuses duplicate keys,
 * wrong types and out-of-range numbers; it never reads past its input.
 *
 * Decoded byte fields point into the caller's input buffer (borrowed: keep
 * the input alive while using them); arrays (entries, servers) are
 * allocated through the heap hook and freed by the matching *_release().
 * Error codes are the project's (LP2P_E*): LP2P_EAGAIN means "more input
 * is needed", LP2P_ETOOBIG "the message cannot end within the size limit".
 */
#ifndef P2PRAFT_RAFT_HCWIRE_H
#define P2PRAFT_RAFT_HCWIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* The protocol ID go-libp2p-raft registers (its RaftProtocol). */
#define P2PRAFT__HC_PROTOCOL "/raft/1.0.0/rpc"

/* The RPCHeader.ProtocolVersion hashicorp/raft 1.x sends (ProtocolVersionMax);
 * it refuses requests below its own version minus one. */
#define P2PRAFT__HC_PROTOCOL_VERSION 3

/* rpc type bytes. */
enum p2praft__hc_rpc {
    P2PRAFT__HC_APPEND_ENTRIES = 0,
    P2PRAFT__HC_REQUEST_VOTE = 1,
    P2PRAFT__HC_INSTALL_SNAPSHOT = 2,
    P2PRAFT__HC_TIMEOUT_NOW = 3,
    P2PRAFT__HC_REQUEST_PRE_VOTE = 4 /* hashicorp/raft >= 1.7 */
};

/* Log.Type */
enum p2praft__hc_log_type {
    P2PRAFT__HC_LOG_COMMAND = 0,
    P2PRAFT__HC_LOG_NOOP = 1,
    P2PRAFT__HC_LOG_ADD_PEER_DEPRECATED = 2,
    P2PRAFT__HC_LOG_REMOVE_PEER_DEPRECATED = 3,
    P2PRAFT__HC_LOG_BARRIER = 4,
    P2PRAFT__HC_LOG_CONFIGURATION = 5
};

/* Server.Suffrage */
enum p2praft__hc_suffrage {
    P2PRAFT__HC_VOTER = 0,
    P2PRAFT__HC_NONVOTER = 1,
    P2PRAFT__HC_STAGING = 2
};

/* A Go []byte or string. p == NULL is a nil slice (msgpack nil); otherwise
 * `len` bytes at p (len may be 0: an empty, non-nil slice). */
struct p2praft__hc_bytes {
    const uint8_t *p;
    size_t len;
};

/* A time.Time as it was on the wire, kept opaque so that it re-encodes
 * exactly. RAW: a raw string of `len` bytes: time.MarshalBinary (15 or 16
 * bytes, what NetworkTransport writes by default) or, with
 * MsgpackUseNewTimeFormat, a msgpack timestamp body (4, 8 or 12 bytes).
 * EXT: a msgpack timestamp extension (type -1) of 4, 8 or 12 bytes. NIL:
 * the zero time in the new format. */
enum p2praft__hc_time_form {
    P2PRAFT__HC_TIME_NIL = 0,
    P2PRAFT__HC_TIME_RAW = 1,
    P2PRAFT__HC_TIME_EXT = 2
};

struct p2praft__hc_time {
    uint8_t form;
    uint8_t len;
    uint8_t b[16];
};

/* Go's zero time.Time as NetworkTransport writes it (MarshalBinary: version
 * 1, 0 seconds, 0 ns, offset -1 = UTC): what hashicorp's bootstrap entry
 * carries, and what p2praft sends for entries it did not get from a Go
 * leader. */
void p2praft__hc_time_zero(struct p2praft__hc_time *t);
bool p2praft__hc_time_is_zero(const struct p2praft__hc_time *t);

struct p2praft__hc_header {
    int64_t protocol_version;
    struct p2praft__hc_bytes id;   /* ServerID */
    struct p2praft__hc_bytes addr; /* ServerAddress */
};

struct p2praft__hc_log {
    uint64_t index;
    uint64_t term;
    uint64_t type; /* enum p2praft__hc_log_type; other values are kept */
    struct p2praft__hc_bytes data;
    struct p2praft__hc_bytes extensions;
    struct p2praft__hc_time appended_at;
};

struct p2praft__hc_append_entries {
    struct p2praft__hc_header header;
    uint64_t term;
    struct p2praft__hc_bytes leader;
    uint64_t prev_log_entry;
    uint64_t prev_log_term;
    struct p2praft__hc_log *entries;
    size_t n_entries;
    bool entries_nil; /* Entries was nil (heartbeats), not [] */
    uint64_t leader_commit_index;
};

struct p2praft__hc_append_entries_resp {
    struct p2praft__hc_header header;
    uint64_t term;
    uint64_t last_log;
    bool success;
    bool no_retry_backoff;
};

struct p2praft__hc_request_vote {
    struct p2praft__hc_header header;
    uint64_t term;
    struct p2praft__hc_bytes candidate; /* deprecated, still sent */
    uint64_t last_log_index;
    uint64_t last_log_term;
    bool leadership_transfer;
};

struct p2praft__hc_request_vote_resp {
    struct p2praft__hc_header header;
    uint64_t term;
    struct p2praft__hc_bytes peers; /* deprecated; nil from protocol 3 */
    bool granted;
};

struct p2praft__hc_request_pre_vote {
    struct p2praft__hc_header header;
    uint64_t term;
    uint64_t last_log_index;
    uint64_t last_log_term;
};

struct p2praft__hc_request_pre_vote_resp {
    struct p2praft__hc_header header;
    uint64_t term;
    bool granted;
};

struct p2praft__hc_install_snapshot {
    struct p2praft__hc_header header;
    int64_t snapshot_version;
    uint64_t term;
    struct p2praft__hc_bytes leader;
    uint64_t last_log_index;
    uint64_t last_log_term;
    struct p2praft__hc_bytes peers;         /* msgpack array of voter addresses */
    struct p2praft__hc_bytes configuration; /* msgpack Configuration */
    uint64_t configuration_index;
    int64_t size; /* snapshot bytes that follow the request */
};

struct p2praft__hc_install_snapshot_resp {
    struct p2praft__hc_header header; /* hashicorp leaves it empty */
    uint64_t term;
    bool success;
};

struct p2praft__hc_timeout_now {
    struct p2praft__hc_header header;
};

struct p2praft__hc_timeout_now_resp {
    struct p2praft__hc_header header; /* hashicorp leaves it empty */
};

/* One request: rpc type byte and body. */
struct p2praft__hc_req {
    uint8_t type; /* enum p2praft__hc_rpc */
    union {
        struct p2praft__hc_append_entries append_entries;
        struct p2praft__hc_request_vote request_vote;
        struct p2praft__hc_install_snapshot install_snapshot;
        struct p2praft__hc_timeout_now timeout_now;
        struct p2praft__hc_request_pre_vote request_pre_vote;
    };
};

/* One response: the error string (empty: none), then the response, which
 * may be nil (hashicorp answers a command it refuses with nil). `type` is
 * the rpc type of the request it answers (the stream tells, not the bytes). */
struct p2praft__hc_resp {
    uint8_t type;
    struct p2praft__hc_bytes error;
    bool nil;
    union {
        struct p2praft__hc_append_entries_resp append_entries;
        struct p2praft__hc_request_vote_resp request_vote;
        struct p2praft__hc_install_snapshot_resp install_snapshot;
        struct p2praft__hc_timeout_now_resp timeout_now;
        struct p2praft__hc_request_pre_vote_resp request_pre_vote;
    };
};

struct p2praft__hc_server {
    int64_t suffrage; /* enum p2praft__hc_suffrage */
    struct p2praft__hc_bytes id;
    struct p2praft__hc_bytes address;
};

/* hashicorp's Configuration, as EncodeConfiguration writes it. */
struct p2praft__hc_configuration {
    struct p2praft__hc_server *servers;
    size_t n;
    bool servers_nil;
};

/*
 * Decode the request at the start of buf[0..len): 0 with *consumed (the
 * rpc type byte and the msgpack request; for InstallSnapshot the caller
 * then reads install_snapshot.size snapshot bytes itself); LP2P_EAGAIN if
 * buf holds only part of it; LP2P_ETOOBIG if it cannot end within `max`
 * bytes; LP2P_EUNSUPPORTED for an unknown rpc type; LP2P_EMALFORMED,
 * LP2P_ETYPE, LP2P_EOVERFLOW, LP2P_ETRUNCATED for bad bytes; LP2P_ENOMEM.
 * On success release with p2praft__hc_req_release(); on error nothing is
 * left to release. Byte fields borrow from buf.
 */
int p2praft__hc_req_decode(const uint8_t *buf, size_t len, size_t max,
                           struct p2praft__hc_req *out, size_t *consumed);
void p2praft__hc_req_release(struct p2praft__hc_req *req);

/* The same for the response to a request of rpc type `type`. */
int p2praft__hc_resp_decode(uint8_t type, const uint8_t *buf, size_t len,
                            size_t max, struct p2praft__hc_resp *out,
                            size_t *consumed);
void p2praft__hc_resp_release(struct p2praft__hc_resp *resp);

/* Append the wire bytes of a request (type byte and msgpack; not the
 * snapshot bytes) or of a response (error string and msgpack response, or
 * nil when resp->nil) to `out`. 0, LP2P_EINVAL (unknown type), LP2P_ENOMEM
 * or LP2P_ETOOBIG. On error `out` may hold a partial message: callers
 * truncate it back. */
int p2praft__hc_req_encode(const struct p2praft__hc_req *req,
                           struct lp2p_buf *out);
int p2praft__hc_resp_encode(const struct p2praft__hc_resp *resp,
                            struct lp2p_buf *out);

/* Configuration bytes (a LogConfiguration entry's Data, InstallSnapshot's
 * Configuration): decode all of buf (trailing bytes: LP2P_ETRAILING), or
 * append the encoding. Servers borrow from buf. */
int p2praft__hc_conf_decode(const uint8_t *buf, size_t len,
                            struct p2praft__hc_configuration *out);
void p2praft__hc_conf_release(struct p2praft__hc_configuration *conf);
int p2praft__hc_conf_encode(const struct p2praft__hc_configuration *conf,
                            struct lp2p_buf *out);

/* InstallSnapshot's deprecated Peers: the msgpack array of the voters'
 * addresses, as hashicorp's encodePeers writes it. */
int p2praft__hc_peers_encode(const struct p2praft__hc_configuration *conf,
                             struct lp2p_buf *out);

#endif
