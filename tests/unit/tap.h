/*
 * tap: the few TAP helpers the unit tests need.  Each check prints
 * "ok N - what" or "not ok N - what"; tap_done() prints the plan and
 * returns the exit status (0 only when every check passed), so a test's
 * main() ends with "return tap_done();".
 */
#ifndef MDM_TAP_H
#define MDM_TAP_H

#include <stddef.h>
#include <sys/types.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

int tap_ok(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int tap_is_int(long long got, long long want, const char *what);
int tap_is_str(const char *got, const char *want, const char *what);
void tap_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "ok N # skip why" for n checks that cannot run here. */
void tap_skip(int n, const char *why);
int tap_done(void);

/* A fresh, empty directory under $TMPDIR, removed by tap_done(). */
const char *tap_tmpdir(void);
/* $MDM_FIXTURES/rel if that folder exists, else NULL (the caller skips). */
const char *tap_fixture(const char *rel);

/*
 * Starts the program argv[0] (a path; argv NULL-terminated) and waits,
 * 10 s at most, for it to write its port to portfile, which goes to port.
 * 0 with *pid set, or -1 (a child that never wrote it is killed).
 */
int tap_spawn(const char *const *argv, const char *portfile, pid_t *pid,
    char *port, size_t portlen);
/* SIGTERM, and waits for it. */
void tap_stop(pid_t pid);

/* Writes c, then k, in PEM to path (either may be NULL); 0 or -1. */
int tap_write_pem(const char *path, X509 *c, EVP_PKEY *k);

#define ok(cond, ...) tap_ok(!!(cond), __VA_ARGS__)
#define is_int(got, want, what) tap_is_int((got), (want), (what))
#define is_str(got, want, what) tap_is_str((got), (want), (what))

#endif
