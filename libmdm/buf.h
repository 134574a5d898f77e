/*
 * buf: a growable byte buffer with a mandatory cap.  Untrusted bytes (a
 * request body, a file named on the command line, a DEP response) are read
 * into one of these, so no input can make a tool allocate more than the
 * caller decided it may.  The data is always NUL-terminated one past len,
 * so text can be used as a C string, yet binary data may hold NULs.
 */
#ifndef MDM_BUF_H
#define MDM_BUF_H

#include <stddef.h>
#include <stdio.h>

#include "err.h"

struct mdm_buf {
	unsigned char *data;	/* owned; NULL until the first append */
	size_t len;
	size_t alloc;
	size_t cap;		/* len never exceeds this */
	int secret;		/* wipe every copy: keys, passwords, tokens */
};

/* Caps used across the tools. */
#define MDM_CAP_PLIST	(16u << 20)	/* a command, result or profile */
#define MDM_CAP_CERT	(1u << 20)	/* a PEM or DER certificate or key */
#define MDM_CAP_CMS	(32u << 20)	/* a signed profile */

void mdm_buf_init(struct mdm_buf *b, size_t cap);
/*
 * For key material: growing copies into a new block and wipes the old one
 * (realloc would leave the old bytes in freed memory), and release wipes.
 */
void mdm_buf_init_secret(struct mdm_buf *b, size_t cap);
/* Frees the data and leaves b empty with the same cap.  b may be NULL. */
void mdm_buf_release(struct mdm_buf *b);
/* Forgets the contents but keeps the allocation. */
void mdm_buf_reset(struct mdm_buf *b);

int mdm_buf_append(struct mdm_buf *b, const void *p, size_t n,
    struct mdm_err *e);
int mdm_buf_append_str(struct mdm_buf *b, const char *s, struct mdm_err *e);
int mdm_buf_printf(struct mdm_buf *b, struct mdm_err *e, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Reads a whole file (or stdin when path is "-") into b.  A file larger
 * than the cap fails with MDM_E_TOOBIG before it is read whole; a missing
 * file fails with MDM_E_NOINPUT.
 */
int mdm_buf_read_file(struct mdm_buf *b, const char *path, struct mdm_err *e);
int mdm_buf_read_fd(struct mdm_buf *b, int fd, struct mdm_err *e);

/*
 * Hands the data to the caller, who frees it with free(); b is left empty.
 * Returns NULL when b is empty, with *len 0.
 */
unsigned char *mdm_buf_detach(struct mdm_buf *b, size_t *len);

/* Overwrites the contents before freeing: for keys and tokens. */
void mdm_buf_release_secret(struct mdm_buf *b);

#endif
