/*
 * bg.h - blocking work off the loop: host name lookups (getaddrinfo) and
 * SCRAM's key derivation (PBKDF2), each in a detached thread of its own,
 * whose end the loop learns from one eventfd per client, watched like a
 * socket (CBFFI_IO_READ in the watch set, cbffi_io_event hands it back;
 * never unwatched until the client is destroyed, and never closed while
 * watched).
 *
 * Why a thread per job, and not getaddrinfo_a or c-ares: getaddrinfo_a is
 * glibc's only, notifies by signal or by a thread of its own anyway, and
 * cannot cancel a lookup in progress (its request must then outlive the
 * client); c-ares would be a new dependency and bypasses NSS (/etc/hosts
 * and nsswitch.conf keep working here).  A thread that calls getaddrinfo
 * keeps the system's resolution exactly, and the same machinery takes
 * PBKDF2 (up to CB_SCRAM_MAX_ITER iterations, tens of ms) off the loop.
 * Numeric addresses never get here: conn.c resolves them inline with
 * AI_NUMERICHOST, which never touches the resolver.
 *
 * Ownership and lifetimes: a job is shared by its thread and its owner (a
 * conn for its lookup, a handshake for its PBKDF2) until one of them lets
 * go.  Its state goes RUNNING -> DONE (the thread finished) or RUNNING ->
 * ABANDONED (the owner gave up: conn freed, handshake failed, client
 * destroyed); one compare-and-swap decides, and whoever comes second frees
 * the job (the owner with cb_job_release, the thread on its way out).  No
 * lock is taken: a process that forks while a thread runs never waits in
 * the child on a lock held by a thread that does not exist there.
 * The eventfd belongs to a cb_bg shared (reference counted) by the client
 * and every thread it started, so that a thread finishing after its client
 * was destroyed writes to its own still-open eventfd, never to a closed or
 * reused descriptor; the last reference closes it.  The client's
 * reference is dropped by cbffi_client_destroy (cb_bg_free), after every
 * job of its conns was released.  A job's password copy and derived key
 * are zeroed before they are freed.
 */
#ifndef CBFFI_BG_H
#define CBFFI_BG_H

#include <stddef.h>

struct addrinfo;
typedef struct cbffi_client cbffi_client;
typedef struct cb_job cb_job;

/* Threads running jobs, process-wide, at most; past it a lookup fails at
   once (CBFFI_UNKNOWN_HOST) and a key is derived inline. */
enum { CB_BG_MAX_THREADS = 64 };

/* Start looking up host:port (SOCK_STREAM, any family).  NULL if no
   thread could be started (why: in *why, static text). */
cb_job *cb_job_resolve(cbffi_client *c, const char *host, const char *port,
                       const char **why);

/* Start PBKDF2-HMAC (SHA-1/256/512 as mech, a cb_sasl_mech) of password
   (copied) with salt, iter times, into a key of the digest's size.  NULL
   if no thread could be started: derive inline then. */
cb_job *cb_job_pbkdf2(cbffi_client *c, int mech, const char *password,
                      size_t npassword, const unsigned char *salt,
                      size_t nsalt, unsigned long iter);

/* Whether the job has finished (its result can be read). */
int cb_job_done(cb_job *j);

/* Whether the job was started before a fork() (its thread is not in this
   process: it will never finish here). */
int cb_job_orphaned(const cb_job *j);

/* A finished lookup: getaddrinfo's return value; on 0 the list goes to the
   caller (*ai, freeaddrinfo) and the job keeps none. */
int cb_job_addrinfo(cb_job *j, struct addrinfo **ai);

/* A finished derivation: the key (64 bytes of room) and its size into *n;
   -1 if it failed. */
int cb_job_key(cb_job *j, unsigned char *key, size_t *n);

/* Let go of a job, finished or not (NULL is accepted). */
void cb_job_release(cbffi_client *c, cb_job *j);

/* The client's eventfd, or -1 if it has none (no job was ever started). */
int cb_bg_fd(const cbffi_client *c);

/* Ask the host (again) to watch the eventfd for reading.  Every job start
   does; an owner that waits again for a job already running calls it too,
   so that a host loop that took over from another (cbffi_wait, say) learns
   of the eventfd whenever something waits on it. */
void cb_bg_watch(cbffi_client *c);

/* The eventfd was readable, or a tick: hand finished jobs to their owners. */
void cb_bg_poll(cbffi_client *c);

/* The client is going away (every job already released). */
void cb_bg_free(cbffi_client *c);

#endif
