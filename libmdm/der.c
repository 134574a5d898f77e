#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/objects.h>

#include "buf.h"
#include "der.h"
#include "mdm_int.h"

/* Longest length field: 0x84 and four octets (4 GiB is past any cap). */
#define LEN_MAX_OCTETS	5
/* Longest SET OF this writes (signed attributes: a dozen at most). */
#define SET_MAX		32

void
mdm_der_init(struct mdm_der *w, struct mdm_buf *out)
{
	memset(w, 0, sizeof(*w));
	w->out = out;
	w->start = out->len;
	mdm_err_clear(&w->err);
}

static void
append(struct mdm_der *w, const void *p, size_t n)
{
	if (!w->failed && mdm_buf_append(w->out, p, n, &w->err) == -1)
		w->failed = 1;
}

static void
fail(struct mdm_der *w, const char *what)
{
	if (!w->failed)
		mdm_err_set_ssl(&w->err, MDM_E_SOFTWARE, "cannot encode %s",
		    what);
	w->failed = 1;
}

/* The length field for n into len; its size. */
static size_t
length_octets(size_t n, unsigned char len[LEN_MAX_OCTETS])
{
	size_t k = 0, i;

	if (n < 0x80) {
		len[0] = (unsigned char)n;
		return 1;
	}
	for (i = n; i > 0; i >>= 8)
		k++;
	len[0] = (unsigned char)(0x80 | k);
	for (i = k; i > 0; i--, n >>= 8)
		len[i] = (unsigned char)(n & 0xff);
	return k + 1;
}

size_t
mdm_der_begin(struct mdm_der *w, unsigned char tag)
{
	static const unsigned char placeholder;
	size_t mark = w->out->len;

	append(w, &tag, 1);
	append(w, &placeholder, 1);
	w->depth++;
	return mark;
}

void
mdm_der_end(struct mdm_der *w, size_t mark)
{
	unsigned char len[LEN_MAX_OCTETS];
	size_t body, n, k;

	w->depth--;
	if (w->failed)
		return;
	body = mark + 2;
	if (w->depth < 0 || body > w->out->len) {
		fail(w, "a value that was not begun");
		return;
	}
	n = w->out->len - body;
	if (n > 0xffffffffu) {
		fail(w, "a value over 4 GiB");
		return;
	}
	k = length_octets(n, len);
	/* Room for the longer length field, then the contents moved up. */
	if (k > 1) {
		append(w, len, k - 1);
		if (w->failed)
			return;
		memmove(w->out->data + body + k - 1, w->out->data + body, n);
	}
	memcpy(w->out->data + mark + 1, len, k);
}

void
mdm_der_put(struct mdm_der *w, unsigned char tag, const void *p, size_t n)
{
	unsigned char len[LEN_MAX_OCTETS];

	if (n > 0xffffffffu) {
		fail(w, "a value over 4 GiB");
		return;
	}
	append(w, &tag, 1);
	append(w, len, length_octets(n, len));
	if (n > 0)
		append(w, p, n);
}

void
mdm_der_raw(struct mdm_der *w, const void *p, size_t n)
{
	if (n > 0)
		append(w, p, n);
}

void
mdm_der_uint(struct mdm_der *w, unsigned v)
{
	unsigned char b[sizeof(v) + 1];
	size_t i = sizeof(b);

	do {
		b[--i] = (unsigned char)(v & 0xff);
		v >>= 8;
	} while (v > 0);
	/* A leading 1 bit would make it negative. */
	if (b[i] & 0x80)
		b[--i] = 0;
	mdm_der_put(w, MDM_DER_INTEGER, b + i, sizeof(b) - i);
}

void
mdm_der_obj(struct mdm_der *w, const ASN1_OBJECT *obj)
{
	const unsigned char *p;
	int n;

	if (obj == NULL || (n = OBJ_length(obj)) <= 0 ||
	    (p = OBJ_get0_data(obj)) == NULL) {
		fail(w, "an object identifier");
		return;
	}
	mdm_der_put(w, MDM_DER_OID, p, (size_t)n);
}

void
mdm_der_nid(struct mdm_der *w, int nid)
{
	mdm_der_obj(w, OBJ_nid2obj(nid));
}

int
mdm_der_time_str(long long unix_seconds, char out[MDM_DER_TIME_MAX],
    unsigned char *tag)
{
	struct tm tm;
	time_t t = (time_t)unix_seconds;
	int year;

	if (gmtime_r(&t, &tm) == NULL)
		return -1;
	year = tm.tm_year + 1900;
	if (year < 1950 || year > 9999)
		return -1;
	/* The fields are in range; % tells the compiler so. */
	if (year < 2050) {
		*tag = MDM_DER_UTCTIME;
		snprintf(out, MDM_DER_TIME_MAX, "%02u%02u%02u%02u%02u%02uZ",
		    (unsigned)year % 100, (unsigned)(tm.tm_mon + 1) % 100,
		    (unsigned)tm.tm_mday % 100, (unsigned)tm.tm_hour % 100,
		    (unsigned)tm.tm_min % 100, (unsigned)tm.tm_sec % 100);
	} else {
		*tag = MDM_DER_GENTIME;
		snprintf(out, MDM_DER_TIME_MAX, "%04u%02u%02u%02u%02u%02uZ",
		    (unsigned)year % 10000, (unsigned)(tm.tm_mon + 1) % 100,
		    (unsigned)tm.tm_mday % 100, (unsigned)tm.tm_hour % 100,
		    (unsigned)tm.tm_min % 100, (unsigned)tm.tm_sec % 100);
	}
	return 0;
}

void
mdm_der_i2d(struct mdm_der *w, const void *obj, const ASN1_ITEM *it)
{
	unsigned char *der = NULL;
	int n;

	if (w->failed)
		return;
	if ((n = ASN1_item_i2d((const ASN1_VALUE *)obj, &der, it)) <= 0) {
		fail(w, "a value");
		return;
	}
	append(w, der, (size_t)n);
	OPENSSL_free(der);
}

struct member {
	const unsigned char *p;
	size_t n;
};

/* X.690 11.6: as octet strings, the shorter padded with zeros. */
static int
member_cmp(const void *a, const void *b)
{
	const struct member *x = a, *y = b;
	const struct member *longer = x->n > y->n ? x : y;
	size_t n = x->n < y->n ? x->n : y->n, i;
	int c = memcmp(x->p, y->p, n);

	if (c != 0)
		return c;
	for (i = n; i < longer->n; i++)
		if (longer->p[i] != 0)
			return longer == x ? 1 : -1;
	return 0;
}

void
mdm_der_set_of(struct mdm_der *w, const unsigned char *const *items,
    const size_t *lens, size_t n)
{
	struct member m[SET_MAX];
	size_t i;

	if (n > SET_MAX) {
		fail(w, "a SET OF that long");
		return;
	}
	for (i = 0; i < n; i++) {
		m[i].p = items[i];
		m[i].n = lens[i];
	}
	qsort(m, n, sizeof(m[0]), member_cmp);
	for (i = 0; i < n; i++)
		append(w, m[i].p, m[i].n);
}

void
mdm_der_fail(struct mdm_der *w, const struct mdm_err *why)
{
	if (!w->failed)
		w->err = *why;
	w->failed = 1;
}

int
mdm_der_finish(struct mdm_der *w, struct mdm_err *e)
{
	if (!w->failed && w->depth != 0)
		fail(w, "a value left open");
	if (!w->failed)
		return 0;
	w->out->len = w->start;
	if (w->out->data != NULL)
		w->out->data[w->start] = '\0';
	if (e != NULL)
		*e = w->err;
	return -1;
}
