#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "buf.h"
#include "cms.h"
#include "devauth.h"
#include "ossl_int.h"
#include "x509.h"
#include "mdm_int.h"

static const char pem_begin[] = "-----BEGIN CERTIFICATE-----";
static const char pem_end[] = "-----END CERTIFICATE-----";

const char *
mdm_devauth_source_name(enum mdm_devauth_source s)
{
	switch (s) {
	case MDM_DEVAUTH_TLS:
		return "tls";
	case MDM_DEVAUTH_SIGNATURE:
		return "signature";
	case MDM_DEVAUTH_HEADER:
		return "header";
	case MDM_DEVAUTH_NONE:
		break;
	}
	return "none";
}

static int
is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' ||
	    c == '\f';
}

/* Offset of needle in p[0..len), or -1. */
static long
find(const unsigned char *p, size_t len, const char *needle)
{
	size_t n = strlen(needle), i;

	for (i = 0; i + n <= len; i++)
		if (memcmp(p + i, needle, n) == 0)
			return (long)i;
	return -1;
}

static int
only_space(const unsigned char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (!is_space(p[i]))
			return 0;
	return 1;
}

/*
 * One DER certificate and nothing after it: unlike mdm_x509_cert_from_mem
 * this never guesses PEM, so no subject text can change how the bytes are
 * read, and a second certificate smuggled after the first is refused.
 */
static int
parse_der(const unsigned char *der, size_t len, X509 **out, struct mdm_err *e)
{
	const unsigned char *p = der;
	X509 *x;

	*out = NULL;
	ERR_clear_error();
	if (len == 0)
		return mdm_err_set(e, MDM_E_DATA, "no certificate");
	if ((x = d2i_X509(NULL, &p, (long)len)) == NULL)
		return mdm_err_set_ssl(e, MDM_E_DATA, "bad DER certificate");
	if (p != der + len) {
		X509_free(x);
		return mdm_err_set(e, MDM_E_DATA,
		    "%zu bytes after the certificate", (size_t)(der + len - p));
	}
	*out = x;
	return 0;
}

/* RFC 9440: the base64 between the colons, '=' padding optional. */
static int
from_rfc9440(const char *s, size_t n, X509 **out, struct mdm_err *e)
{
	struct mdm_buf b64, der;
	size_t i, chars = 0;
	int rc = -1;

	mdm_buf_init(&b64, MDM_DEVAUTH_CAP_HEADER + 2);
	mdm_buf_init(&der, MDM_DEVAUTH_CAP_HEADER);
	if (mdm_buf_append(&b64, s, n, e) == -1)
		goto out;
	for (i = 0; i < n; i++)
		if (!is_space((unsigned char)s[i]))
			chars++;
	if (chars % 4 != 0 && chars % 4 != 1 &&
	    mdm_buf_append(&b64, "==", 4 - chars % 4, e) == -1)
		goto out;
	if (mdm_base64_decode((const char *)b64.data, b64.len, &der, e) == -1)
		goto out;
	rc = parse_der(der.data, der.len, out, e);
out:
	mdm_buf_release(&b64);
	mdm_buf_release(&der);
	return rc;
}

/*
 * PEM, %-escaped or not.  The base64 between the markers is decoded
 * directly, whitespace skipped, because a proxy may have turned the
 * newlines into spaces, which no PEM reader accepts.
 */
static int
from_pem(const char *s, size_t n, X509 **out, struct mdm_err *e)
{
	struct mdm_buf text, der;
	size_t i, body, tail;
	long begin, end;
	int rc = -1;

	mdm_buf_init(&text, MDM_DEVAUTH_CAP_HEADER);
	mdm_buf_init(&der, MDM_DEVAUTH_CAP_HEADER);
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		int hi, lo;

		if (c == '%') {
			if (n - i < 3 ||
			    (hi = mdm_hex_digit((unsigned char)s[i + 1])) < 0 ||
			    (lo = mdm_hex_digit((unsigned char)s[i + 2])) < 0) {
				mdm_err_set(e, MDM_E_DATA,
				    "bad %%-escape at offset %zu", i);
				goto out;
			}
			c = (unsigned char)(hi << 4 | lo);
			i += 2;
		}
		if (mdm_buf_append(&text, &c, 1, e) == -1)
			goto out;
	}
	begin = find(text.data, text.len, pem_begin);
	body = begin < 0 ? 0 : (size_t)begin + strlen(pem_begin);
	/*
	 * end counts from body: the end marker must come after the begin
	 * marker, which it could otherwise overlap by the shared dashes
	 * ("-----BEGIN CERTIFICATE-----END CERTIFICATE-----").
	 */
	end = begin < 0 ? -1 : find(text.data + body, text.len - body,
	    pem_end);
	if (end < 0) {
		mdm_err_set(e, MDM_E_DATA, "not a PEM certificate");
		goto out;
	}
	tail = body + (size_t)end + strlen(pem_end);
	if (!only_space(text.data, (size_t)begin) ||
	    !only_space(text.data + tail, text.len - tail)) {
		mdm_err_set(e, MDM_E_DATA, "text around the PEM certificate");
		goto out;
	}
	if (mdm_base64_decode((const char *)text.data + body, (size_t)end,
	    &der, e) == -1)
		goto out;
	rc = parse_der(der.data, der.len, out, e);
