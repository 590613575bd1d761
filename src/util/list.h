/*
 * An intrusive doubly linked list (the Linux and libuv kind): each element
 * embeds a `struct lp2p__list` link, and the list itself is one more link,
 * the head, that never holds an element. The list is circular: an empty
 * head points at itself, so insertion and removal never test for NULL and
 * an element removes itself without knowing which list holds it.
 *
 *     struct item { struct lp2p__list link; int v; };
 *     struct lp2p__list items, *q, *next;
 *     lp2p__list_init(&items);
 *     lp2p__list_insert_tail(&items, &it->link);
 *     LP2P__LIST_FOREACH_SAFE(q, next, &items) {
 *         struct item *it = LP2P__CONTAINER_OF(q, struct item, link);
 *         lp2p__list_remove(&it->link);  (allowed: `next` was saved)
 *     }
 *
 * Nothing here allocates or locks: the owner of the list does both.
 */
#ifndef LP2P_UTIL_LIST_H
#define LP2P_UTIL_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct lp2p__list {
    struct lp2p__list *prev, *next;
};

/* The struct of `type` whose `member` is at `ptr`. */
#define LP2P__CONTAINER_OF(ptr, type, member)                                 \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* Walk the list at `head`; the body may remove (and free) the element at
 * `q`, since the next one is read into `n` before the body runs. */
#define LP2P__LIST_FOREACH_SAFE(q, n, head)                                   \
    for ((q) = (head)->next, (n) = (q)->next; (q) != (head);                \
         (q) = (n), (n) = (q)->next)

/* An empty list, or an element that is in none (so that a second
 * lp2p__list_remove() is harmless). */
static inline void lp2p__list_init(struct lp2p__list *l)
{
    l->prev = l->next = l;
}

static inline bool lp2p__list_empty(const struct lp2p__list *head)
{
    return head->next == head;
}

/* Is `e` (an initialised element) in a list? */
static inline bool lp2p__list_linked(const struct lp2p__list *e)
{
    return e->next != e;
}

/* The first (oldest, if inserted at the tail) element, or NULL. */
static inline struct lp2p__list *lp2p__list_first(const struct lp2p__list *h)
{
    return h->next != h ? h->next : NULL;
}

static inline void lp2p__list_insert_head(struct lp2p__list *head,
                                          struct lp2p__list *e)
{
    e->next = head->next;
    e->prev = head;
    head->next->prev = e;
    head->next = e;
}

static inline void lp2p__list_insert_tail(struct lp2p__list *head,
                                          struct lp2p__list *e)
{
    e->prev = head->prev;
    e->next = head;
    head->prev->next = e;
    head->prev = e;
}

/* Move every element of `src` to the empty list `dst`, in order; `src`
 * is left empty. */
static inline void lp2p__list_take(struct lp2p__list *dst,
                                   struct lp2p__list *src)
{
    if (src->next == src) {
        dst->prev = dst->next = dst;
        return;
    }
    *dst = *src;
    dst->next->prev = dst;
    dst->prev->next = dst;
    src->prev = src->next = src;
}

/* Take `e` out of its list (if any) and leave it initialised. */
static inline void lp2p__list_remove(struct lp2p__list *e)
{
    e->prev->next = e->next;
    e->next->prev = e->prev;
    e->prev = e->next = e;
}

#endif
