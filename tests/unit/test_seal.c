/*
 * seal: round trips at lengths around the cipher's block and our chunk
 * size; every way a sealed value can be wrong (key, aad, each byte
 * flipped, each truncation, an extra byte) fails with MDM_E_CRYPTO and
 * leaves the output buffer as it was; the key file is created 0600 under
 * any umask, read back equal, never overwritten, and refused when others
 * can read it or it has the wrong length.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "buf.h"
#include "file.h"
#include "seal.h"
#include "tap.h"

static char dir[4096];

static const char *
at(const char *name)
{
	static char paths[4][4200];
	static int next;
	char *p = paths[next++ % 4];

	snprintf(p, sizeof(paths[0]), "%s/%s", dir, name);
	return p;
}

static int
mode_of(const char *path)
{
	struct stat st;

	if (lstat(path, &st) == -1)
		return -1;
	return (int)(st.st_mode & 07777);
}

static int
put(const char *path, const void *p, size_t n, mode_t mode)
{
	FILE *f;
	int rc = 0;

	unlink(path);
	if ((f = fopen(path, "wb")) == NULL)
		return -1;
	if (fwrite(p, 1, n, f) != n)
		rc = -1;
	if (fclose(f) != 0 || chmod(path, mode) != 0)
		rc = -1;
	return rc;
}

/* 1 if path holds exactly p[0..n). */
static int
holds(const char *path, const void *p, size_t n)
{
	unsigned char got[256];
	FILE *f;
	size_t r;

	if ((f = fopen(path, "rb")) == NULL)
		return 0;
	r = fread(got, 1, sizeof(got), f);
	fclose(f);
	return r == n && memcmp(got, p, n) == 0;
}

/* mdm_unseal's error code (MDM_E_OK on success); out must be unchanged
   on failure, else MDM_E_SOFTWARE. */
static int
open_err(const unsigned char *key, const void *s, size_t n, const char *aad,
    struct mdm_buf *out)
{
	struct mdm_err e;
	size_t before = out->len;

	if (mdm_unseal(key, s, n, aad, aad ? strlen(aad) : 0, out, &e) == 0)
		return MDM_E_OK;
	if (out->len != before || e.msg[0] == '\0')
		return MDM_E_SOFTWARE;
	return (int)e.code;
}

static void
test_round_trip(const unsigned char *key)
{
	static const size_t lens[] = { 0, 1, 15, 16, 17, 511, 512, 513, 1500,
	    4096 };
	unsigned char plain[4096];
	struct mdm_buf s, s2, o;
	struct mdm_err e;
	size_t i;
	int good = 1;

	RAND_bytes(plain, sizeof(plain));
	mdm_buf_init(&s, 1 << 16);
	mdm_buf_init(&s2, 1 << 16);
	mdm_buf_init_secret(&o, 1 << 16);
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		mdm_buf_reset(&s);
		mdm_buf_reset(&o);
		if (mdm_seal(key, plain, lens[i], "enr-1", 5, &s, &e) == -1 ||
		    s.len != lens[i] + MDM_SEAL_OVERHEAD || s.data[0] != 1 ||
		    mdm_unseal(key, s.data, s.len, "enr-1", 5, &o, &e) == -1 ||
		    o.len != lens[i] ||
		    (lens[i] > 0 && memcmp(o.data, plain, lens[i]) != 0)) {
			tap_diag("length %zu: %s", lens[i], e.msg);
			good = 0;
		}
	}
	ok(good, "round trip at lengths 0 to 4096");

	mdm_buf_reset(&s);
	mdm_buf_reset(&o);
	ok(mdm_seal(key, "token", 5, NULL, 0, &s, &e) == 0 &&
	    mdm_unseal(key, s.data, s.len, NULL, 0, &o, &e) == 0 &&
	    o.len == 5 && memcmp(o.data, "token", 5) == 0,
	    "round trip without aad");
	is_int(open_err(key, s.data, s.len, "enr-1", &o), MDM_E_CRYPTO,
	    "sealed without aad, opened with: crypto");

	mdm_buf_reset(&s);
	mdm_seal(key, "token", 5, "enr-1", 5, &s, &e);
	mdm_seal(key, "token", 5, "enr-1", 5, &s2, &e);
	ok(s.len == s2.len && memcmp(s.data, s2.data, s.len) != 0 &&
	    memcmp(s.data + 1, s2.data + 1, 12) != 0,
	    "same secret sealed twice: different nonces and bytes");

	/* Appends, after what out held already. */
	mdm_buf_reset(&o);
	mdm_buf_append_str(&o, "prefix", &e);
	ok(mdm_unseal(key, s.data, s.len, "enr-1", 5, &o, &e) == 0 &&
	    o.len == 11 && memcmp(o.data, "prefixtoken", 11) == 0,
	    "unseal appends");
	mdm_buf_reset(&s2);
	mdm_buf_append_str(&s2, "head", &e);
	ok(mdm_seal(key, "x", 1, NULL, 0, &s2, &e) == 0 &&
	    s2.len == 4 + 1 + MDM_SEAL_OVERHEAD &&
	    memcmp(s2.data, "head", 4) == 0, "seal appends");

	mdm_buf_release(&s);
	mdm_buf_release(&s2);
	mdm_buf_release_secret(&o);
}