out:
	mdm_buf_release(&text);
	mdm_buf_release(&der);
	return rc;
}

int
mdm_devauth_from_header(const char *value, X509 **out, struct mdm_err *e)
{
	size_t n;
	int rc;

	*out = NULL;
	if (value == NULL)
		return mdm_err_set(e, MDM_E_NOINPUT,
		    "no client certificate header");
	if ((n = strnlen(value, MDM_DEVAUTH_CAP_HEADER + 1)) >
	    MDM_DEVAUTH_CAP_HEADER)
		return mdm_err_set(e, MDM_E_TOOBIG, "client certificate header "
		    "longer than %u bytes", MDM_DEVAUTH_CAP_HEADER);
	/* Header values may carry optional whitespace around them. */
	while (n > 0 && (*value == ' ' || *value == '\t')) {
		value++;
		n--;
	}
	while (n > 0 && (value[n - 1] == ' ' || value[n - 1] == '\t'))
		n--;
	if (n == 0 || (n == 6 && memcmp(value, "(null)", 6) == 0) ||
	    (n == 1 && *value == '-'))
		return mdm_err_set(e, MDM_E_NOINPUT,
		    "no client certificate in the header");
	if (n >= 2 && value[0] == ':' && value[n - 1] == ':')
		rc = from_rfc9440(value + 1, n - 2, out, e);
	else
		rc = from_pem(value, n, out, e);
	if (rc == -1)
		mdm_err_prefix(e, "client certificate header");
	return rc;
}

/* Certificates in one signature that the cache takes; more: uncached. */
#define SPLIT_MAX_CERTS 8

/* Entries per set: a set-associative cache barely thrashes. */
#define CACHE_WAYS	4

struct slot {
	unsigned char sha[SHA256_DIGEST_LENGTH];
	X509 *cert;			/* NULL: empty */
	time_t verified_until;		/* 0: not verified */
	unsigned long used;		/* last use, for eviction */
};

struct mdm_devauth_cache {
	struct slot slot[MDM_DEVAUTH_CACHE_SLOTS];
	unsigned long clock;
};

int
mdm_devauth_cache_new(struct mdm_devauth_cache **out, struct mdm_err *e)
{
	if ((*out = calloc(1, sizeof(**out))) == NULL)
		return mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
	return 0;
}

void
mdm_devauth_cache_free(struct mdm_devauth_cache *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < MDM_DEVAUTH_CACHE_SLOTS; i++)
		X509_free(c->slot[i].cert);
	free(c);
}

/* The first slot of sha's set. */
static struct slot *
set_of(struct mdm_devauth_cache *c, const unsigned char *sha)
{
	size_t sets = MDM_DEVAUTH_CACHE_SLOTS / CACHE_WAYS;

	return &c->slot[((size_t)sha[0] << 16 | (size_t)sha[1] << 8 | sha[2]) %
	    sets * CACHE_WAYS];
}

/* The slot holding sha, or NULL. */
static struct slot *
lookup(struct mdm_devauth_cache *c, const unsigned char *sha)
{
	struct slot *set = set_of(c, sha);
	size_t i;

	for (i = 0; i < CACHE_WAYS; i++)
		if (set[i].cert != NULL &&
		    memcmp(set[i].sha, sha, sizeof(set[i].sha)) == 0) {
			set[i].used = ++c->clock;
			return &set[i];
		}
	return NULL;
}

/*
 * Puts cert (a reference is taken) in sha's set, in an empty slot or
 * the one used longest ago.
 */
static struct slot *
insert(struct mdm_devauth_cache *c, const unsigned char *sha, X509 *cert)
{
	struct slot *set = set_of(c, sha), *sl = set;
	size_t i;

	for (i = 1; i < CACHE_WAYS && sl->cert != NULL; i++)
		if (set[i].cert == NULL || set[i].used < sl->used)
			sl = &set[i];
	if (!X509_up_ref(cert))
		return NULL;
	X509_free(sl->cert);
	memcpy(sl->sha, sha, sizeof(sl->sha));
	sl->cert = cert;
	sl->verified_until = 0;
	sl->used = ++c->clock;
	return sl;
}

