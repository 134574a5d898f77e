#include <ctype.h>
#include <regex.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "file.h"
#include "log.h"
#include "scep_http.h"
#include "mdm_int.h"

#define CHALLENGE_MAX	1024
#define LOG_FIELD_MAX	64

int
mdm_scep_http_path(const char *path)
{
	return strcmp(path, "/scep") == 0 || strcmp(path, "/scep/") == 0 ||
	    strcmp(path, "/cgi-bin/pkiclient.exe") == 0;
}

static void
reply_text(struct mdm_http_request *r, int status, const char *text)
{
	mdm_http_reply(r, status, "text/plain; charset=utf-8", text,
	    strlen(text), NULL);
}

/* Log values come from the client: keep them short and on one line. */
static void
log_safe(const char *s, char out[LOG_FIELD_MAX])
{
	size_t i;

	if (s == NULL || *s == '\0') {
		snprintf(out, LOG_FIELD_MAX, "-");
		return;
	}
	for (i = 0; i + 1 < LOG_FIELD_MAX && s[i] != '\0'; i++)
		out[i] = isgraph((unsigned char)s[i]) ? s[i] : '?';
	out[i] = '\0';
}

const char *
mdm_scep_http_handle(struct mdm_scep *s, struct mdm_http_request *r)
{
	struct mdm_scep_response resp;
	struct mdm_err e = { 0 };
	const char *method = mdm_http_request_method(r);
	const char *op = NULL, *msg, *outcome, *serial = "-";
	const unsigned char *body;
	char op_log[LOG_FIELD_MAX];
	long long t0 = mdm_log_clock_us();
	size_t len;
	int status;

	mdm_scep_response_init(&resp);
	if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0) {
		mdm_http_add_header(r, "Allow", "GET, POST", NULL);
		reply_text(r, status = 405, "method not allowed: use GET or "
		    "POST\n");
		outcome = "method";
		goto log;
	}
	if ((op = mdm_http_request_param(r, "operation")) == NULL ||
	    *op == '\0') {
		reply_text(r, status = 400, "missing operation= parameter\n");
		outcome = "invalid";
		goto log;
	}
	msg = mdm_http_request_param(r, "message");
	body = mdm_http_request_body(r, &len);
	if (mdm_scep_handle(s, method, op, msg, body, len, &resp, &e) == -1) {
		log_safe(op, op_log);
		mdm_log_error("%s %s from %s: %s", method, op_log,
		    mdm_http_request_peer(r), e.msg);
	}
	status = resp.http_status;
	outcome = resp.outcome != NULL ? resp.outcome : "-";
	if (resp.serial[0] != '\0')
		serial = resp.serial;
	/* A busy database clears up in a moment. */
	if (status == 503)
		mdm_http_add_header(r, "Retry-After", "1", NULL);
	mdm_http_reply(r, status, resp.content_type, resp.body.data,
	    resp.body.len, NULL);
log:
	log_safe(op, op_log);
	mdm_log_debug("%s %s %s %s serial=%s status=%d %lldus",
	    mdm_http_request_peer(r), method, op_log, outcome, serial, status,
	    mdm_log_clock_us() - t0);
	mdm_scep_response_release(&resp);
	return outcome;
}

void
mdm_scep_cli_init(struct mdm_scep_cli *c)
{
	memset(c, 0, sizeof(*c));
	mdm_buf_init_secret(&c->challenge, CHALLENGE_MAX);
}

void
mdm_scep_cli_release(struct mdm_scep_cli *c)
{
	mdm_buf_release_secret(&c->challenge);
	memset(&c->policy, 0, sizeof(c->policy));
	c->challenge_file = NULL;
}

int
mdm_scep_cli_opt(struct mdm_scep_cli *c, int id, const char *arg,
    struct mdm_err *e)
{
	struct mdm_err pe = { 0 };
	regex_t re;
	long long v;

	switch (id) {
	case MDM_SCEP_OPT_CHALLENGE:
		if (*arg == '\0')
			return mdm_err_set(e, MDM_E_USAGE, "--challenge: the "
			    "secret is empty");
		c->policy.static_challenge = arg;
		return 1;
	case MDM_SCEP_OPT_CHALLENGE_FILE:
		c->challenge_file = arg;
		return 1;
	case MDM_SCEP_OPT_VALIDITY_DAYS:
		if (mdm_cli_parse_int(arg, 1, 36500, &v, &pe) == -1)
			return mdm_err_set(e, MDM_E_USAGE, "--validity-days: "
			    "%s", pe.msg);
		c->policy.validity_days = (int)v;
		return 1;
	case MDM_SCEP_OPT_MIN_KEY_BITS:
		if (mdm_cli_parse_int(arg, 1024, 16384, &v, &pe) == -1)
			return mdm_err_set(e, MDM_E_USAGE, "--min-key-bits: "
			    "%s", pe.msg);
		c->policy.min_key_bits = (int)v;
		return 1;
	case MDM_SCEP_OPT_ALLOW_SUBJECT:
		if (regcomp(&re, arg, REG_EXTENDED | REG_NOSUB) != 0)
			return mdm_err_set(e, MDM_E_USAGE, "--allow-subject: "
			    "'%s' is not an extended regular expression", arg);
		regfree(&re);
		c->policy.subject_pattern = arg;
		return 1;
	case MDM_SCEP_OPT_CSR_VERIFY_EXEC:
		c->policy.csr_verify_exec = arg;
		return 1;
	default:
		return 0;
	}
}

int
mdm_scep_cli_finish(struct mdm_scep_cli *c, struct mdm_err *e)
{
	const char *prog = c->policy.csr_verify_exec;

	if (c->policy.static_challenge != NULL && c->challenge_file != NULL)
		return mdm_err_set(e, MDM_E_USAGE, "--challenge and "
		    "--challenge-file exclude each other");
	if (prog != NULL && (strchr(prog, '/') == NULL ||
	    access(prog, X_OK) == -1))
		return mdm_err_set(e, MDM_E_CONFIG, "--csr-verify-exec: '%s' "
		    "is not an executable file (give its path)", prog);
	if (c->challenge_file == NULL)
		return 0;
	if (mdm_file_read_secret_line(c->challenge_file, "challenge",
	    &c->challenge, e) == -1)
		return -1;
	c->policy.static_challenge = (const char *)c->challenge.data;
	return 0;
}
