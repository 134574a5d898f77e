/*
 * service: the MDM endpoint a device talks to, without the transport.
 * mdm-serve hands it each request (method, path, headers it needs, body,
 * the TLS client certificate) and sends back the response it fills in; the
 * fuzz target and the tests drive it the same way, with no socket.
 *
 * Routes (PUT, or POST, which does no harm):
 *   /mdm/checkin   check-in messages              (MicroMDM's paths)
 *   /mdm/connect   command reports
 *   /mdm           either, told apart by Content-Type: a type starting
 *                  with application/x-apple-aspen-mdm-checkin is a
 *                  check-in, anything else a report    (NanoMDM's)
 *
 * Identity: every request must carry a certificate that chains to our CA
 * and is not revoked in our records: the TLS client certificate if there
 * is one, else the Mdm-Signature header (a detached CMS signature over
 * the exact body), else, only when the operator named one, the header a
 * TLS-terminating proxy forwards it in.  Its SHA-256 is bound to the
 * device channel on Authenticate; every later message must come with the
 * bound certificate (a user channel with its device channel's).  A
 * certificate our CA issued as a RenewalReq signed by the bound one is a
 * renewed identity and is re-bound on first use.  Anything else is
 * refused with 400: never 401, which makes a device unenroll itself.
 *
 * Invariants: every response is complete (status, type, body) whatever
 * the request held; a refused request changes nothing stored; the only
 * statuses are 200, 400 (refused: the reason is in the response, for the
 * log, never in the body), 404, 405, 410 (UserAuthenticate declined),
 * 413 (from the transport), 500 (our fault), 502 (the DDM server failed)
 * and 503 (the database is busy: try again).
 */
#ifndef MDM_SERVICE_H
#define MDM_SERVICE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "buf.h"
#include "err.h"
#include "state.h"

#define MDM_SERVICE_TOKEN_MAX	(64u << 10)	/* GetToken program output */
#define MDM_SERVICE_DM_MAX	(8u << 20)	/* a DDM server's answer */
#define MDM_SERVICE_EXEC_TIMEOUT_MS 10000
#define MDM_SERVICE_DM_TIMEOUT_MS 15000

struct mdm_service_config {
	X509 *ca;			/* identities chain to it; borrowed */
	STACK_OF(X509) *intermediates;	/* may be NULL; borrowed */
	/*
	 * Name of the header a TLS-terminating proxy puts the client
	 * certificate in, or NULL: the header is then never read, as a
	 * client could set it.
	 */
	const char *cert_header;
	/* UserAuthenticate: answer with an empty DigestChallenge (manage
	   the user without authenticating) instead of 410. */
	int user_auth_zero_challenge;
	/* GetToken: the program that makes the token, or NULL: refused. */
	const char *token_exec;
	/* DeclarativeManagement: the DDM server's base URL, or NULL. */
	const char *dm_url;
	/* Queue a webhook event for each request in the outbox. */
	int webhook;
	/* Encrypts bootstrap tokens at rest (MDM_SEAL_KEY_LEN bytes). */
	const unsigned char *seal_key;
};

struct mdm_service;

/*
 * A service for one thread: st and cfg (with everything it points to)
 * are borrowed and must outlive it.  *out owned: mdm_service_free.
 */
int mdm_service_new(struct mdm_state *st, const struct mdm_service_config *cfg,
    struct mdm_service **out, struct mdm_err *e);
void mdm_service_free(struct mdm_service *s);

/* One request; everything borrowed. */
struct mdm_service_request {
	const char *method;
	const char *path;		/* without the query */
	const char *query;		/* after '?', or NULL */
	const char *content_type;	/* or NULL */
	const char *signature;		/* the Mdm-Signature header, or NULL */
	const char *forwarded_cert;	/* the cert_header header, or NULL */
	X509 *tls_cert;			/* the TLS client certificate, or NULL */
	const unsigned char *body;
	size_t len;
};

struct mdm_service_response {
	int status;
	const char *content_type;	/* static; NULL with an empty body */
	struct mdm_buf body;
	/* For the access log: what happened, and to whom. */
	const char *outcome;		/* static: "authenticate", "idle",
					   "acknowledged", "refused", ... */
	char id[2 * 255 + 2];		/* the enrollment id, or "" */
	char command_uuid[65];		/* the command sent back, or "" */
	char reason[MDM_ERR_MSG_MAX];	/* why it was refused or failed */
};
void mdm_service_response_init(struct mdm_service_response *r);
void mdm_service_response_release(struct mdm_service_response *r);

/*
 * Answers req into resp (initialised by the caller; reset here first).
 * Never fails: what went wrong is in resp->status and resp->reason.
 */
void mdm_service_handle(struct mdm_service *s,
    const struct mdm_service_request *req, struct mdm_service_response *resp);

#endif
