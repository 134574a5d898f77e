/*
 * ossl_int: small helpers shared by the modules that talk to OpenSSL
 * (x509, cms, scep): BIOs to and from struct mdm_buf, hex.  Internal.
 */
#ifndef MDM_OSSL_INT_H
#define MDM_OSSL_INT_H

#include <stddef.h>

#include <openssl/bio.h>

#include "buf.h"
#include "err.h"

/* A read-only BIO over caller memory (owned; BIO_free it). */
BIO *mdm_bio_from_mem(const void *data, size_t len, struct mdm_err *e);
/* Appends what a memory BIO holds to out. */
int mdm_bio_to_buf(BIO *b, struct mdm_buf *out, struct mdm_err *e);

/* Lowercase hex of p into out, which holds 2 * n + 1 bytes. */
void mdm_hex_lower(const unsigned char *p, size_t n, char *out);

#endif
