/*
 * The frame p2praft puts around the state's bytes in a raft snapshot, so
 * that changed bytes are refused instead of loaded:
 *
 *   0   u8     0xc1 (never the first byte of a msgpack value)
 *   1   7 B    "p2psnap"
 *   8   u8     version (1)
 *   9   u8     checksum kind (1: SHA-256)
 *   10  6 B    zero
 *   16  u64be  payload length
 *   24  32 B   SHA-256 of the payload
 *   56  ...    payload: the state's codec output (p2praft_encode_snapshot)
 *
 * The payload alone is what go-libp2p-raft writes for the same state; the
 * frame is raft's business. Every header byte is checked, so any change
 * to a framed snapshot is caught: in the header by the checks, in the
 * payload by the digest. A snapshot without the frame (written by an older
 * p2praft, or by a cluster that chose bare snapshots) cannot be checked.
 */
#ifndef P2PRAFT_RAFT_SNAPSHOT_H
#define P2PRAFT_RAFT_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define P2PRAFT__SNAP_HEADER 56

/* Write the header for `len` bytes of payload at `payload` (borrowed) into
 * hdr (P2PRAFT__SNAP_HEADER bytes). 0 or LP2P_ECRYPTO. */
int p2praft__snapshot_header(uint8_t *hdr, const uint8_t *payload, size_t len);

/* Do these bytes claim to be framed? True when the first byte or the magic
 * is there: a frame with a damaged first byte still counts as framed, so
 * it is checked (and refused) rather than decoded as bare bytes. */
bool p2praft__snapshot_is_framed(const uint8_t *data, size_t len);

/*
 * Check a framed snapshot (borrowed) and point *payload and *plen at its
 * payload inside it. 0, or LP2P_ECORRUPT with `why` (may be NULL) saying
 * what is wrong: a bad header, a length that does not match the bytes, or
 * a digest mismatch; LP2P_ECRYPTO if the digest cannot be computed.
 */
int p2praft__snapshot_unframe(const uint8_t *data, size_t len,
                              const uint8_t **payload, size_t *plen,
                              char *why, size_t whylen);

#endif
