#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "file.h"
#include "seal.h"
#include "mdm_int.h"

#define VERSION		1
#define NONCE_LEN	12
#define TAG_LEN		16

/* Cuts b back to len, wiping what it held past len. */
static void
cut(struct mdm_buf *b, size_t len)
{
	if (b->data == NULL)
		return;
	OPENSSL_cleanse(b->data + len, b->len - len);
	b->len = len;
	b->data[len] = '\0';
}

/*
 * A GCM context for key and nonce (enc: 1 seal, 0 open) with the version
 * byte and aad already fed in as associated data.  Owned.
 */
static EVP_CIPHER_CTX *
start(const unsigned char *key, const unsigned char *nonce, int enc,
    const void *aad, size_t aad_len, struct mdm_err *e)
{
	static const unsigned char version = VERSION;
	EVP_CIPHER_CTX *ctx;
	int n;

	if ((ctx = EVP_CIPHER_CTX_new()) == NULL) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "EVP_CIPHER_CTX_new");
		return NULL;
	}
	/* GCM's default IV length is the 96 bits we use. */
	if (!EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce,
	    enc) || !EVP_CipherUpdate(ctx, NULL, &n, &version, 1) ||
	    (aad_len > 0 && !EVP_CipherUpdate(ctx, NULL, &n, aad,
	    (int)aad_len))) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "aes-256-gcm setup");
		EVP_CIPHER_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/*
 * Runs ctx over in and appends the result to out.  GCM is a stream mode,
 * so each chunk comes out as long as it went in; the chunk may hold
 * plaintext and is wiped.
 */
static int
crypt_into(EVP_CIPHER_CTX *ctx, const unsigned char *in, size_t len,
    struct mdm_buf *out, struct mdm_err *e)
{
	unsigned char chunk[512];
	size_t off, k;
	int n, rc = -1;

	for (off = 0; off < len; off += k) {
		k = len - off < sizeof(chunk) ? len - off : sizeof(chunk);
		if (!EVP_CipherUpdate(ctx, chunk, &n, in + off, (int)k) ||
		    n != (int)k) {
			mdm_err_set_ssl(e, MDM_E_SOFTWARE, "aes-256-gcm");
			goto out;
		}
		if (mdm_buf_append(out, chunk, k, e) == -1)
			goto out;
	}
	rc = 0;
out:
	OPENSSL_cleanse(chunk, sizeof(chunk));
	return rc;
}

static int
check_args(const void *data, size_t len, const void *aad, size_t aad_len,
    struct mdm_err *e)
{
	if ((data == NULL && len > 0) || (aad == NULL && aad_len > 0))
		return mdm_err_set(e, MDM_E_USAGE, "length without data");
	if (aad_len > MDM_SEAL_CAP)
		return mdm_err_set(e, MDM_E_TOOBIG,
		    "associated data longer than %u bytes", MDM_SEAL_CAP);
	return 0;
}

int
mdm_seal(const unsigned char key[MDM_SEAL_KEY_LEN], const void *plain,
    size_t len, const void *aad, size_t aad_len, struct mdm_buf *out,
    struct mdm_err *e)
{
	EVP_CIPHER_CTX *ctx = NULL;
	unsigned char head[1 + NONCE_LEN], tag[TAG_LEN];
	size_t start_len = out->len;
	int n, rc = -1;

	if (check_args(plain, len, aad, aad_len, e) == -1)
		goto out;
	if (len > MDM_SEAL_CAP) {
		mdm_err_set(e, MDM_E_TOOBIG, "secret longer than %u bytes",
		    MDM_SEAL_CAP);
		goto out;
	}
	head[0] = VERSION;
	if (RAND_bytes(head + 1, NONCE_LEN) != 1) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "RAND_bytes");
		goto out;
	}
	if ((ctx = start(key, head + 1, 1, aad, aad_len, e)) == NULL ||
	    mdm_buf_append(out, head, sizeof(head), e) == -1 ||
	    crypt_into(ctx, plain, len, out, e) == -1)
		goto out;
	if (!EVP_EncryptFinal_ex(ctx, tag, &n) ||
	    !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TAG_LEN, tag)) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "aes-256-gcm tag");
		goto out;
	}
	if (mdm_buf_append(out, tag, TAG_LEN, e) == -1)
		goto out;
	rc = 0;