/* Nesting the walk below follows into indefinite-length elements. */
#define SPLIT_MAX_DEPTH 16

/*
 * The end of the DER or BER element at p (nothing read past end), or
 * NULL when it is malformed.  An indefinite length is followed through
 * its children to their end-of-contents octets.
 */
static const unsigned char *
element_end(const unsigned char *p, const unsigned char *end, int depth)
{
	const unsigned char *q = p;
	long l;
	int tag, cls, r;

	if (depth > SPLIT_MAX_DEPTH || p >= end)
		return NULL;
	r = ASN1_get_object(&q, &l, &tag, &cls, end - p);
	if (r & 0x80)
		return NULL;
	if (!(r & 1))
		return q + l;
	while (q != NULL && q < end) {
		if (end - q >= 2 && q[0] == 0 && q[1] == 0)
			return q + 2;
		q = element_end(q, end, depth + 1);
	}
	return NULL;
}

/* A constructed header: where it is, and its content length. */
struct hdr {
	const unsigned char *at, *content;
	long len;		/* content length; unused when indefinite */
	int inf, tag, cls;
};

static int
read_hdr(const unsigned char *p, const unsigned char *end, struct hdr *h)
{
	const unsigned char *q = p;
	int r;

	if (p >= end)
		return -1;
	r = ASN1_get_object(&q, &h->len, &h->tag, &h->cls, end - p);
	if ((r & 0x80) || !(r & V_ASN1_CONSTRUCTED))
		return -1;
	h->at = p;
	h->content = q;
	h->inf = r & 1;
	return 0;
}

/* The signature without its certificates, and where they were. */
struct split {
	struct mdm_buf rest;
	const unsigned char *cert[SPLIT_MAX_CERTS];
	size_t cert_len[SPLIT_MAX_CERTS];
	size_t n;
};

/*
 * Writes h's header for content shrunk by `cut` bytes; returns how much
 * smaller the whole element got, or -1.
 */
static long
put_hdr(struct mdm_buf *b, const struct hdr *h, long cut, struct mdm_err *e)
{
	unsigned char buf[16], *q = buf;
	long old_hdr = (long)(h->content - h->at);

	if (h->inf)		/* no length to fix: the bytes just go */
		return mdm_buf_append(b, h->at, (size_t)old_hdr, e) == -1 ?
		    -1 : cut;
	if (ASN1_object_size(1, h->len - cut, h->tag) - (h->len - cut) >
	    (int)sizeof(buf)) {
		mdm_err_set(e, MDM_E_SOFTWARE, "ASN.1 header too long");
		return -1;
	}
	ASN1_put_object(&q, 1, h->len - cut, h->tag, h->cls);
	if (mdm_buf_append(b, buf, (size_t)(q - buf), e) == -1)
		return -1;
	return old_hdr + h->len - (long)(q - buf) - (h->len - cut);
}

/*
 * Cuts the certificates field out of a ContentInfo holding a SignedData
 * (DER, or BER as some signers write it), fixing the definite lengths
 * around it.  1: done; 0: the message is not shaped so (no certificates,
 * too many, malformed): verify it as it is.  Every length is checked
 * against what is left, and OpenSSL parses the result again and judges
 * it as it would the original.
 */
static int
split_certs(const unsigned char *der, size_t len, struct split *sp,
    struct mdm_err *e)
{
	const unsigned char *end = der + len, *oid_end, *p, *q, *sd_end;
	const unsigned char *certs = NULL, *certs_end = NULL;
	struct hdr h[3];
	long cut, l;
	int tag, cls, r, i;

