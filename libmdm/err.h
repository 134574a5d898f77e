/*
 * err: the error value every libmdm function fills instead of printing or
 * exiting.  A function that fails returns -1 (or NULL) and, when the caller
 * passed a struct mdm_err, leaves a code and a one-line message there.  The
 * code maps onto the sysexits-style exit status the tools share, so a tool
 * turns any library failure into the right exit code without knowing which
 * module failed.
 *
 * Messages are lowercase, have no trailing period and never contain a
 * newline: the tool prefixes its name and prints them as one line.
 */
#ifndef MDM_ERR_H
#define MDM_ERR_H

#include <stddef.h>

enum mdm_errc {
	MDM_E_OK = 0,
	MDM_E_USAGE,		/* caller passed something meaningless */
	MDM_E_DATA,		/* malformed input: plist, CMS, certificate */
	MDM_E_NOINPUT,		/* a file or record that should exist does not */
	MDM_E_UNAVAILABLE,	/* a peer (APNs, DEP) cannot be reached */
	MDM_E_SOFTWARE,		/* internal error: a bug or an allocation failure */
	MDM_E_IO,		/* file system or database error */
	MDM_E_TEMPFAIL,		/* worth retrying: busy database, HTTP 429/5xx */
	MDM_E_PERM,		/* permission denied, or a key file others can read */
	MDM_E_CONFIG,		/* the state directory or a setting is wrong */
	MDM_E_TOOBIG,		/* input over a cap; reported as bad data */
	MDM_E_EXISTS,		/* would replace something the caller must confirm */
	MDM_E_CRYPTO,		/* a signature or decryption did not check out */
};

#define MDM_ERR_MSG_MAX 256

struct mdm_err {
	enum mdm_errc code;
	char msg[MDM_ERR_MSG_MAX];
};

/* Sets code and a printf-style message.  e may be NULL. Always returns -1. */
int mdm_err_set(struct mdm_err *e, enum mdm_errc code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Like mdm_err_set, then appends ": " and the oldest reason on OpenSSL's
 * error queue, and drains the queue so a later failure does not report a
 * stale reason.
 */
int mdm_err_set_ssl(struct mdm_err *e, enum mdm_errc code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Like mdm_err_set, then appends ": " and strerror(errnum). */
int mdm_err_set_sys(struct mdm_err *e, enum mdm_errc code, int errnum,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/*
 * Puts "what: " in front of the message already in e, so a caller can say
 * which file or record a lower layer failed on.  e may be NULL.
 */
void mdm_err_prefix(struct mdm_err *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

void mdm_err_clear(struct mdm_err *e);

/* The exit status (sysexits) a tool uses for this code. */
int mdm_err_exit_code(enum mdm_errc code);

/* A short name for the code, for JSON output and logs ("data", "io", ...). */
const char *mdm_err_code_name(enum mdm_errc code);

#endif
