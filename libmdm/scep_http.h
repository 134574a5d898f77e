/*
 * scep_http: SCEP on an HTTP server, the same in `mdm-scep serve` and in
 * mdm-serve's /scep mount: which paths are SCEP, how a request becomes
 * mdm_scep_handle's arguments and its answer a reply, and the policy
 * flags both servers take (one table and one parser, so the two can
 * never disagree on what --challenge-file or --validity-days means).
 *
 * Invariants: every request routed here gets exactly one reply; a flag
 * error leaves nothing to release but what mdm_scep_cli_release frees;
 * the challenge read from a file lives in a wiped buffer.
 */
#ifndef MDM_SCEP_HTTP_H
#define MDM_SCEP_HTTP_H

#include "buf.h"
#include "cli.h"
#include "err.h"
#include "http_server.h"
#include "scep.h"

/*
 * The classic NDES/Cisco path is SCEP too, so clients configured for it
 * work: "/scep", "/scep/", "/cgi-bin/pkiclient.exe".
 */
int mdm_scep_http_path(const char *path);

/*
 * Answers one request already routed to a SCEP path (any method: other
 * than GET and POST get 405) and logs it at debug level, a server-side
 * failure at error level.  Returns the outcome for metrics (static, as
 * struct mdm_scep_response's).
 */
const char *mdm_scep_http_handle(struct mdm_scep *s,
    struct mdm_http_request *r);

/* Option ids of the policy flags; a tool's own ids stay below. */
enum {
	MDM_SCEP_OPT_CHALLENGE = 1000,
	MDM_SCEP_OPT_CHALLENGE_FILE,
	MDM_SCEP_OPT_VALIDITY_DAYS,
	MDM_SCEP_OPT_MIN_KEY_BITS,
	MDM_SCEP_OPT_ALLOW_SUBJECT,
	MDM_SCEP_OPT_CSR_VERIFY_EXEC,
};

/* The policy flags, for the middle of a tool's option table. */
#define MDM_SCEP_CLI_OPTS \
	{ "challenge", 0, "secret", MDM_SCEP_OPT_CHALLENGE, \
	    "static challenge password (visible in ps: prefer the file)" }, \
	{ "challenge-file", 0, "file", MDM_SCEP_OPT_CHALLENGE_FILE, \
	    "read the static challenge from the first line of file (0600)" }, \
	{ "validity-days", 0, "n", MDM_SCEP_OPT_VALIDITY_DAYS, \
	    "validity of issued certificates (default: 365)" }, \
	{ "min-key-bits", 0, "n", MDM_SCEP_OPT_MIN_KEY_BITS, \
	    "smallest RSA key accepted (default: 2048)" }, \
	{ "allow-subject", 0, "regex", MDM_SCEP_OPT_ALLOW_SUBJECT, \
	    "issue only to subjects matching this extended regex" }, \
	{ "csr-verify-exec", 0, "prog", MDM_SCEP_OPT_CSR_VERIFY_EXEC, \
	    "run prog with the CSR on stdin; exit 0 allows it" }

/* What the flags set; zero it, then mdm_scep_cli_init. */
struct mdm_scep_cli {
	struct mdm_scep_policy policy;	/* strings borrowed from argv or
					   from challenge */
	const char *challenge_file;
	struct mdm_buf challenge;	/* secret: the file's line */
};

void mdm_scep_cli_init(struct mdm_scep_cli *c);
void mdm_scep_cli_release(struct mdm_scep_cli *c);

/*
 * One option from mdm_cli_getopt: 1 when it was a policy flag and is
 * taken, 0 when it is not one of them, -1 with e set (MDM_E_USAGE, the
 * message naming the flag) when its value is wrong.
 */
int mdm_scep_cli_opt(struct mdm_scep_cli *c, int id, const char *arg,
    struct mdm_err *e);

/*
 * After the last flag: checks what only the whole set can tell (the two
 * challenge flags exclude each other: MDM_E_USAGE), that the CSR program
 * is executable (MDM_E_CONFIG), and reads the challenge file.
 */
int mdm_scep_cli_finish(struct mdm_scep_cli *c, struct mdm_err *e);

#endif
