/*
 * test_der: the DER writer.  Length fields at every size boundary
 * (127/128, 255/256, 65535/65536), nested values whose lengths grow
 * after their contents are written, INTEGERs with and without a leading
 * zero, object identifiers, both time forms and the years outside them,
 * SET OF ordering (including a member that is a prefix of another), and
 * the sticky errors: over the buffer's cap, a value left open, one
 * closed that was never begun, each leaving the buffer as it was.
 * Nested output is also read back by OpenSSL's parser.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/objects.h>

#include "buf.h"
#include "der.h"
#include "tap.h"

/* The header tag and length octets of a value of n bytes. */
static int
header_is(const struct mdm_buf *b, const unsigned char *want, size_t n,
    size_t body)
{
	return b->len == n + body && memcmp(b->data, want, n) == 0;
}

static void
test_lengths(void)
{
	static const struct {
		size_t n;
		unsigned char hdr[6];
		size_t hlen;
	} c[] = {
		{ 0, { 0x04, 0x00 }, 2 },
		{ 127, { 0x04, 0x7f }, 2 },
		{ 128, { 0x04, 0x81, 0x80 }, 3 },
		{ 255, { 0x04, 0x81, 0xff }, 3 },
		{ 256, { 0x04, 0x82, 0x01, 0x00 }, 4 },
		{ 65535, { 0x04, 0x82, 0xff, 0xff }, 4 },
		{ 65536, { 0x04, 0x83, 0x01, 0x00, 0x00 }, 5 },
	};
	unsigned char *body = calloc(1, 65536);
	struct mdm_buf b;
	struct mdm_der w;
	struct mdm_err e;
	size_t i, m;

	if (body == NULL)
		exit(99);
	mdm_buf_init(&b, 1u << 20);
	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		mdm_buf_reset(&b);
		mdm_der_init(&w, &b);
		mdm_der_put(&w, MDM_DER_OCTET_STRING, body, c[i].n);
		ok(mdm_der_finish(&w, &e) == 0 &&
		    header_is(&b, c[i].hdr, c[i].hlen, c[i].n),
		    "put of %zu bytes", c[i].n);
		/* The same through begin/end: the length grows afterwards. */
		mdm_buf_reset(&b);
		mdm_der_init(&w, &b);
		m = mdm_der_begin(&w, MDM_DER_OCTET_STRING);
		mdm_der_raw(&w, body, c[i].n);
		mdm_der_end(&w, m);
		ok(mdm_der_finish(&w, &e) == 0 &&
		    header_is(&b, c[i].hdr, c[i].hlen, c[i].n),
		    "begin/end of %zu bytes", c[i].n);
	}
	free(body);
	mdm_buf_release(&b);
}

static void
test_nested(void)
{
	unsigned char fill[300];
	const unsigned char *p;
	ASN1_SEQUENCE_ANY *seq;
	struct mdm_buf b;
	struct mdm_der w;
	struct mdm_err e;
	size_t outer, inner;

	memset(fill, 'x', sizeof(fill));
	mdm_buf_init(&b, 4096);
	mdm_der_init(&w, &b);
	outer = mdm_der_begin(&w, MDM_DER_SEQUENCE);
	mdm_der_uint(&w, 1);
	inner = mdm_der_begin(&w, MDM_DER_SEQUENCE);
	mdm_der_put(&w, MDM_DER_OCTET_STRING, fill, sizeof(fill));
	mdm_der_end(&w, inner);
	mdm_der_put(&w, MDM_DER_NULL, NULL, 0);
	mdm_der_end(&w, outer);
	is_int(mdm_der_finish(&w, &e), 0, "nested values");
	/* 30 82 01 39 | 02 01 01 | 30 82 01 30 | 04 82 01 2c ... | 05 00 */
	ok(b.len == 4 + 3 + 4 + 4 + 300 + 2 && b.data[0] == 0x30 &&
	    b.data[1] == 0x82 && b.data[2] == 0x01 && b.data[3] == 0x39 &&
	    b.data[7] == 0x30 && b.data[8] == 0x82 && b.data[10] == 0x30,
	    "both lengths in their long form");
	p = b.data;
	seq = d2i_ASN1_SEQUENCE_ANY(NULL, &p, (long)b.len);
	ok(seq != NULL && p == b.data + b.len && sk_ASN1_TYPE_num(seq) == 3,
	    "OpenSSL reads three members");
	sk_ASN1_TYPE_pop_free(seq, ASN1_TYPE_free);
	mdm_buf_release(&b);
}

static void
test_primitives(void)
{
	static const struct {
		unsigned v;
		const char *want;
		size_t n;
	} ints[] = {
		{ 0, "\x02\x01\x00", 3 },
		{ 127, "\x02\x01\x7f", 3 },
		{ 128, "\x02\x02\x00\x80", 4 },
		{ 256, "\x02\x02\x01\x00", 4 },
		{ 0xffffffffu, "\x02\x05\x00\xff\xff\xff\xff", 7 },
	};
	static const unsigned char data_oid[] = { 0x06, 0x09, 0x2a, 0x86,
	    0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01 };
	struct mdm_buf b;
	struct mdm_der w;
	struct mdm_err e;
	size_t i;

	mdm_buf_init(&b, 256);
	for (i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
		mdm_buf_reset(&b);
		mdm_der_init(&w, &b);
		mdm_der_uint(&w, ints[i].v);
		ok(mdm_der_finish(&w, &e) == 0 && b.len == ints[i].n &&
		    memcmp(b.data, ints[i].want, b.len) == 0,
		    "INTEGER %u", ints[i].v);
	}
	mdm_buf_reset(&b);
	mdm_der_init(&w, &b);
	mdm_der_nid(&w, NID_pkcs7_data);
	ok(mdm_der_finish(&w, &e) == 0 && b.len == sizeof(data_oid) &&
	    memcmp(b.data, data_oid, b.len) == 0, "id-data");
	mdm_buf_reset(&b);
	mdm_der_init(&w, &b);
	mdm_der_nid(&w, NID_undef);
	is_int(mdm_der_finish(&w, &e), -1, "no object for NID_undef");
	mdm_buf_release(&b);
}

