/* The seed's test suite (test_consensus.c) over p2praft's raft I/O on
 * libp2p, with the disk store (raft_uv): suites consensus_disk, actor_disk,
 * example_disk. */
#define CONSENSUS_STORE P2PRAFT_STORE_DISK
#define SUITE_CONSENSUS consensus_disk
#define SUITE_ACTOR actor_disk
#define SUITE_EXAMPLE example_disk
#include "test_consensus.c"
