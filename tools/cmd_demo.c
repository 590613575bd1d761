/* p2praft demo [--data-dir DIR] [--verbose]: the seed's Example_consensus
 * (examples/consensus.c, compiled in here). */
#define P2PRAFT_EXAMPLE_NO_MAIN
#include "../examples/consensus.c"

#include "cli.h"

const struct cli_command cli_cmd_demo = {
    "demo",
    "run the seed's example: 3 raft nodes over libp2p, 1000 updates",
    consensus_example};
