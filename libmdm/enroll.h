/*
 * enroll: the enrollment profile a device installs to join this MDM
 * server (protocol.md section 4), and the MachineInfo a DEP device POSTs
 * to ask for it (section 9).  mdm-serve answers GET /mdm/enroll and the
 * DEP POST with mdm_enroll_profile; `mdm-certs enrollment-profile`
 * writes the same profile to a file.
 *
 * A profile holds three payloads: the state's CA certificate
 * (com.apple.security.root), a SCEP payload that makes the device get its
 * identity from our CA, and the com.apple.mdm payload naming that
 * identity, the push topic and the server URLs.
 *
 * Invariants:
 *  - every build gets fresh PayloadUUIDs and a fresh SCEP subject
 *    (CN=<UUID>), so no two devices ask for the same subject, while the
 *    PayloadIdentifiers stay the same for one server URL, so installing a
 *    newer profile replaces the older one;
 *  - without a static challenge every build mints a one-time challenge
 *    in the state (mdm_scep_challenge_new): each profile pays for exactly
 *    one certificate, and an unused one expires;
 *  - the push topic is one the state has a certificate for, so a profile
 *    never names a topic mdm-push cannot push to;
 *  - MachineInfo input is capped at MDM_ENROLL_MACHINEINFO_MAX bytes and
 *    each of its strings at MDM_ENROLL_FIELD_MAX - 1.
 * Nothing here prints or exits.
 */
#ifndef MDM_ENROLL_H
#define MDM_ENROLL_H

#include <stddef.h>

#include <openssl/x509.h>

#include "buf.h"
#include "err.h"
#include "pushcert.h"
#include "state.h"

/* The Content-Type of a profile, signed or not. */
#define MDM_ENROLL_CONTENT_TYPE		"application/x-apple-aspen-config"
/* How long a minted one-time challenge stays valid by default. */
#define MDM_ENROLL_CHALLENGE_TTL	3600
/* Longest base or SCEP URL, and longest static challenge. */
#define MDM_ENROLL_URL_MAX		1024
#define MDM_ENROLL_CHALLENGE_MAX	255
/* Longest organization: the X.509 upper bound of an O= value. */
#define MDM_ENROLL_ORG_MAX		64
/* A buffer of MDM_ENROLL_TOPIC_MAX + 1 holds any topic (pushcert.h). */
#define MDM_ENROLL_TOPIC_MAX		(MDM_PUSHCERT_TOPIC_MAX - 1)

/*
 * What a profile says.  A zeroed struct plus base_url is a complete
 * configuration: every other field's zero value is the default.  Strings
 * are borrowed for the call.
 */
struct mdm_enroll_config {
	/*
	 * Required: "https://host[:port][/prefix]", without query or
	 * fragment; trailing slashes are dropped.  ServerURL is
	 * BASE/mdm/connect, CheckInURL BASE/mdm/checkin.
	 */
	const char *base_url;
	const char *scep_url;		/* NULL: BASE/scep; http or https */
	/*
	 * NULL: mint a one-time challenge per profile, valid for
	 * challenge_ttl seconds (0: MDM_ENROLL_CHALLENGE_TTL).  Otherwise
	 * this static challenge (1 to MDM_ENROLL_CHALLENGE_MAX printable
	 * bytes) goes into every profile verbatim.
	 */
	const char *challenge;
	long long challenge_ttl;
	/*
	 * NULL: the topic of the one push certificate in STATE/push (none
	 * or several is MDM_E_CONFIG); else this topic, which must have
	 * one there.
	 */
	const char *topic;
	const char *organization;	/* NULL: none; O= of the SCEP subject
					   and PayloadOrganization */
	int no_sign_message;		/* 1: SignMessage false (the device
					   then authenticates by TLS client
					   certificate only) */
	int unsigned_profile;		/* 1: the XML as is, no CMS */
	/*
	 * 1: an http:// base URL is accepted too.  Apple devices refuse
	 * one (ServerURL must be https); simulated ones (mdm-devsim) and
	 * tests on plain HTTP need it.
	 */
	int allow_http;
	/*
	 * Optional, borrowed: the state's CA certificate, and the signing
	 * identity (both or neither), loaded once by a server that builds
	 * many profiles; NULL: read from the state each time, as
	 * OpenSSL 3 makes reading a key cost more than the signature.
	 */
	X509 *ca;
	X509 *signer;
	EVP_PKEY *signer_key;
};