	sp->n = 0;
	if (len > LONG_MAX / 2 || element_end(der, end, 0) != end ||
	    read_hdr(der, end, &h[0]) == -1 || h[0].tag != V_ASN1_SEQUENCE)
		return 0;
	q = h[0].content;
	r = ASN1_get_object(&q, &l, &tag, &cls, end - q);
	if ((r & 0x81) || tag != V_ASN1_OBJECT)
		return 0;
	oid_end = q + l;
	if (read_hdr(oid_end, end, &h[1]) == -1 || h[1].tag != 0 ||
	    h[1].cls != V_ASN1_CONTEXT_SPECIFIC ||
	    read_hdr(h[1].content, end, &h[2]) == -1 ||
	    h[2].tag != V_ASN1_SEQUENCE || h[2].cls != V_ASN1_UNIVERSAL)
		return 0;
	sd_end = h[2].inf ? end : h[2].content + h[2].len;
	for (p = h[2].content; p != NULL && p < sd_end; p = q) {
		if (h[2].inf && sd_end - p >= 2 && p[0] == 0 && p[1] == 0)
			break;
		if ((q = element_end(p, sd_end, 1)) == NULL)
			return 0;
		if (p[0] == (V_ASN1_CONTEXT_SPECIFIC | V_ASN1_CONSTRUCTED)) {
			certs = p;
			certs_end = q;
			break;
		}
	}
	if (certs == NULL)
		return 0;
	for (i = 0; i < 3; i++)
		if (!h[i].inf && (certs < h[i].content ||
		    certs_end > h[i].content + h[i].len))
			return 0;
	{
		struct hdr ch;

		if (read_hdr(certs, certs_end, &ch) == -1)
			return 0;
		for (p = ch.content; p < certs_end; p = q) {
			if (ch.inf && certs_end - p >= 2 && p[0] == 0 &&
			    p[1] == 0)
				break;
			if (sp->n == SPLIT_MAX_CERTS || p[0] !=
			    (V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED) ||
			    (q = element_end(p, certs_end, 2)) == NULL)
				return 0;
			sp->cert[sp->n] = p;
			sp->cert_len[sp->n++] = (size_t)(q - p);
		}
	}
	if (sp->n == 0)
		return 0;
	/*
	 * Inside out: each definite length shrinks by what went from the
	 * element it holds, which may be more than the certificates when a
	 * length got shorter to write.
	 */
	mdm_buf_reset(&sp->rest);
	{
		struct mdm_buf hb[3];
		long shrink = (long)(certs_end - certs);

		for (i = 0; i < 3; i++)
			mdm_buf_init(&hb[i], 16);
		for (i = 2, cut = shrink; i >= 0 && cut >= 0; i--)
			cut = put_hdr(&hb[i], &h[i], cut, e);
		r = cut < 0 ||
		    mdm_buf_append(&sp->rest, hb[0].data, hb[0].len, e) == -1 ||
		    mdm_buf_append(&sp->rest, h[0].content,
		    (size_t)(oid_end - h[0].content), e) == -1 ||
		    mdm_buf_append(&sp->rest, hb[1].data, hb[1].len, e) == -1 ||
		    mdm_buf_append(&sp->rest, hb[2].data, hb[2].len, e) == -1 ||
		    mdm_buf_append(&sp->rest, h[2].content,
		    (size_t)(certs - h[2].content), e) == -1 ||
		    mdm_buf_append(&sp->rest, certs_end,
		    (size_t)(end - certs_end), e) == -1 ? -1 : 1;
		for (i = 0; i < 3; i++)
			mdm_buf_release(&hb[i]);
	}
	return r;
}

/*
 * The certificates of sp as X509s, from the cache or parsed and put in
 * it; *out owned (sk_X509_pop_free).
 */
static int
cached_certs(struct mdm_devauth_cache *cache, const struct split *sp,
    STACK_OF(X509) **out, struct mdm_err *e)
{
	unsigned char sha[SHA256_DIGEST_LENGTH];
	const unsigned char *p;
	struct slot *sl;
	X509 *x;
	size_t i;

	if ((*out = sk_X509_new_null()) == NULL)
		return mdm_err_set_ssl(e, MDM_E_SOFTWARE, "sk_X509_new_null");
	for (i = 0; i < sp->n; i++) {
		if (SHA256(sp->cert[i], sp->cert_len[i], sha) == NULL)
			goto ssl;
		if ((sl = lookup(cache, sha)) != NULL) {
			x = sl->cert;
			if (!X509_up_ref(x))
				goto ssl;
		} else {
			p = sp->cert[i];
			x = d2i_X509(NULL, &p, (long)sp->cert_len[i]);
			if (x == NULL || p != sp->cert[i] + sp->cert_len[i]) {
				X509_free(x);
				sk_X509_pop_free(*out, X509_free);
				*out = NULL;
				return mdm_err_set_ssl(e, MDM_E_DATA,
				    "Mdm-Signature: a certificate does not "
				    "parse");
			}
			insert(cache, sha, x);
		}
		if (!sk_X509_push(*out, x)) {
			X509_free(x);
			goto ssl;
		}
	}
	return 0;
ssl:
	sk_X509_pop_free(*out, X509_free);
	*out = NULL;
	return mdm_err_set_ssl(e, MDM_E_SOFTWARE, "certificate cache");
}

