/*
 * bg.c - blocking work in detached threads, signalled through an eventfd
 * (see bg.h for the design and the ownership rules).
 */
#include "bg.h"
#include "client_private.h"
#include "sasl.h"

#include <errno.h>
#include <netdb.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct cb_bg {
    atomic_uint refs;       /* the client's, and one per running thread */
    int efd;
};

enum { JOB_RUNNING = 0, JOB_DONE = 1, JOB_ABANDONED = 2 };
enum { KIND_RESOLVE = 1, KIND_PBKDF2 = 2 };

struct cb_job {
    atomic_int state;
    int kind;
    cb_bg *bg;              /* the thread's reference */
    pid_t pid;              /* the process that started it */
    /* KIND_RESOLVE */
    char *host;
    char port[8];
    struct addrinfo *ai;
    int gai;
    /* KIND_PBKDF2 */
    int mech;
    char *password;
    size_t npassword;
    unsigned char salt[CB_SASL_MAX_SALT];
    size_t nsalt;
    unsigned long iter;
    unsigned char key[64];
    size_t nkey;
    int ok;
};

static atomic_int nthreads; /* process-wide */

static void bg_unref(cb_bg *bg)
{
    if (atomic_fetch_sub(&bg->refs, 1) == 1) {
        close(bg->efd);
        free(bg);
    }
}

static void job_free(cb_job *j)
{
    if (j->ai)
        freeaddrinfo(j->ai);
    free(j->host);
    if (j->password) {
        OPENSSL_cleanse(j->password, j->npassword);
        free(j->password);
    }
    OPENSSL_cleanse(j->key, sizeof j->key);
    OPENSSL_cleanse(j->salt, sizeof j->salt);
    free(j);
}

static void *job_main(void *arg)
{
    cb_job *j = arg;
    cb_bg *bg = j->bg; /* read before the job may be freed by its owner */
    if (j->kind == KIND_RESOLVE) {
        struct addrinfo hints;
        memset(&hints, 0, sizeof(hints));
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        j->gai = getaddrinfo(j->host, j->port, &hints, &j->ai);
        if (j->gai != 0)
            j->ai = NULL;
    } else {
        j->ok = cb_scram_derive((cb_sasl_mech)j->mech, j->password, j->npassword,
                                j->salt, j->nsalt, j->iter, j->key,
                                &j->nkey) == CB_SASL_OK;
    }
    int expected = JOB_RUNNING;
    if (atomic_compare_exchange_strong(&j->state, &expected, JOB_DONE)) {
        /* The owner may free the job from here on: only bg is ours. */
        uint64_t one = 1;
        ssize_t w;
        do {
            w = write(bg->efd, &one, sizeof one);
        } while (w < 0 && errno == EINTR);
    } else {
        job_free(j); /* abandoned */
    }
    atomic_fetch_sub(&nthreads, 1);
    bg_unref(bg);
    return NULL;
}

/* The client's cb_bg, created (and its eventfd watched) on first use. */
static cb_bg *client_bg(cbffi_client *c)
{
    if (c->bg)
        return c->bg;
    cb_bg *bg = calloc(1, sizeof(*bg));
    if (!bg)
        return NULL;
    bg->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (bg->efd < 0) {
        free(bg);
        return NULL;
    }
    atomic_init(&bg->refs, 1);
    c->bg = bg;
    return bg;
}

void cb_bg_watch(cbffi_client *c)
{
    if (c->bg)
        (void)cb_watch_push(c, c->bg->efd, CBFFI_IO_READ); /* else: the tick */
}

/* Run j in a detached thread; 0, or -1 (j untouched, still the caller's). */
static int spawn(cbffi_client *c, cb_job *j, const char **why)
{
    cb_bg *bg = client_bg(c);
    if (!bg) {
        *why = "out of memory or descriptors for the job's eventfd";
        return -1;
    }
    if (atomic_fetch_add(&nthreads, 1) >= CB_BG_MAX_THREADS) {
        atomic_fetch_sub(&nthreads, 1);
        *why = "too many lookups in progress";
        return -1;
    }
    atomic_init(&j->state, JOB_RUNNING);
    j->bg = bg;
    j->pid = getpid();
    atomic_fetch_add(&bg->refs, 1);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    /* No signal for the job's thread: they stay the application's. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t t;
    int rc = pthread_create(&t, &attr, job_main, j);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        atomic_fetch_sub(&nthreads, 1);
        atomic_fetch_sub(&bg->refs, 1); /* the client still holds one */
        *why = "cannot start a thread";
        return -1;
    }
    c->njobs++;
    cb_bg_watch(c);
    return 0;
}

