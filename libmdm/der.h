/*
 * der: a DER writer for the few structures libmdm encodes by hand, where
 * OpenSSL's template encoder costs more than the work itself (the SCEP
 * CertRep a CA signs for every enrollment).  It writes into an mdm_buf,
 * so the buffer's cap bounds the output.
 *
 * Errors are sticky: after the first failure every call is a no-op and
 * mdm_der_finish reports it, so a builder reads as the structure it
 * writes, with one check at the end.
 *
 * A constructed value is opened with mdm_der_begin, which writes its tag
 * and a one-byte length, and closed with mdm_der_end, which fixes the
 * length, moving the contents when the length needs more bytes.  Tags are
 * single octets (universal or context-specific, number below 31), which
 * is all CMS needs.
 */
#ifndef MDM_DER_H
#define MDM_DER_H

#include <stddef.h>

#include <openssl/asn1.h>

#include "buf.h"
#include "err.h"

#define MDM_DER_SEQUENCE	0x30
#define MDM_DER_SET		0x31
#define MDM_DER_INTEGER		0x02
#define MDM_DER_OCTET_STRING	0x04
#define MDM_DER_NULL		0x05
#define MDM_DER_OID		0x06
#define MDM_DER_UTCTIME		0x17
#define MDM_DER_GENTIME		0x18
/* [n] IMPLICIT of a primitive type, and [n] constructed (EXPLICIT or
   IMPLICIT of a constructed type). */
#define MDM_DER_CTX(n)		(0x80 | (n))
#define MDM_DER_CTX_CONS(n)	(0xa0 | (n))

struct mdm_der {
	struct mdm_buf *out;	/* borrowed; appended to */
	size_t start;		/* out's length at init */
	int depth;		/* values begun and not yet ended */
	int failed;
	struct mdm_err err;	/* the first failure */
};

void mdm_der_init(struct mdm_der *w, struct mdm_buf *out);

/* Opens a constructed value: returns the mark mdm_der_end closes. */
size_t mdm_der_begin(struct mdm_der *w, unsigned char tag);
/* Closes the innermost value still open, opened at mark. */
void mdm_der_end(struct mdm_der *w, size_t mark);

/* A whole value: tag, length, the n bytes at p. */
void mdm_der_put(struct mdm_der *w, unsigned char tag, const void *p,
    size_t n);
/* n bytes already encoded (a certificate's DER, say), as they are. */
void mdm_der_raw(struct mdm_der *w, const void *p, size_t n);
/* A small non-negative INTEGER. */
void mdm_der_uint(struct mdm_der *w, unsigned v);
/* The OBJECT IDENTIFIER obj, or the one of a NID. */
void mdm_der_obj(struct mdm_der *w, const ASN1_OBJECT *obj);
void mdm_der_nid(struct mdm_der *w, int nid);
/*
 * The text of a time as RFC 5280 4.1.2.5 has it, UTCTime to 2049 and
 * GeneralizedTime after, into out, its tag into *tag; -1 before 1950 or
 * after 9999.
 */
#define MDM_DER_TIME_MAX	24
int mdm_der_time_str(long long unix_seconds, char out[MDM_DER_TIME_MAX],
    unsigned char *tag);
/* Anything OpenSSL can encode: a Name, an INTEGER, ... */
void mdm_der_i2d(struct mdm_der *w, const void *obj, const ASN1_ITEM *it);

/*
 * Sorts the n encodings items[i] (lengths lens[i]) as DER orders the
 * members of a SET OF (X.690 11.6) and writes them one after another.
 */
void mdm_der_set_of(struct mdm_der *w, const unsigned char *const *items,
    const size_t *lens, size_t n);

/* Makes why the writer's error, unless it has one already. */
void mdm_der_fail(struct mdm_der *w, const struct mdm_err *why);

/*
 * 0, or -1 with the first error in *e (open values count as errors) and
 * out cut back to what it held at mdm_der_init.
 */
int mdm_der_finish(struct mdm_der *w, struct mdm_err *e);

#endif
