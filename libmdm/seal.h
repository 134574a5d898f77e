/*
 * seal: authenticated encryption of the small secrets mdm keeps in
 * mdm.db, such as a Mac's bootstrap token, which Apple requires be stored
 * encrypted at rest.  One 32-byte key, in its own file beside the
 * database, seals every value; the database alone therefore gives away
 * nothing.
 *
 * Format of a sealed value (version 1): one version byte (1), a random
 * 96-bit nonce, the AES-256-GCM ciphertext (as long as the plaintext) and
 * the 128-bit tag.  The version byte and the caller's aad are both
 * authenticated, so a value copied to another row (another aad) or given
 * another version byte does not open.  Random nonces are safe for far
 * more values than a server seals under one key (NIST SP 800-38D: 2^32).
 *
 * Invariants: plaintext and aad are capped at MDM_SEAL_CAP; unsealed bytes
 * are never left in out when the tag does not check out (they are wiped
 * before out is cut back); the key file is never overwritten.
 */
#ifndef MDM_SEAL_H
#define MDM_SEAL_H

#include <stddef.h>

#include "buf.h"
#include "err.h"

#define MDM_SEAL_KEY_LEN	32
/* Bytes a sealed value has beyond its plaintext: version, nonce, tag. */
#define MDM_SEAL_OVERHEAD	(1 + 12 + 16)
/* Longest plaintext, and longest aad. */
#define MDM_SEAL_CAP		(1u << 20)

/*
 * Reads the key from path, which must be a regular file of exactly
 * MDM_SEAL_KEY_LEN bytes that only its owner (us, or anyone for root) can
 * access: the rules of mdm_file_check_private, MDM_E_PERM otherwise.
 * With create != 0 and nothing at path, makes a random key and writes it
 * atomically with mode 0600 (should another process create it first,
 * its key is read instead, so both agree).  A file of another length is
 * MDM_E_DATA and is left as it is; missing without create: MDM_E_NOINPUT.
 * key is filled only on success; wipe it with OPENSSL_cleanse after use.
 */
int mdm_seal_key_load(const char *path, int create,
    unsigned char key[MDM_SEAL_KEY_LEN], struct mdm_err *e);

/*
 * Seals len bytes of plain under key with aad bound in (e.g. the
 * enrollment id of the row the value goes into; may be NULL with aad_len
 * 0), appending MDM_SEAL_OVERHEAD + len bytes to out.  On failure out is
 * as it was.  Errors: MDM_E_TOOBIG plain or aad over MDM_SEAL_CAP, or out
 * over its cap.
 */
int mdm_seal(const unsigned char key[MDM_SEAL_KEY_LEN], const void *plain,
    size_t len, const void *aad, size_t aad_len, struct mdm_buf *out,
    struct mdm_err *e);

/*
 * Opens what mdm_seal made with the same key and aad, appending the
 * plaintext to out, which should be a secret buffer
 * (mdm_buf_init_secret).  On failure out is as it was.  Errors:
 * MDM_E_CRYPTO on any mismatch (wrong key, wrong aad, tampered, truncated,
 * unknown version); MDM_E_TOOBIG over MDM_SEAL_CAP or out's cap.
 */
int mdm_unseal(const unsigned char key[MDM_SEAL_KEY_LEN], const void *sealed,
    size_t len, const void *aad, size_t aad_len, struct mdm_buf *out,
    struct mdm_err *e);

#endif
