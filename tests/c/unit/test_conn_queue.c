/* Unit tests: conn.c's write queue, white-box (no socket is ever opened:
   the clients point at servers that are never contacted). */
#include "cmocka_inc.h"
#include "client_private.h"

#include <string.h>

static cbffi_client *make(const char *cs)
{
    cbffi_client *c = NULL;
    char err[200];
    assert_int_equal(cbffi_client_create(&c, cs, NULL, NULL, err, sizeof err), CBFFI_OK);
    return c;
}

/* A write buffer whose front was sent (off >= cap / 2) and whose end is
   nearly full: appending a packet of `n` bytes makes cb_buf_reserve move
   the unsent bytes to the front instead of growing. */
static void half_sent(cb_conn *conn, size_t n)
{
    cb_buf *b = &conn->wbuf;
    assert_int_equal(cb_buf_reserve(b, 1024), 0);
    size_t cap = b->cap;
    memset(b->data, 0x80, cap);
    b->len = cap - n / 2;       /* not room enough at the end ... */
    b->off = cap / 2 + 8;       /* ... but at the front, once compacted */
    conn->wqueued = b->len;
    conn->wsent = b->off;
    assert_true(b->cap - b->len < n && b->cap - cb_buf_size(b) >= n);
}

/* The queued packet of the last op on conn, by where the queue says it is. */
static cb_op *last_op(cb_conn *conn)
{
    cb_opq *q = &conn->queue;
    assert_true(q->count > 0);
    return q->items[(q->head + q->count - 1) % q->cap];
}

/* memcached://: cb_conn_enqueue.  The offset of a quiet GET (sealed into a
   GET before sending) and the stream position were taken before the
   append moved the bytes: the seal patched a stale offset and wqueued
   went backwards (wrapped). */
static void enqueue_into_a_half_sent_buffer(void **state)
{
    (void)state;
    cbffi_client *c = make("memcached://127.0.0.1:9");
    cb_conn *conn = c->conns[0];
    char key[100];
    memset(key, 'k', sizeof key);
    size_t n = CB_HEADER_LEN + sizeof key;
    half_sent(conn, n);
    size_t live = cb_buf_size(&conn->wbuf);
    uint64_t queued = conn->wqueued;
    assert_int_equal(cbffi_get(c, key, sizeof key, CBFFI_GET_PLAIN, 0, 1), CBFFI_OK);
    assert_int_equal(conn->wbuf.off, 0);            /* it was compacted */
    assert_int_equal(cb_buf_size(&conn->wbuf), live + n);
    assert_ptr_equal(conn->tail_quiet, last_op(conn));
    assert_int_equal(conn->tail_off, live);         /* where the packet is */
    assert_int_equal((uint8_t)conn->wbuf.data[conn->tail_off + 1], CB_CMD_GETQ);
    assert_int_equal(conn->wqueued, queued + n);
    assert_int_equal(last_op(conn)->wpos, queued);
    cbffi_client_destroy(c);
}

/* couchbase://: cb_conn_enqueue_pkt patched the opaque and the vbucket
   into the stale offset: past the end of the allocation (ASan:
   heap-buffer-overflow), and the packet sent kept a wrong opaque. */
static void enqueue_pkt_into_a_half_sent_buffer(void **state)
{
    (void)state;
    cbffi_client *c = make("couchbase://127.0.0.1:9/default");
    static const char map[] =
        "{\"rev\":1,\"name\":\"default\",\"nodeLocator\":\"vbucket\","
        "\"vBucketServerMap\":{\"hashAlgorithm\":\"CRC\",\"numReplicas\":0,"
        "\"serverList\":[\"127.0.0.1:9\"],\"vBucketMap\":[[0],[0],[0],[0]]}}";
    assert_int_equal(cb_cluster_apply_json(c, map, strlen(map), "127.0.0.1"), 1);
    assert_int_equal(c->nconns, 1);
    cb_conn *conn = c->conns[0];
    char key[100];
    memset(key, 'k', sizeof key);
    size_t n = CB_HEADER_LEN + 8 + sizeof key + 5;
    half_sent(conn, n);
    size_t live = cb_buf_size(&conn->wbuf);
    uint64_t queued = conn->wqueued;
    assert_int_equal(cbffi_store(c, CBFFI_OP_SET, key, sizeof key, "value", 5, 0, 0,
                                 0, 1), CBFFI_OK);
    assert_int_equal(conn->wbuf.off, 0);
    assert_int_equal(cb_buf_size(&conn->wbuf), live + n);
    cb_op *op = last_op(conn);
    const char *p = conn->wbuf.data + live;           /* the packet */
    assert_int_equal((uint8_t)p[0], CB_MAGIC_REQ);
    assert_int_equal((uint8_t)p[1], CB_CMD_SET);
    assert_memory_equal(p + 12, &op->opaque, 4);
    assert_int_equal(cb_get16(p + 6), op->vb);
    assert_int_equal(conn->wqueued, queued + n);
    cbffi_client_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(enqueue_into_a_half_sent_buffer),
        cmocka_unit_test(enqueue_pkt_into_a_half_sent_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