out:
	if (rc == -1)
		cut(out, start_len);
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}

int
mdm_unseal(const unsigned char key[MDM_SEAL_KEY_LEN], const void *sealed,
    size_t len, const void *aad, size_t aad_len, struct mdm_buf *out,
    struct mdm_err *e)
{
	const unsigned char *s = sealed;
	EVP_CIPHER_CTX *ctx = NULL;
	unsigned char tag[TAG_LEN], last[16];
	size_t start_len = out->len, clen;
	int n, rc = -1;

	if (check_args(sealed, len, aad, aad_len, e) == -1)
		goto out;
	if (len < MDM_SEAL_OVERHEAD) {
		mdm_err_set(e, MDM_E_CRYPTO, "sealed value truncated");
		goto out;
	}
	if (s[0] != VERSION) {
		mdm_err_set(e, MDM_E_CRYPTO, "sealed value of unknown "
		    "version %u", s[0]);
		goto out;
	}
	clen = len - MDM_SEAL_OVERHEAD;
	if (clen > MDM_SEAL_CAP) {
		mdm_err_set(e, MDM_E_TOOBIG, "sealed value longer than %u "
		    "bytes", MDM_SEAL_CAP + MDM_SEAL_OVERHEAD);
		goto out;
	}
	memcpy(tag, s + len - TAG_LEN, TAG_LEN);
	if ((ctx = start(key, s + 1, 0, aad, aad_len, e)) == NULL ||
	    crypt_into(ctx, s + 1 + NONCE_LEN, clen, out, e) == -1)
		goto out;
	if (!EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TAG_LEN, tag)) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "aes-256-gcm tag");
		goto out;
	}
	if (EVP_DecryptFinal_ex(ctx, last, &n) != 1) {
		mdm_err_set(e, MDM_E_CRYPTO, "sealed value does not open: "
		    "wrong key, wrong context or tampered with");
		goto out;
	}
	rc = 0;
out:
	/* Unauthenticated plaintext never reaches the caller. */
	if (rc == -1)
		cut(out, start_len);
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}

/* The key file as it is; le gets why not. */
static int
read_key(const char *path, unsigned char key[MDM_SEAL_KEY_LEN],
    struct mdm_err *le)
{
	struct mdm_buf b;
	int rc = -1;

	mdm_buf_init_secret(&b, MDM_SEAL_KEY_LEN);
	if (mdm_file_read_private(path, &b, le) == -1) {
		if (le->code == MDM_E_TOOBIG)
			mdm_err_set(le, MDM_E_DATA, "%s: seal key longer than "
			    "%d bytes", path, MDM_SEAL_KEY_LEN);
		goto out;
	}
	if (b.len != MDM_SEAL_KEY_LEN) {
		mdm_err_set(le, MDM_E_DATA, "%s: seal key of %zu bytes, want "
		    "%d", path, b.len, MDM_SEAL_KEY_LEN);
		goto out;
	}
	memcpy(key, b.data, MDM_SEAL_KEY_LEN);
	rc = 0;
out:
	mdm_buf_release_secret(&b);
	return rc;
}

int
mdm_seal_key_load(const char *path, int create,
    unsigned char key[MDM_SEAL_KEY_LEN], struct mdm_err *e)
{
	unsigned char fresh[MDM_SEAL_KEY_LEN];
	struct mdm_err le;
	int rc = -1;

	mdm_err_clear(&le);
	if (read_key(path, key, &le) == 0) {
		rc = 0;
		goto out;
	}
	if (!create || le.code != MDM_E_NOINPUT)
		goto out;
	if (RAND_priv_bytes(fresh, sizeof(fresh)) != 1) {
		mdm_err_set_ssl(&le, MDM_E_SOFTWARE, "RAND_priv_bytes");
		goto out;
	}
	if (mdm_file_write_atomic(path, fresh, sizeof(fresh), 0600,
	    MDM_FILE_NOREPLACE, &le) == 0) {
		memcpy(key, fresh, sizeof(fresh));
		rc = 0;
	} else if (le.code == MDM_E_EXISTS) {
		/* Another process made one meanwhile: use theirs. */
		rc = read_key(path, key, &le);
	}
out:
	OPENSSL_cleanse(fresh, sizeof(fresh));
	if (rc == -1 && e != NULL)
		*e = le;
	return rc;
}