static void
test_refusals(const unsigned char *key)
{
	static const char secret[] = "bootstrap token bytes, not really";
	unsigned char other[MDM_SEAL_KEY_LEN];
	struct mdm_buf s, o, small;
	struct mdm_err e;
	size_t i, n;
	int bad;

	memcpy(other, key, sizeof(other));
	other[31] ^= 1;
	mdm_buf_init(&s, 4096);
	mdm_buf_init_secret(&o, 4096);
	mdm_buf_append_str(&o, "kept", &e);
	mdm_seal(key, secret, sizeof(secret), "enr-1", 5, &s, &e);
	n = s.len;

	is_int(open_err(key, s.data, n, "enr-1", &o), MDM_E_OK, "opens");
	o.len = 4;
	is_int(open_err(other, s.data, n, "enr-1", &o), MDM_E_CRYPTO,
	    "wrong key: crypto");
	is_int(open_err(key, s.data, n, "enr-2", &o), MDM_E_CRYPTO,
	    "wrong aad: crypto");
	is_int(open_err(key, s.data, n, "enr-", &o), MDM_E_CRYPTO,
	    "shorter aad: crypto");
	is_int(open_err(key, s.data, n, NULL, &o), MDM_E_CRYPTO,
	    "no aad: crypto");

	bad = 0;
	for (i = 0; i < n; i++) {
		s.data[i] ^= 0x01;
		if (open_err(key, s.data, n, "enr-1", &o) != MDM_E_CRYPTO)
			bad++;
		s.data[i] ^= 0x81;
		if (open_err(key, s.data, n, "enr-1", &o) != MDM_E_CRYPTO)
			bad++;
		s.data[i] ^= 0x80;
	}
	ok(bad == 0, "each of %zu bytes flipped (two ways): crypto, out "
	    "untouched (%d wrong)", n, bad);
	bad = 0;
	for (i = 0; i < n; i++)
		if (open_err(key, s.data, i, "enr-1", &o) != MDM_E_CRYPTO)
			bad++;
	ok(bad == 0, "truncated at every length: crypto (%d wrong)", bad);
	is_int(open_err(key, NULL, 0, "enr-1", &o), MDM_E_CRYPTO,
	    "nothing at all: crypto");
	mdm_buf_append(&s, "", 1, &e);
	is_int(open_err(key, s.data, n + 1, "enr-1", &o), MDM_E_CRYPTO,
	    "a byte appended: crypto");
	s.data[0] = 2;
	is_int(open_err(key, s.data, n, "enr-1", &o), MDM_E_CRYPTO,
	    "unknown version: crypto");
	s.data[0] = 1;
	ok(o.len == 4 && memcmp(o.data, "kept", 4) == 0,
	    "out still holds what it held");

	/* Caps. */
	mdm_buf_init_secret(&small, 8);
	is_int(open_err(key, s.data, n, "enr-1", &small), MDM_E_TOOBIG,
	    "plaintext over out's cap: toobig, out untouched");
	mdm_buf_release_secret(&small);
	mdm_buf_init(&small, 8);
	ok(mdm_seal(key, secret, sizeof(secret), NULL, 0, &small, &e) == -1 &&
	    e.code == MDM_E_TOOBIG && small.len == 0,
	    "sealed value over out's cap: toobig, out untouched");
	mdm_buf_release(&small);
	ok(mdm_seal(key, secret, (size_t)MDM_SEAL_CAP + 1, NULL, 0, &s, &e) ==
	    -1 && e.code == MDM_E_TOOBIG, "secret over the cap: toobig");
	ok(mdm_seal(key, secret, 1, secret, (size_t)MDM_SEAL_CAP + 1, &s,
	    &e) == -1 && e.code == MDM_E_TOOBIG, "aad over the cap: toobig");
	ok(mdm_seal(key, NULL, 3, NULL, 0, &s, &e) == -1 &&
	    e.code == MDM_E_USAGE, "length without data: usage");

	mdm_buf_release(&s);
	mdm_buf_release_secret(&o);
}