cb_job *cb_job_resolve(cbffi_client *c, const char *host, const char *port,
                       const char **why)
{
    cb_job *j = calloc(1, sizeof(*j));
    if (!j || !(j->host = strdup(host))) {
        free(j);
        *why = "out of memory";
        return NULL;
    }
    j->kind = KIND_RESOLVE;
    snprintf(j->port, sizeof j->port, "%s", port);
    if (spawn(c, j, why) != 0) {
        job_free(j);
        return NULL;
    }
    return j;
}

cb_job *cb_job_pbkdf2(cbffi_client *c, int mech, const char *password,
                      size_t npassword, const unsigned char *salt,
                      size_t nsalt, unsigned long iter)
{
    const char *why;
    if (nsalt > sizeof(((cb_job *)0)->salt))
        return NULL;
    cb_job *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    j->kind = KIND_PBKDF2;
    j->password = malloc(npassword ? npassword : 1);
    if (!j->password) {
        free(j);
        return NULL;
    }
    memcpy(j->password, password, npassword);
    j->npassword = npassword;
    memcpy(j->salt, salt, nsalt);
    j->nsalt = nsalt;
    j->mech = mech;
    j->iter = iter;
    if (spawn(c, j, &why) != 0) {
        job_free(j);
        return NULL;
    }
    return j;
}

int cb_job_done(cb_job *j)
{
    return atomic_load(&j->state) == JOB_DONE;
}

int cb_job_orphaned(const cb_job *j)
{
    return j->pid != getpid();
}

int cb_job_addrinfo(cb_job *j, struct addrinfo **ai)
{
    *ai = j->ai;
    j->ai = NULL;
    return j->gai;
}

int cb_job_key(cb_job *j, unsigned char *key, size_t *n)
{
    if (!j->ok)
        return -1;
    memcpy(key, j->key, j->nkey);
    *n = j->nkey;
    return 0;
}

void cb_job_release(cbffi_client *c, cb_job *j)
{
    if (!j)
        return;
    c->njobs--;
    int expected = JOB_RUNNING;
    if (cb_job_orphaned(j)) {
        /* Started before a fork(): its thread is in the parent only, and
           nothing here touches this copy.  If it was still running at the
           fork, its reference on bg and its thread count are this
           process's to drop; if it had finished, its thread may have
           dropped them before the fork or not: left (an eventfd leaked in
           a child that forked at that instant). */
        if (atomic_load(&j->state) == JOB_RUNNING) {
            atomic_fetch_sub(&nthreads, 1);
            bg_unref(j->bg);
        }
        job_free(j);
        return;
    }
    if (!atomic_compare_exchange_strong(&j->state, &expected, JOB_ABANDONED))
        job_free(j); /* DONE: the thread has let go */
}

int cb_bg_fd(const cbffi_client *c)
{
    return c->bg ? c->bg->efd : -1;
}

void cb_bg_poll(cbffi_client *c)
{
    if (!c->bg)
        return;
    uint64_t v;
    while (read(c->bg->efd, &v, sizeof v) < 0 && errno == EINTR)
        ;
    if (c->njobs == 0)
        return;
    /* Handling one can fail a conn, start the next seed or another job;
       the conns array itself is only replaced by a new map, which no job
       result applies. */
    for (int i = 0; i < c->nconns; i++)
        cb_conn_jobs(c->conns[i]);
    if (c->seed)
        cb_conn_jobs(c->seed);
}

void cb_bg_free(cbffi_client *c)
{
    if (!c->bg)
        return;
    bg_unref(c->bg);
    c->bg = NULL;
}
