/*
 * util/list.h: the intrusive doubly linked list. Order of head and tail
 * insertion, removal from anywhere (twice is harmless), moving a whole
 * list, and removal while walking.
 */
#include "test.h"
#include "util/list.h"

struct item {
    int v;
    struct lp2p__list link;
};

/* The values of `head` in order into out; returns how many. Also walks
 * backwards and checks that both directions agree. */
static int values(struct lp2p__list *head, int *out, int cap)
{
    struct lp2p__list *q, *n;
    int k = 0, j;
    LP2P__LIST_FOREACH_SAFE(q, n, head) {
        ASSERT(k < cap);
        ASSERT(q->next->prev == q && q->prev->next == q);
        out[k++] = LP2P__CONTAINER_OF(q, struct item, link)->v;
    }
    j = k;
    for (q = head->prev; q != head; q = q->prev) {
        ASSERT(j > 0);
        ASSERT_EQ(LP2P__CONTAINER_OF(q, struct item, link)->v, out[--j]);
    }
    ASSERT_EQ(j, 0);
    return k;
}

TEST(list, insert_order_and_remove)
{
    struct lp2p__list head;
    struct item it[5];
    int v[8], i;
    lp2p__list_init(&head);
    ASSERT(lp2p__list_empty(&head));
    ASSERT(lp2p__list_first(&head) == NULL);
    for (i = 0; i < 5; i++) {
        it[i].v = i;
        lp2p__list_init(&it[i].link);
        ASSERT(!lp2p__list_linked(&it[i].link));
    }
    lp2p__list_insert_tail(&head, &it[1].link);
    lp2p__list_insert_tail(&head, &it[2].link);
    lp2p__list_insert_head(&head, &it[0].link);
    lp2p__list_insert_tail(&head, &it[3].link);
    lp2p__list_insert_head(&head, &it[4].link);
    ASSERT_EQ(values(&head, v, 8), 5);
    ASSERT(v[0] == 4 && v[1] == 0 && v[2] == 1 && v[3] == 2 && v[4] == 3);
    ASSERT(lp2p__list_first(&head) == &it[4].link);
    ASSERT(lp2p__list_linked(&it[2].link));

    lp2p__list_remove(&it[2].link); /* middle */
    ASSERT(!lp2p__list_linked(&it[2].link));
    lp2p__list_remove(&it[2].link); /* again: nothing happens */
    lp2p__list_remove(&it[4].link); /* first */
    lp2p__list_remove(&it[3].link); /* last */
    ASSERT_EQ(values(&head, v, 8), 2);
    ASSERT(v[0] == 0 && v[1] == 1);
    lp2p__list_remove(&it[0].link);
    lp2p__list_remove(&it[1].link);
    ASSERT(lp2p__list_empty(&head));
    ASSERT_EQ(values(&head, v, 8), 0);
}

TEST(list, remove_while_walking)
{
    struct lp2p__list head, *q, *n;
    struct item it[10];
    int v[10], i, k;
    lp2p__list_init(&head);
    for (i = 0; i < 10; i++) {
        it[i].v = i;
        lp2p__list_insert_tail(&head, &it[i].link);
    }
    /* drop the even ones, including the current element */
    LP2P__LIST_FOREACH_SAFE(q, n, &head) {
        if (LP2P__CONTAINER_OF(q, struct item, link)->v % 2 == 0) {
            lp2p__list_remove(q);
        }
    }
    k = values(&head, v, 10);
    ASSERT_EQ(k, 5);
    for (i = 0; i < k; i++) {
        ASSERT_EQ(v[i], 2 * i + 1);
    }
    /* drain from the front */
    while ((q = lp2p__list_first(&head)) != NULL) {
        lp2p__list_remove(q);
    }
    ASSERT(lp2p__list_empty(&head));
}

TEST(list, take_moves_everything)
{
    struct lp2p__list a, b;
    struct item it[3];
    int v[4], i;
    lp2p__list_init(&a);
    lp2p__list_take(&b, &a); /* empty into empty */
    ASSERT(lp2p__list_empty(&a) && lp2p__list_empty(&b));
    for (i = 0; i < 3; i++) {
        it[i].v = 10 + i;
        lp2p__list_insert_tail(&a, &it[i].link);
    }
    lp2p__list_take(&b, &a);
    ASSERT(lp2p__list_empty(&a));
    ASSERT_EQ(values(&b, v, 4), 3);
    ASSERT(v[0] == 10 && v[1] == 11 && v[2] == 12);
    /* the moved elements still unlink themselves */
    lp2p__list_remove(&it[1].link);
    ASSERT_EQ(values(&b, v, 4), 2);
    ASSERT(v[0] == 10 && v[1] == 12);
    /* and `a` is usable again */
    lp2p__list_insert_tail(&a, &it[1].link);
    ASSERT_EQ(values(&a, v, 4), 1);
}