static void
test_key_file(void)
{
	unsigned char k1[MDM_SEAL_KEY_LEN], k2[MDM_SEAL_KEY_LEN];
	unsigned char junk[40];
	struct mdm_buf s, o;
	struct mdm_err e;
	mode_t old;

	memset(junk, 'j', sizeof(junk));
	ok(mdm_seal_key_load(at("seal.key"), 0, k1, &e) == -1 &&
	    e.code == MDM_E_NOINPUT, "missing, no create: noinput: %s", e.msg);
	ok(!mdm_file_exists(at("seal.key")), "and nothing made");
	ok(mdm_seal_key_load(at("seal.key"), 0, k1, NULL) == -1,
	    "a NULL error is fine");

	old = umask(0);
	ok(mdm_seal_key_load(at("seal.key"), 1, k1, &e) == 0,
	    "created");
	umask(old);
	is_int(mode_of(at("seal.key")), 0600, "mode 0600 even under umask 0");
	ok(holds(at("seal.key"), k1, sizeof(k1)),
	    "the file holds the 32 key bytes");
	ok(mdm_seal_key_load(at("seal.key"), 0, k2, &e) == 0 &&
	    memcmp(k1, k2, sizeof(k1)) == 0, "read back equal");
	ok(mdm_seal_key_load(at("seal.key"), 1, k2, &e) == 0 &&
	    memcmp(k1, k2, sizeof(k1)) == 0,
	    "create again: the existing key is kept");

	chmod(at("seal.key"), 0644);
	ok(mdm_seal_key_load(at("seal.key"), 1, k2, &e) == -1 &&
	    e.code == MDM_E_PERM && holds(at("seal.key"), k1, sizeof(k1)),
	    "world-readable: perm, left alone: %s", e.msg);
	chmod(at("seal.key"), 0640);
	ok(mdm_seal_key_load(at("seal.key"), 0, k2, &e) == -1 &&
	    e.code == MDM_E_PERM, "group-readable: perm");
	chmod(at("seal.key"), 0400);
	ok(mdm_seal_key_load(at("seal.key"), 0, k2, &e) == 0 &&
	    memcmp(k1, k2, sizeof(k1)) == 0, "mode 0400 is fine");

	put(at("short.key"), junk, 31, 0600);
	ok(mdm_seal_key_load(at("short.key"), 1, k2, &e) == -1 &&
	    e.code == MDM_E_DATA && holds(at("short.key"), junk, 31),
	    "31 bytes: data, untouched: %s", e.msg);
	put(at("long.key"), junk, 33, 0600);
	ok(mdm_seal_key_load(at("long.key"), 1, k2, &e) == -1 &&
	    e.code == MDM_E_DATA && holds(at("long.key"), junk, 33),
	    "33 bytes: data, untouched: %s", e.msg);
	put(at("empty.key"), junk, 0, 0600);
	ok(mdm_seal_key_load(at("empty.key"), 1, k2, &e) == -1 &&
	    e.code == MDM_E_DATA && holds(at("empty.key"), junk, 0),
	    "empty: data, untouched: %s", e.msg);

	ok(symlink(at("seal.key"), at("link.key")) == 0 &&
	    mdm_seal_key_load(at("link.key"), 1, k2, &e) == -1 &&
	    e.code == MDM_E_PERM, "a symlink: perm: %s", e.msg);
	ok(symlink(at("nowhere.key"), at("dangling.key")) == 0 &&
	    mdm_seal_key_load(at("dangling.key"), 1, k2, &e) == -1 &&
	    e.code == MDM_E_PERM && mdm_file_exists(at("dangling.key")) &&
	    !mdm_file_exists(at("nowhere.key")),
	    "a dangling symlink: perm, nothing created through it");
	ok(mdm_seal_key_load(at("no/such/dir.key"), 1, k2, &e) == -1,
	    "create in a missing directory fails: %s", e.msg);

	/* A key loaded from the file seals and opens. */
	mdm_buf_init(&s, 256);
	mdm_buf_init_secret(&o, 256);
	ok(mdm_seal_key_load(at("seal.key"), 0, k2, &e) == 0 &&
	    mdm_seal(k1, "t", 1, "a", 1, &s, &e) == 0 &&
	    mdm_unseal(k2, s.data, s.len, "a", 1, &o, &e) == 0,
	    "file key works");
	mdm_buf_release(&s);
	mdm_buf_release_secret(&o);
}

int
main(void)
{
	unsigned char key[MDM_SEAL_KEY_LEN];

	snprintf(dir, sizeof(dir), "%s", tap_tmpdir());
	RAND_bytes(key, sizeof(key));
	test_round_trip(key);
	test_refusals(key);
	test_key_file();
	return tap_done();
}
