/*
 * device: one simulated Apple device, as mdm-devsim keeps it in
 * DIR/<UDID>/ (key.pem 0600, cert.pem, device.plist 0600) and plays it on
 * the wire: fetch the enrollment profile, enrol over SCEP, check in
 * (Authenticate, TokenUpdate), then command sessions (Idle, a command,
 * its result, the next command ...) answered as a Mac answers them.
 *
 * Every request is signed as the profile says: the Mdm-Signature header
 * (a detached CMS signature over the exact body) when SignMessage is
 * true, or the identity as a TLS client certificate (mtls).  Every body
 * read from the network is capped (DEVICE_MAX_*).  A device is used by
 * one thread at a time; each thread has its own struct device_http.
 */
#ifndef MDM_DEVSIM_DEVICE_H
#define MDM_DEVSIM_DEVICE_H

#include <stddef.h>

#include <curl/curl.h>
#include <openssl/x509.h>
#include <plist/plist.h>

#include "err.h"

#define DEVICE_MAX_PROFILE	(1u << 20)	/* enrollment profile */
#define DEVICE_MAX_COMMAND	(16u << 20)	/* a command (InstallProfile) */
#define DEVICE_MAX_CHECKIN	(64u << 10)	/* a check-in answer */
#define DEVICE_URL_MAX		1024

/* One thread's HTTP connection (keep-alive across requests). */
struct device_http {
	CURL *curl;			/* owned */
	const char *server_ca;		/* trust for https, or NULL; borrowed */
	long timeout_ms;
};
int device_http_init(struct device_http *h, const char *server_ca,
    struct mdm_err *e);
void device_http_release(struct device_http *h);

struct device {
	char dir[4096];			/* DIR/<UDID> */
	char udid[64], serial[16], name[64];
	char server_url[DEVICE_URL_MAX], checkin_url[DEVICE_URL_MAX];
	char topic[256], magic[40];
	unsigned char token[32];
	int sign_message, mtls;
	X509 *cert;			/* owned */
	EVP_PKEY *key;			/* owned */
	plist_t profiles;		/* owned array of ProfileList dicts */
};
void device_release(struct device *d);

struct device_enroll_opts {
	const char *url;		/* profile URL or file */
	X509 *profile_ca;		/* verify the profile with it, or NULL */
	int key_bits;			/* 0: the profile's Keysize, >= 2048 */
	int mtls;			/* identity in TLS, not Mdm-Signature */
	int sign;			/* Mdm-Signature whatever SignMessage says */
	const char *challenge;		/* replaces the profile's, or NULL */
	const char *dir;		/* where devices live */
	int index;			/* for the device name */
};
/* The SCEP request a profile asks for. */
struct device_scep {
	const char *url, *name, *challenge;	/* borrowed from the profile */
	X509_NAME *subject;			/* owned */
	int bits;
};
/*
 * Reads the len bytes of an enrollment profile (CMS-signed or a bare
 * plist; signed by o->profile_ca when that is set) into d's URLs, topic
 * and signing mode, and sp.  *prof (owned, even on failure: free it) is
 * the profile, which sp borrows from.  Network input: fuzzed by
 * fuzz_devsim_profile.
 */
int device_read_profile(const struct device_enroll_opts *o, const void *data,
    size_t len, struct device *d, struct device_scep *sp, plist_t *prof,
    struct mdm_err *e);

/*
 * Enrols a new device and saves it; d is filled (release it either way).
 * Errors name the step that failed ("scep: ...", "Authenticate: HTTP
 * 400").
 */
int device_enroll(const struct device_enroll_opts *o, struct device_http *h,
    struct device *d, struct mdm_err *e);
/* Loads DIR/<udid>; d released on failure. */
int device_load(const char *dir, const char *udid, struct device *d,
    struct mdm_err *e);

struct device_result {
	const char *uuid, *request_type, *status;	/* borrowed */
};
struct device_session_opts {
	double notnow_rate, error_rate;	/* 0..1 */
	/* Called for each result sent; may be NULL. */
	void (*on_result)(void *arg, const struct device *d,
	    const struct device_result *r);
	void *arg;
};
/*
 * Answers one command body from the server as the device would, with
 * o's rates of NotNow and Error: the report into *rep (owned), o's
 * on_result called, *changed set to 1 when d must be saved.  -1 only
 * for a body that is not a plist dict (*rep NULL then).  Network input:
 * fuzzed by fuzz_devsim_command.
 */
int device_answer(struct device *d, const void *body, size_t len,
    const struct device_session_opts *o, plist_t *rep, int *changed,
    struct mdm_err *e);

/*
 * One session: Idle, then answer commands until the server sends an
 * empty body.  *n_results (may be NULL) gets the count of results sent.
 */
int device_session(struct device *d, struct device_http *h,
    const struct device_session_opts *o, int *n_results, struct mdm_err *e);

#endif