/*
 * Checks cfg without touching the state: URLs, challenge, organization
 * and topic spelling.  MDM_E_USAGE with a message naming the bad value.
 * mdm-serve calls it at start-up so a typo fails there, not per request.
 */
int mdm_enroll_config_check(const struct mdm_enroll_config *cfg,
    struct mdm_err *e);

/*
 * The push topic a profile gets: want if STATE/push/want.pem exists (it
 * must pass mdm_pushcert_topic_check: MDM_E_USAGE), or with want NULL
 * the only topic in STATE/push (mdm_pushcert_foreach).  No certificate, or
 * several and want NULL: MDM_E_CONFIG saying what to run or choose.
 * Written NUL-terminated to out (outlen > MDM_ENROLL_TOPIC_MAX is
 * always enough).
 */
int mdm_enroll_topic(struct mdm_state *st, const char *want, char *out,
    size_t outlen, struct mdm_err *e);

/*
 * Builds an enrollment profile for cfg and appends it to out (whose cap
 * applies; MDM_CAP_CMS is plenty): a DER CMS SignedData with the XML
 * plist attached, signed by STATE/signing/signing.{pem,key} with the CA
 * certificate as its chain, or the bare XML with cfg->unsigned_profile.
 * Serve either as MDM_ENROLL_CONTENT_TYPE.
 *
 * Reads STATE/ca/ca.pem, the push directory and (signed) the signing
 * identity; a missing one is MDM_E_CONFIG saying to run `mdm-certs
 * init`.  Writes one row to the database when it mints a challenge (so
 * a busy database can give MDM_E_TEMPFAIL).  A bad cfg: as
 * mdm_enroll_config_check.  On failure out is left as it was.
 */
int mdm_enroll_profile(struct mdm_state *st,
    const struct mdm_enroll_config *cfg, struct mdm_buf *out,
    struct mdm_err *e);

/* Largest DEP enrollment request body (a CMS SignedData) accepted. */
#define MDM_ENROLL_MACHINEINFO_MAX	(64u << 10)
#define MDM_ENROLL_FIELD_MAX		128

/*
 * The MachineInfo dictionary of a DEP enrollment request.  Strings are
 * "" when the device did not send them; each holds printable text only.
 */
struct mdm_enroll_machineinfo {
	char udid[MDM_ENROLL_FIELD_MAX];	/* UDID, required */
	char serial[MDM_ENROLL_FIELD_MAX];	/* SERIAL, required */
	char product[MDM_ENROLL_FIELD_MAX];	/* PRODUCT: "iPhone10,3" */
	char version[MDM_ENROLL_FIELD_MAX];	/* VERSION: build, "15E148" */
	char os_version[MDM_ENROLL_FIELD_MAX];	/* OS_VERSION (iOS 17+) */
	char imei[MDM_ENROLL_FIELD_MAX];
	char meid[MDM_ENROLL_FIELD_MAX];
	char language[MDM_ENROLL_FIELD_MAX];
	char software_update_device_id[MDM_ENROLL_FIELD_MAX];
	int can_request_software_update;	/* MDM_CAN_REQUEST_SOFTWARE_
						   UPDATE; 0 when absent */
	/*
	 * 1 when the signer chained to the apple_ca given; 0 when no CA
	 * was given and only the signature itself was checked: the fields
	 * are then the device's word, nothing more.
	 */
	int verified;
	char signer[512];		/* the signing certificate's subject */
};

/*
 * Parses a DEP enrollment request body: a DER or BER CMS SignedData
 * with the MachineInfo plist attached (Apple sends nothing else, as
 * application/pkcs7-signature), at most MDM_ENROLL_MACHINEINFO_MAX
 * bytes.  The signature is always checked; with apple_ca (borrowed; the
 * Apple Root CA or the Apple iPhone Device CA) the signer must also
 * chain to it through the certificates in the message.  info needs no
 * initialisation and is zeroed on failure.
 *
 * Errors: MDM_E_TOOBIG over the cap; MDM_E_DATA not a SignedData, not a
 * dict, UDID or SERIAL missing, a field of the wrong type, too long or
 * holding control characters; MDM_E_CRYPTO a bad signature or a signer
 * that does not chain to apple_ca.  A server answers all of them with a
 * 4xx.
 */
int mdm_enroll_machineinfo(const void *body, size_t len, X509 *apple_ca,
    struct mdm_enroll_machineinfo *info, struct mdm_err *e);

#endif