int
mdm_devauth_from_signature(const char *value, const void *body, size_t len,
    X509 **out, struct mdm_err *e)
{
	return mdm_devauth_from_signature_cached(NULL, value, body, len, out,
	    e);
}

int
mdm_devauth_from_signature_cached(struct mdm_devauth_cache *cache,
    const char *value, const void *body, size_t len, X509 **out,
    struct mdm_err *e)
{
	struct mdm_cms_verified v;
	struct split sp;
	struct mdm_buf der;
	STACK_OF(X509) *certs = NULL;
	size_t n;
	int rc = -1, split = 0;

	*out = NULL;
	memset(&v, 0, sizeof(v));
	mdm_buf_init(&der, MDM_DEVAUTH_CAP_SIGNATURE);
	mdm_buf_init(&sp.rest, MDM_DEVAUTH_CAP_SIGNATURE);
	if (body == NULL && len > 0) {
		mdm_err_set(e, MDM_E_USAGE, "body length without a body");
		goto out;
	}
	n = value != NULL ? strnlen(value, MDM_DEVAUTH_CAP_SIGNATURE + 1) : 0;
	if (n > MDM_DEVAUTH_CAP_SIGNATURE) {
		mdm_err_set(e, MDM_E_TOOBIG, "Mdm-Signature longer than %u "
		    "bytes", MDM_DEVAUTH_CAP_SIGNATURE);
		goto out;
	}
	if (only_space((const unsigned char *)value, n)) {
		mdm_err_set(e, MDM_E_NOINPUT, "empty Mdm-Signature");
		goto out;
	}
	if (mdm_base64_decode(value, n, &der, e) == -1) {
		mdm_err_prefix(e, "Mdm-Signature");
		goto out;
	}
	/*
	 * Never NULL here: mdm_cms_verify would take that as "attached" and
	 * accept a message that signs content of its own instead of body.
	 */
	if (body == NULL)
		body = "";
	if (cache != NULL && (split = split_certs(der.data, der.len, &sp,
	    e)) == -1)
		goto out;
	if (split && cached_certs(cache, &sp, &certs, e) == -1)
		goto out;
	if ((split ? mdm_cms_verify_certs(sp.rest.data, sp.rest.len, body,
	    len, certs, &v, e) : mdm_cms_verify(der.data, der.len, body, len,
	    NULL, &v, e)) == -1) {
		mdm_err_prefix(e, "Mdm-Signature");
		goto out;
	}
	*out = v.signer;
	v.signer = NULL;
	rc = 0;
out:
	sk_X509_pop_free(certs, X509_free);
	mdm_cms_verified_release(&v);
	mdm_buf_release(&sp.rest);
	mdm_buf_release(&der);
	return rc;
}

int
mdm_devauth_verify_cached(struct mdm_devauth_cache *cache, X509 *cert,
    X509 *ca, STACK_OF(X509) *untrusted, char hash[65], struct mdm_err *e)
{
	unsigned char sha[SHA256_DIGEST_LENGTH];
	unsigned int n = 0;
	struct slot *sl;
	time_t now = time(NULL), until;
	int day, sec;

	if (cache == NULL || cert == NULL ||
	    !X509_digest(cert, EVP_sha256(), sha, &n) || n != sizeof(sha))
		return mdm_devauth_verify(cert, ca, untrusted, 0, hash, e);
	sl = lookup(cache, sha);
	if (sl != NULL && sl->verified_until > now) {
		mdm_hex_lower(sha, sizeof(sha), hash);
		return 0;
	}
	if (mdm_devauth_verify(cert, ca, untrusted, 0, hash, e) == -1)
		return -1;
	if (sl == NULL && (sl = insert(cache, sha, cert)) == NULL)
		return 0;
	until = now + MDM_DEVAUTH_VERIFIED_FOR;
	/* never past notAfter: an expired certificate fails again */
	if (ASN1_TIME_diff(&day, &sec, NULL, X509_get0_notAfter(cert)) &&
	    (long long)day * 86400 + sec < MDM_DEVAUTH_VERIFIED_FOR)
		until = now + (long long)day * 86400 + sec;
	sl->verified_until = until;
	return 0;
}

int
mdm_devauth_verify(X509 *cert, X509 *ca, STACK_OF(X509) *untrusted,
    time_t at, char hash[65], struct mdm_err *e)
{
	hash[0] = '\0';
	if (mdm_x509_verify(cert, ca, untrusted, at, e) == -1) {
		mdm_err_prefix(e, "device identity");
		return -1;
	}
	if (mdm_x509_sha256_hex(cert, hash, e) == -1) {
		hash[0] = '\0';
		return -1;
	}
	return 0;
}
