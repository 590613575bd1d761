/* util/heap.c: the allocation hook fails the Nth allocation (test/lib/oom.c
 * over lp2p_heap_set) and counts live blocks. */
#include "oom.h"
#include "test.h"
#include "util/heap.h"

TEST(heap, oom_hook_fails_nth)
{
    void *a, *b;
    test__oom_install(2);
    a = lp2p__malloc(10);
    b = lp2p__malloc(10);
    ASSERT(a != NULL);
    ASSERT(b == NULL);
    ASSERT_EQ(test__oom_live(), 1);
    lp2p__free(a);
    ASSERT_EQ(test__oom_live(), 0);
    test__oom_remove();
}