static void
test_times(void)
{
	char s[MDM_DER_TIME_MAX];
	unsigned char tag = 0;

	is_int(mdm_der_time_str(0, s, &tag), 0, "1970");
	is_str(s, "700101000000Z", "as UTCTime text");
	is_int(tag, MDM_DER_UTCTIME, "with the UTCTime tag");
	is_int(mdm_der_time_str(2524607999LL, s, &tag), 0, "end of 2049");
	is_str(s, "491231235959Z", "still UTCTime");
	is_int(mdm_der_time_str(2524608000LL, s, &tag), 0, "2050");
	is_str(s, "20500101000000Z", "as GeneralizedTime text");
	is_int(tag, MDM_DER_GENTIME, "with the GeneralizedTime tag");
	is_int(mdm_der_time_str(-631152001LL, s, &tag), -1, "1949 is refused");
	is_int(mdm_der_time_str(253402300800LL, s, &tag), -1,
	    "10000 is refused");
}

static void
test_set_of(void)
{
	static const unsigned char a[] = { 0x30, 0x03, 0x02, 0x01, 0x05 };
	static const unsigned char b2[] = { 0x30, 0x03, 0x02, 0x01, 0x01 };
	static const unsigned char c[] = { 0x04, 0x01, 0x00 };
	static const unsigned char c7[] = { 0x04, 0x01, 0x07 };
	static const unsigned char pre[] = { 0x04, 0x01 };
	static const unsigned char zpad[] = { 0x04, 0x01, 0x00, 0x00 };
	const unsigned char *items[] = { a, b2, c };
	const size_t lens[] = { sizeof(a), sizeof(b2), sizeof(c) };
	const unsigned char *items2[] = { c7, pre };
	const size_t lens2[] = { sizeof(c7), sizeof(pre) };
	const unsigned char *items3[] = { zpad, c };
	const size_t lens3[] = { sizeof(zpad), sizeof(c) };
	static const unsigned char want[] = { 0x04, 0x01, 0x00, 0x30, 0x03,
	    0x02, 0x01, 0x01, 0x30, 0x03, 0x02, 0x01, 0x05 };
	static const unsigned char want2[] = { 0x04, 0x01, 0x04, 0x01,
	    0x07 };
	struct mdm_buf b;
	struct mdm_der w;
	struct mdm_err e;

	mdm_buf_init(&b, 256);
	mdm_der_init(&w, &b);
	mdm_der_set_of(&w, items, lens, 3);
	ok(mdm_der_finish(&w, &e) == 0 && b.len == sizeof(want) &&
	    memcmp(b.data, want, b.len) == 0, "members in DER order");
	mdm_buf_reset(&b);
	mdm_der_init(&w, &b);
	mdm_der_set_of(&w, items2, lens2, 2);
	ok(mdm_der_finish(&w, &e) == 0 && b.len == sizeof(want2) &&
	    memcmp(b.data, want2, b.len) == 0, "a prefix comes first");
	/* Padded with zeros the two compare equal: both orders are DER. */
	mdm_buf_reset(&b);
	mdm_der_init(&w, &b);
	mdm_der_set_of(&w, items3, lens3, 2);
	is_int(mdm_der_finish(&w, &e), 0, "equal under zero padding");
	is_int((long long)b.len, sizeof(zpad) + sizeof(c), "both written");
	mdm_buf_release(&b);
}

static void
test_errors(void)
{
	unsigned char fill[100];
	struct mdm_buf b;
	struct mdm_der w;
	struct mdm_err e;
	size_t m;

	memset(fill, 0, sizeof(fill));
	mdm_buf_init(&b, 50);
	mdm_der_init(&w, &b);
	m = mdm_der_begin(&w, MDM_DER_SEQUENCE);
	mdm_der_put(&w, MDM_DER_OCTET_STRING, fill, sizeof(fill));
	mdm_der_uint(&w, 5);
	mdm_der_end(&w, m);
	is_int(mdm_der_finish(&w, &e), -1, "over the cap");
	is_int(e.code, MDM_E_TOOBIG, "is MDM_E_TOOBIG");
	is_int((long long)b.len, 0, "and nothing is left written");
	mdm_buf_release(&b);

	/* Growing a length at end needs room too. */
	mdm_buf_init(&b, 130);
	mdm_der_init(&w, &b);
	m = mdm_der_begin(&w, MDM_DER_SEQUENCE);
	mdm_der_raw(&w, fill, 100);
	mdm_der_raw(&w, fill, 28);
	mdm_der_end(&w, m);
	is_int(mdm_der_finish(&w, &e), -1, "no room for the long length");
	is_int(e.code, MDM_E_TOOBIG, "is MDM_E_TOOBIG as well");
	mdm_buf_release(&b);

	mdm_buf_init(&b, 256);
	mdm_der_init(&w, &b);
	(void)mdm_der_begin(&w, MDM_DER_SEQUENCE);
	is_int(mdm_der_finish(&w, &e), -1, "a value left open");
	mdm_buf_reset(&b);
	mdm_der_init(&w, &b);
	mdm_der_end(&w, 0);
	is_int(mdm_der_finish(&w, &e), -1, "a value ended, never begun");
	mdm_buf_release(&b);
}

int
main(void)
{
	test_lengths();
	test_nested();
	test_primitives();
	test_times();
	test_set_of();
	test_errors();
	return tap_done();
}
