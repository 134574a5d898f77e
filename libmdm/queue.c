#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/rand.h>
#include <plist/plist.h>

#include "buf.h"
#include "cms.h"
#include "json.h"
#include "plist.h"
#include "queue.h"
#include "mdm_int.h"

/* Shared iPad user channels all send this UserID; UserShortName tells. */
#define SHARED_IPAD_USER_ID	"FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF"
/* APNs device tokens are 32 bytes today; Apple reserves room to grow. */
#define TOKEN_MAX		256
#define FIELD_MAX		255	/* Topic, PushMagic */

static const char xml_head[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" "
    "\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"
    "<plist version=\"1.0\">\n";
static const char dict_open[] = "<dict>\n";
static const char dict_close[] = "</dict>\n</plist>\n";

const char *
mdm_queue_enroll_type_name(enum mdm_queue_enroll_type t)
{
	switch (t) {
	case MDM_QUEUE_DEVICE:
		return "device";
	case MDM_QUEUE_USER:
		return "user";
	case MDM_QUEUE_UE_DEVICE:
		return "user-enrollment-device";
	case MDM_QUEUE_UE:
		return "user-enrollment";
	case MDM_QUEUE_SHARED_IPAD:
		return "shared-ipad";
	}
	return "unknown";
}

int
mdm_queue_enroll_type_is_device(enum mdm_queue_enroll_type t)
{
	return t == MDM_QUEUE_DEVICE || t == MDM_QUEUE_UE_DEVICE;
}

const char *
mdm_queue_status_name(enum mdm_queue_status s)
{
	switch (s) {
	case MDM_QUEUE_IDLE:
		return "Idle";
	case MDM_QUEUE_ACKNOWLEDGED:
		return "Acknowledged";
	case MDM_QUEUE_ERROR:
		return "Error";
	case MDM_QUEUE_FORMAT_ERROR:
		return "CommandFormatError";
	case MDM_QUEUE_NOT_NOW:
		return "NotNow";
	case MDM_QUEUE_UNPARSEABLE:
		return "Unparseable";
	}
	return "Unparseable";
}

int
mdm_queue_printable(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

int
mdm_queue_ids_add(struct mdm_queue_ids *l, const char *id, size_t max,
    struct mdm_err *e)
{
	char **v;
	size_t want;

	if (l->n >= max)
		return mdm_err_set(e, MDM_E_TOOBIG, "more than %zu ids", max);
	if (l->n == l->alloc) {
		want = l->alloc != 0 ? 2 * l->alloc : 16;
		if ((v = reallocarray(l->v, want, sizeof(*v))) == NULL)
			return mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
		l->v = v;
		l->alloc = want;
	}
	if ((l->v[l->n] = strdup(id)) == NULL)
		return mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
	l->n++;
	return 0;
}

void
mdm_queue_ids_release(struct mdm_queue_ids *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* Copies s for a message: at most 40 bytes, control characters as '?'. */
static void
quote_for_msg(char *out, size_t outlen, const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0' && i < 40 && i + 1 < outlen; i++)
		out[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' :
		    s[i];
	out[i] = '\0';
}

/* A string key of msg, with "" read as absent. */
static const char *
opt_string(plist_t msg, const char *key)
{
	const char *s = mdm_plist_get_string(msg, key);

	return s != NULL && *s != '\0' ? s : NULL;
}

static int
check_part(const char *key, const char *v, struct mdm_err *e)
{
	if (strlen(v) > MDM_QUEUE_ID_PART_MAX)
		return mdm_err_set(e, MDM_E_DATA, "%s is longer than %d bytes",
		    key, MDM_QUEUE_ID_PART_MAX);
	if (!mdm_queue_printable(v))
		return mdm_err_set(e, MDM_E_DATA, "%s holds a control "
		    "character", key);
	return 0;
}

static void
join_id(char *out, const char *a, const char *b)
{
	if (b != NULL)
		snprintf(out, MDM_QUEUE_ID_MAX + 1, "%s:%s", a, b);
	else
		snprintf(out, MDM_QUEUE_ID_MAX + 1, "%s", a);
}

int
mdm_queue_ident_from_plist(plist_t msg, struct mdm_queue_ident *out,
    struct mdm_err *e)
{
	const char *udid, *eid, *uid, *usn, *euid;

	memset(out, 0, sizeof(*out));
	udid = opt_string(msg, "UDID");
	eid = opt_string(msg, "EnrollmentID");
	uid = opt_string(msg, "UserID");
	usn = opt_string(msg, "UserShortName");
	euid = opt_string(msg, "EnrollmentUserID");
	out->udid = udid;
	out->enrollment_id = eid;
	out->user_short_name = usn;
	out->user_long_name = opt_string(msg, "UserLongName");

	if (udid != NULL) {
		if (check_part("UDID", udid, e) == -1)
			goto fail;
		join_id(out->device_id, udid, NULL);
		if (uid == NULL) {
			out->type = MDM_QUEUE_DEVICE;
			join_id(out->id, udid, NULL);
			return 0;
		}
		if (check_part("UserID", uid, e) == -1)
			goto fail;
		out->user_id = uid;
		if (strcasecmp(uid, SHARED_IPAD_USER_ID) == 0) {
			if (usn == NULL) {
				mdm_err_set(e, MDM_E_DATA, "Shared iPad user "
				    "channel without UserShortName");
				goto fail;
			}
			if (check_part("UserShortName", usn, e) == -1)
				goto fail;
			out->type = MDM_QUEUE_SHARED_IPAD;
			join_id(out->id, udid, usn);
			return 0;
		}
		out->type = MDM_QUEUE_USER;
		join_id(out->id, udid, uid);
		return 0;
	}
	if (eid != NULL) {
		if (check_part("EnrollmentID", eid, e) == -1)
			goto fail;
		join_id(out->device_id, eid, NULL);
		if (euid == NULL) {
			out->type = MDM_QUEUE_UE_DEVICE;
			join_id(out->id, eid, NULL);
			return 0;
		}
		if (check_part("EnrollmentUserID", euid, e) == -1)
			goto fail;
		out->user_id = euid;
		out->type = MDM_QUEUE_UE;
		join_id(out->id, eid, euid);
		return 0;
	}
	mdm_err_set(e, MDM_E_DATA, "no UDID or EnrollmentID: cannot tell "
	    "which enrollment this is");
fail:
	memset(out, 0, sizeof(*out));
	return -1;
}

/*
 * ErrorChain as a JSON array of objects with the four keys Apple defines;
 * items and keys of other shapes are left out.  NULL when nothing is left.
 */
static char *
error_chain_json(plist_t chain)
{
	static const char *const skeys[] = {
		"ErrorDomain", "LocalizedDescription", "USEnglishDescription"
	};
	json_t *arr = NULL, *obj = NULL;
	plist_t item;
	uint32_t i, n;
	int64_t code;
	size_t k;
	const char *s;
	char *out = NULL;

	if (chain == NULL || plist_get_node_type(chain) != PLIST_ARRAY)
		return NULL;
	if ((arr = json_array()) == NULL)
		return NULL;
	n = plist_array_get_size(chain);
	for (i = 0; i < n && json_array_size(arr) <
	    MDM_QUEUE_ERROR_CHAIN_MAX; i++) {
		item = plist_array_get_item(chain, i);
		if (plist_get_node_type(item) != PLIST_DICT)
			continue;
		if ((obj = json_object()) == NULL)
			goto out;
		if (mdm_plist_get_int(item, "ErrorCode", &code) == 0 &&
		    json_object_set_new(obj, "ErrorCode",
		    json_integer(code)) == -1)
			goto out;
		for (k = 0; k < MDM_ARRAY_LEN(skeys); k++)
			if ((s = mdm_plist_get_string(item, skeys[k])) != NULL &&
			    json_object_set_new(obj, skeys[k],
			    json_string(s)) == -1)
				goto out;
		if (json_object_size(obj) > 0 &&
		    json_array_append(arr, obj) == -1)
			goto out;
		json_decref(obj);
		obj = NULL;
	}
	if (json_array_size(arr) > 0)
		out = json_dumps(arr, JSON_COMPACT | JSON_PRESERVE_ORDER);
out:
	json_decref(obj);
	json_decref(arr);
	return out;
}

void
mdm_queue_report_release(struct mdm_queue_report *r)
{
	if (r == NULL)
		return;
	plist_free(r->plist);
	free(r->error_chain);
	memset(r, 0, sizeof(*r));
	r->status = MDM_QUEUE_UNPARSEABLE;
}

static const struct {
	const char *name;
	enum mdm_queue_status status;
} statuses[] = {
	{ "Idle", MDM_QUEUE_IDLE },
	{ "Acknowledged", MDM_QUEUE_ACKNOWLEDGED },
	{ "Error", MDM_QUEUE_ERROR },
	{ "CommandFormatError", MDM_QUEUE_FORMAT_ERROR },
	{ "NotNow", MDM_QUEUE_NOT_NOW },
};

int
mdm_queue_report_parse(const void *body, size_t len,
    struct mdm_queue_report *out, struct mdm_err *e)
{
	struct mdm_err ie = { 0 };
	const char *s;
	char q[48];
	size_t i;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	out->status = MDM_QUEUE_UNPARSEABLE;
	if (mdm_plist_parse_dict(body, len, &out->plist, &ie) == -1) {
		snprintf(out->problem, sizeof(out->problem), "%s", ie.msg);
		if (e != NULL)
			*e = ie;
		return -1;
	}
	if (mdm_queue_ident_from_plist(out->plist, &out->ident, &ie) == -1) {
		snprintf(out->problem, sizeof(out->problem), "%s", ie.msg);
		if (e != NULL)
			*e = ie;
		rc = -1;
	}
	out->request_type = opt_string(out->plist, "RequestType");
	out->error_chain = error_chain_json(mdm_plist_get_array(out->plist,
	    "ErrorChain"));
	out->command_uuid = opt_string(out->plist, "CommandUUID");
	s = mdm_plist_get_string(out->plist, "Status");
	for (i = 0; s != NULL && i < MDM_ARRAY_LEN(statuses); i++)
		if (strcmp(s, statuses[i].name) == 0)
			break;
	if (s != NULL && i < MDM_ARRAY_LEN(statuses) &&
	    statuses[i].status == MDM_QUEUE_IDLE) {
		/* An Idle report answers no command, whatever else it says. */
		out->command_uuid = NULL;
	} else if (out->command_uuid != NULL &&
	    mdm_queue_uuid_check(out->command_uuid, NULL) == -1) {
		/* We never stored a UUID that fails this: it matches nothing. */
		quote_for_msg(q, sizeof(q), out->command_uuid);
		out->command_uuid = NULL;
		if (rc == 0)
			snprintf(out->problem, sizeof(out->problem),
			    "CommandUUID \"%s\" is not one we send", q);
		return rc;
	} else if (s == NULL) {
		if (rc == 0)
			snprintf(out->problem, sizeof(out->problem),
			    "no Status string");
		return rc;
	} else if (i == MDM_ARRAY_LEN(statuses)) {
		quote_for_msg(q, sizeof(q), s);
		if (rc == 0)
			snprintf(out->problem, sizeof(out->problem),
			    "unknown Status \"%s\"", q);
		return rc;
	} else if (out->command_uuid == NULL) {
		if (rc == 0)
			snprintf(out->problem, sizeof(out->problem),
			    "%s report without a CommandUUID", s);
		return rc;
	}
	if (rc == 0)
		out->status = statuses[i].status;
	return rc;
}

static const struct {
	const char *name;
	enum mdm_queue_checkin_type type;
} checkin_types[] = {
	{ "Authenticate", MDM_QUEUE_AUTHENTICATE },
	{ "TokenUpdate", MDM_QUEUE_TOKEN_UPDATE },
	{ "CheckOut", MDM_QUEUE_CHECK_OUT },
	{ "UserAuthenticate", MDM_QUEUE_USER_AUTHENTICATE },
	{ "SetBootstrapToken", MDM_QUEUE_SET_BOOTSTRAP_TOKEN },
	{ "GetBootstrapToken", MDM_QUEUE_GET_BOOTSTRAP_TOKEN },
	{ "DeclarativeManagement", MDM_QUEUE_DECLARATIVE_MANAGEMENT },
	{ "GetToken", MDM_QUEUE_GET_TOKEN },
};

/* -1 when key is absent or not a boolean, else 0 or 1. */
static int
opt_bool(plist_t msg, const char *key)
{
	int b;

	if (mdm_plist_get_bool(msg, key, &b) == -1)
		return -1;
	return b != 0;
}

/* Data of msg[key], NULL when absent, of another type, or empty. */
static const unsigned char *
opt_data(plist_t msg, const char *key, size_t *len)
{
	const unsigned char *p = mdm_plist_get_data(msg, key, len);

	if (p == NULL || *len == 0) {
		*len = 0;
		return NULL;
	}
	return p;
}

static int
check_field(const char *what, const char *v, struct mdm_err *e)
{
	if (v == NULL)
		return 0;
	if (strlen(v) > FIELD_MAX || !mdm_queue_printable(v))
		return mdm_err_set(e, MDM_E_DATA, "%s is longer than %d bytes "
		    "or holds a control character", what, FIELD_MAX);
	return 0;
}

static int
checkin_check(const struct mdm_queue_checkin *c, struct mdm_err *e)
{
	int device = mdm_queue_enroll_type_is_device(c->ident.type);

	if (check_field("Topic", c->topic, e) == -1 ||
	    check_field("PushMagic", c->push_magic, e) == -1)
		return -1;
	switch (c->type) {
	case MDM_QUEUE_AUTHENTICATE:
		if (!device)
			return mdm_err_set(e, MDM_E_DATA, "Authenticate on a "
			    "user channel");
		if (c->topic == NULL)
			return mdm_err_set(e, MDM_E_DATA, "Authenticate "
			    "without a Topic");
		break;
	case MDM_QUEUE_TOKEN_UPDATE:
		if (c->topic == NULL)
			return mdm_err_set(e, MDM_E_DATA, "TokenUpdate without "
			    "a Topic");
		if (c->token == NULL || c->token_len > TOKEN_MAX)
			return mdm_err_set(e, MDM_E_DATA, "TokenUpdate needs a "
			    "Token of 1 to %d bytes", TOKEN_MAX);
		if (c->push_magic == NULL)
			return mdm_err_set(e, MDM_E_DATA, "TokenUpdate without "
			    "PushMagic");
		break;
	case MDM_QUEUE_CHECK_OUT:
	case MDM_QUEUE_SET_BOOTSTRAP_TOKEN:
	case MDM_QUEUE_GET_BOOTSTRAP_TOKEN:
		if (!device)
			return mdm_err_set(e, MDM_E_DATA, "%s on a user "
			    "channel", c->message_type);
		break;
	default:
		break;
	}
	return 0;
}

int
mdm_queue_checkin_parse(const void *body, size_t len,
    struct mdm_queue_checkin *out, struct mdm_err *e)
{
	plist_t p;
	size_t i;

	memset(out, 0, sizeof(*out));
	if (mdm_plist_parse_dict(body, len, &out->plist, e) == -1)
		return -1;
	p = out->plist;
	if ((out->message_type = opt_string(p, "MessageType")) == NULL) {
		mdm_err_set(e, MDM_E_DATA, "check-in without a MessageType");
		goto fail;
	}
	for (i = 0; i < MDM_ARRAY_LEN(checkin_types); i++)
		if (strcmp(out->message_type, checkin_types[i].name) == 0)
			out->type = checkin_types[i].type;
	if (mdm_queue_ident_from_plist(p, &out->ident, e) == -1)
		goto fail;
	out->topic = opt_string(p, "Topic");
	out->serial_number = opt_string(p, "SerialNumber");
	out->os_version = opt_string(p, "OSVersion");
	out->build_version = opt_string(p, "BuildVersion");
	out->product_name = opt_string(p, "ProductName");
	out->device_name = opt_string(p, "DeviceName");
	out->model = opt_string(p, "Model");
	out->model_name = opt_string(p, "ModelName");
	out->imei = opt_string(p, "IMEI");
	out->meid = opt_string(p, "MEID");
	out->token = opt_data(p, "Token", &out->token_len);
	out->push_magic = opt_string(p, "PushMagic");
	out->unlock_token = opt_data(p, "UnlockToken", &out->unlock_token_len);
	out->awaiting_configuration = opt_bool(p, "AwaitingConfiguration");
	out->not_on_console = opt_bool(p, "NotOnConsole");
	out->bootstrap_token = opt_data(p, "BootstrapToken",
	    &out->bootstrap_token_len);
	out->digest_response = opt_string(p, "DigestResponse");
	out->endpoint = opt_string(p, "Endpoint");
	out->data = opt_data(p, "Data", &out->data_len);
	out->token_service_type = opt_string(p, "TokenServiceType");
	out->token_parameters = mdm_plist_get_dict(p, "TokenParameters");
	if (checkin_check(out, e) == -1)
		goto fail;
	return 0;
fail:
	mdm_queue_checkin_release(out);
	return -1;
}

void
mdm_queue_checkin_release(struct mdm_queue_checkin *c)
{
	if (c == NULL)
		return;
	plist_free(c->plist);
	memset(c, 0, sizeof(*c));
}

/* ---- commands ---- */

void
mdm_queue_cmd_release(struct mdm_queue_cmd *c)
{
	if (c == NULL)
		return;
	free(c->payload_identifier);
	mdm_buf_release(&c->body);
	memset(c, 0, sizeof(*c));
}

int
mdm_queue_uuid_new(char out[37], struct mdm_err *e)
{
	unsigned char r[16];
	size_t i, j = 0;

	if (RAND_bytes(r, sizeof(r)) != 1)
		return mdm_err_set_ssl(e, MDM_E_SOFTWARE, "RAND_bytes");
	r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
	r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
	for (i = 0; i < sizeof(r); i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[j++] = '-';
		snprintf(out + j, 3, "%02x", r[i]);
		j += 2;
	}
	out[j] = '\0';
	return 0;
}

int
mdm_queue_uuid_check(const char *uuid, struct mdm_err *e)
{
	const char *s;
	char q[48];

	if (uuid == NULL || *uuid == '\0')
		return mdm_err_set(e, MDM_E_DATA, "empty CommandUUID");
	for (s = uuid; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && strchr("-_.:", *s) == NULL)
			break;
	if (*s != '\0' || s - uuid > MDM_QUEUE_UUID_MAX) {
		quote_for_msg(q, sizeof(q), uuid);
		return mdm_err_set(e, MDM_E_DATA, "CommandUUID \"%s\" is not 1 "
		    "to %d letters, digits, '-', '_', '.' or ':'", q,
		    MDM_QUEUE_UUID_MAX);
	}
	return 0;
}

static int
check_request_type(const char *rt, struct mdm_err *e)
{
	const char *s;
	char q[48];

	for (s = rt; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s))
			break;
	if (*rt == '\0' || *s != '\0' || s - rt > MDM_QUEUE_TYPE_MAX) {
		quote_for_msg(q, sizeof(q), rt);
		return mdm_err_set(e, MDM_E_DATA, "RequestType \"%s\" is not "
		    "1 to %d letters and digits", q, MDM_QUEUE_TYPE_MAX);
	}
	return 0;
}

/* Whether bytes look like a CMS ContentInfo (DER SEQUENCE) over a plist. */
static int
looks_like_der(const unsigned char *p, size_t len)
{
	return len >= 2 && p[0] == 0x30;
}

int
mdm_queue_profile_identifier(const void *profile, size_t len, char **out,
    int *is_signed, struct mdm_err *e)
{
	struct mdm_cms_verified v = { 0 };
	const unsigned char *content = profile;
	size_t clen = len;
	plist_t p = NULL;
	const char *id, *type;
	int rc = -1, sig;

	*out = NULL;
	if (len > MDM_QUEUE_PROFILE_MAX)
		return mdm_err_set(e, MDM_E_TOOBIG, "profile larger than the "
		    "limit of %u bytes", MDM_QUEUE_PROFILE_MAX);
	sig = looks_like_der(profile, len);
	if (sig) {
		if (mdm_cms_verify(profile, len, NULL, 0, NULL, &v, e) == -1) {
			mdm_err_prefix(e, "signed profile");
			goto out;
		}
		content = v.content.data;
		clen = v.content.len;
	}
	if (mdm_plist_parse_dict(content, clen, &p, e) == -1) {
		mdm_err_prefix(e, "not a configuration profile (an XML or "
		    "binary plist, or one signed in CMS)");
		goto out;
	}
	type = mdm_plist_get_string(p, "PayloadType");
	if (type == NULL || strcmp(type, "Configuration") != 0) {
		mdm_err_set(e, MDM_E_DATA, "not a configuration profile: its "
		    "PayloadType is not Configuration");
		goto out;
	}
	id = mdm_plist_get_string(p, "PayloadIdentifier");
	if (id == NULL || *id == '\0') {
		mdm_err_set(e, MDM_E_DATA, "profile without a "
		    "PayloadIdentifier");
		goto out;
	}
	if ((*out = strdup(id)) == NULL) {
		mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
		goto out;
	}
	if (is_signed != NULL)
		*is_signed = sig;
	rc = 0;
out:
	plist_free(p);
	mdm_cms_verified_release(&v);
	return rc;
}

int
mdm_queue_render(const char *uuid, const void *stored, size_t len,
    struct mdm_buf *out, struct mdm_err *e)
{
	if (mdm_queue_uuid_check(uuid, e) == -1)
		return -1;
	if (mdm_buf_append_str(out, xml_head, e) == -1 ||
	    mdm_buf_append_str(out, dict_open, e) == -1 ||
	    mdm_buf_printf(out, e, "\t<key>CommandUUID</key>\n\t<string>%s"
	    "</string>\n", uuid) == -1 ||
	    mdm_buf_append(out, stored, len, e) == -1 ||
	    mdm_buf_append_str(out, dict_close, e) == -1)
		return -1;
	return 0;
}

/*
 * The stored form: libplist's XML of the dict (without CommandUUID)
 * between its top-level <dict> and </dict>.  Rendering it back with a
 * UUID must parse again, within the plist caps.
 */
static int
make_stored(plist_t dict, const char *uuid, struct mdm_buf *body,
    struct mdm_err *e)
{
	struct mdm_buf xml, check;
	size_t head = strlen(xml_head) + strlen(dict_open);
	size_t tail = strlen(dict_close);
	plist_t back = NULL;
	int rc = -1;

	mdm_buf_init(&xml, 4 * (size_t)MDM_CAP_PLIST);
	mdm_buf_init(&check, 4 * (size_t)MDM_CAP_PLIST);
	if (mdm_plist_to_xml(dict, &xml, e) == -1)
		goto out;
	if (xml.len < head + tail ||
	    memcmp(xml.data, xml_head, strlen(xml_head)) != 0 ||
	    memcmp(xml.data + strlen(xml_head), dict_open,
	    strlen(dict_open)) != 0 ||
	    memcmp(xml.data + xml.len - tail, dict_close, tail) != 0) {
		mdm_err_set(e, MDM_E_SOFTWARE, "libplist wrote XML of a shape "
		    "this build does not know");
		goto out;
	}
	mdm_buf_reset(body);
	if (mdm_buf_append(body, xml.data + head, xml.len - head - tail,
	    e) == -1)
		goto out;
	if (mdm_queue_render(uuid, body->data, body->len, &check, e) == -1)
		goto out;
	if (mdm_plist_parse_dict(check.data, check.len, &back, e) == -1) {
		mdm_err_prefix(e, "the command as it would be sent");
		goto out;
	}
	rc = 0;
out:
	plist_free(back);
	mdm_buf_release(&xml);
	mdm_buf_release(&check);
	return rc;
}

int
mdm_queue_cmd_from_plist(plist_t cmd, struct mdm_queue_cmd *out,
    struct mdm_err *e)
{
	plist_t copy = NULL, command, node;
	const char *rt, *uuid, *ident;
	const unsigned char *payload;
	size_t plen;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	mdm_buf_init(&out->body, 4 * (size_t)MDM_CAP_PLIST);
	if (cmd == NULL || plist_get_node_type(cmd) != PLIST_DICT) {
		mdm_err_set(e, MDM_E_DATA, "a command is a dict");
		goto out;
	}
	if ((command = mdm_plist_get_dict(cmd, "Command")) == NULL) {
		mdm_err_set(e, MDM_E_DATA, "command without a Command dict");
		goto out;
	}
	if ((rt = mdm_plist_get_string(command, "RequestType")) == NULL) {
		mdm_err_set(e, MDM_E_DATA, "command without a "
		    "Command.RequestType string");
		goto out;
	}
	if (check_request_type(rt, e) == -1)
		goto out;
	snprintf(out->request_type, sizeof(out->request_type), "%s", rt);
	if ((node = plist_dict_get_item(cmd, "CommandUUID")) != NULL) {
		if ((uuid = mdm_plist_as_string(node)) == NULL) {
			mdm_err_set(e, MDM_E_DATA, "CommandUUID is not a "
			    "string");
			goto out;
		}
		if (mdm_queue_uuid_check(uuid, e) == -1)
			goto out;
		snprintf(out->uuid, sizeof(out->uuid), "%s", uuid);
	} else if (mdm_queue_uuid_new(out->uuid, e) == -1)
		goto out;

	if (strcmp(rt, "InstallProfile") == 0) {
		payload = mdm_plist_get_data(command, "Payload", &plen);
		if (payload == NULL || plen == 0) {
			mdm_err_set(e, MDM_E_DATA, "InstallProfile without "
			    "Payload data");
			goto out;
		}
		if (mdm_queue_profile_identifier(payload, plen,
		    &out->payload_identifier, NULL, e) == -1) {
			mdm_err_prefix(e, "InstallProfile Payload");
			goto out;
		}
	} else if (strcmp(rt, "RemoveProfile") == 0) {
		ident = mdm_plist_get_string(command, "Identifier");
		if (ident == NULL || *ident == '\0') {
			mdm_err_set(e, MDM_E_DATA, "RemoveProfile without an "
			    "Identifier string");
			goto out;
		}
		if ((out->payload_identifier = strdup(ident)) == NULL) {
			mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
			goto out;
		}
	}
	if ((copy = plist_copy(cmd)) == NULL) {
		mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
		goto out;
	}
	plist_dict_remove_item(copy, "CommandUUID");
	if (make_stored(copy, out->uuid, &out->body, e) == -1)
		goto out;
	rc = 0;
out:
	plist_free(copy);
	if (rc == -1)
		mdm_queue_cmd_release(out);
	return rc;
}

int
mdm_queue_cmd_parse(const void *data, size_t len, struct mdm_queue_cmd *out,
    struct mdm_err *e)
{
	plist_t p = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	if (mdm_plist_parse_dict(data, len, &p, e) == -1)
		return -1;
	rc = mdm_queue_cmd_from_plist(p, out, e);
	plist_free(p);
	return rc;
}

/* ---- the common commands ---- */

enum {
	F_PROFILE = 1 << 0,
	F_IDENTIFIER = 1 << 1,
	F_QUERIES = 1 << 2,
	F_MANAGED_ONLY = 1 << 3,
	F_PIN = 1 << 4,
	F_MESSAGE = 1 << 5,
	F_PHONE = 1 << 6,
	F_ITUNES = 1 << 7,
	F_MANIFEST = 1 << 8,
	F_MGMT_FLAGS = 1 << 9,
	F_PRODUCT_KEY = 1 << 10,
	F_PRODUCT_VERSION = 1 << 11,
	F_INSTALL_ACTION = 1 << 12,
	F_DEVICE_NAME = 1 << 13,
	F_HOST_NAME = 1 << 14,
	F_DATA = 1 << 15,
	F_UNLOCK = 1 << 16,
	F_NOTIFY = 1 << 17,
};

/* What each field is called in messages, by bit. */
static const char *const field_names[] = {
	"a profile", "an identifier", "queries", "managed-only", "a PIN",
	"a message", "a phone number", "an iTunes Store id", "a manifest URL",
	"management flags", "a product key", "a product version",
	"an install action", "a device name", "a host name", "data",
	"an unlock token", "notify-user",
};

/* DeviceInformation without --query: what an inventory usually wants. */
static const char *const default_queries[] = {
	"UDID", "DeviceName", "OSVersion", "BuildVersion", "ProductName",
	"Model", "ModelName", "SerialNumber", "DeviceCapacity",
	"AvailableDeviceCapacity", "BatteryLevel", "IsSupervised",
	"IsActivationLockEnabled", "WiFiMAC", "BluetoothMAC",
};

static const char *const install_actions[] = {
	"Default", "DownloadOnly", "InstallASAP", "NotifyOnly",
	"InstallLater", "InstallForceRestart",
};

struct build_type {
	const char *name;
	unsigned takes;		/* fields it reads */
	unsigned needs;		/* fields it must have */
	int (*fill)(plist_t c, const struct mdm_queue_build *b,
	    struct mdm_err *e);
};

static int
oom(struct mdm_err *e)
{
	return mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
}

/* Strings from the command line become plist strings: UTF-8 only. */
static int
utf8_ok(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	unsigned cp;
	int n, i;

	while (*p != '\0') {
		if (*p < 0x80) {
			p++;
			continue;
		}
		if ((*p & 0xe0) == 0xc0)
			n = 1, cp = *p & 0x1f;
		else if ((*p & 0xf0) == 0xe0)
			n = 2, cp = *p & 0x0f;
		else if ((*p & 0xf8) == 0xf0)
			n = 3, cp = *p & 0x07;
		else
			return 0;
		for (i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (p[i] & 0x3f);
		}
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) ||
		    (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		p += n + 1;
	}
	return 1;
}

static int
set_str(plist_t d, const char *key, const char *v, struct mdm_err *e)
{
	if (!utf8_ok(v))
		return mdm_err_set(e, MDM_E_USAGE, "%s: not UTF-8", key);
	if (mdm_plist_set_string(d, key, v) == -1)
		return oom(e);
	return 0;
}

static int
fill_install_profile(plist_t c, const struct mdm_queue_build *b,
    struct mdm_err *e)
{
	char *id = NULL;

	if (mdm_queue_profile_identifier(b->profile, b->profile_len, &id,
	    NULL, e) == -1)
		return -1;
	free(id);
	if (mdm_plist_set_data(c, "Payload", b->profile, b->profile_len) == -1)
		return oom(e);
	return 0;
}

static int
fill_remove_profile(plist_t c, const struct mdm_queue_build *b,
    struct mdm_err *e)
{
	return set_str(c, "Identifier", b->identifier, e);
}

static int
fill_managed_only(plist_t c, const struct mdm_queue_build *b,
    struct mdm_err *e)
{
	if (b->managed_only && mdm_plist_set_bool(c, "ManagedOnly", 1) == -1)
		return oom(e);
	return 0;
}

static int
fill_app_list(plist_t c, const struct mdm_queue_build *b, struct mdm_err *e)
{
	if (b->managed_only &&
	    mdm_plist_set_bool(c, "ManagedAppsOnly", 1) == -1)
		return oom(e);
	return 0;
}

static int
fill_device_information(plist_t c, const struct mdm_queue_build *b,
    struct mdm_err *e)
{
	const char *const *q = b->queries;
	size_t n = b->nqueries, i;
	plist_t arr;

	if (n == 0) {
		q = default_queries;
		n = MDM_ARRAY_LEN(default_queries);
	}
	if ((arr = plist_new_array()) == NULL)
		return oom(e);
	plist_dict_set_item(c, "Queries", arr);
	for (i = 0; i < n; i++) {
		if (q[i] == NULL || *q[i] == '\0' || !utf8_ok(q[i]))
			return mdm_err_set(e, MDM_E_USAGE, "query %zu is empty "
			    "or not UTF-8", i + 1);
		plist_array_append_item(arr, plist_new_string(q[i]));
	}
	return 0;
}

static int
check_pin(const char *pin, struct mdm_err *e)
{
	size_t i;

	for (i = 0; pin[i] != '\0'; i++)
		if (!isdigit((unsigned char)pin[i]))
			break;
	if (pin[i] != '\0' || i != 6)
		return mdm_err_set(e, MDM_E_USAGE, "the PIN must be six "
		    "digits");
	return 0;
}

static int
fill_device_lock(plist_t c, const struct mdm_queue_build *b,
    struct mdm_err *e)
{
	if (b->pin != NULL && (check_pin(b->pin, e) == -1 ||
	    set_str(c, "PIN", b->pin, e) == -1))
		return -1;
	if (b->message != NULL && set_str(c, "Message", b->message, e) == -1)
		return -1;
	if (b->phone_number != NULL &&
	    set_str(c, "PhoneNumber", b->phone_number, e) == -1)
		return -1;
	return 0;
}

static int
fill_erase_device(plist_t c, const struct mdm_queue_build *b,
    struct mdm_err *e)
{
	if (b->pin != NULL && (check_pin(b->pin, e) == -1 ||
	    set_str(c, "PIN", b->pin, e) == -1))
		return -1;
	return 0;
}

static int
fill_restart(plist_t c, const struct mdm_queue_build *b, struct mdm_err *e)
{
	if (b->notify_user && mdm_plist_set_bool(c, "NotifyUser", 1) == -1)
		return oom(e);
	return 0;
}

static int
fill_nothing(plist_t c, const struct mdm_queue_build *b, struct mdm_err *e)
{
	(void)c;
	(void)b;
	(void)e;
	return 0;
}

static int
check_url(const char *url, struct mdm_err *e)
{
	if (strncmp(url, "https://", 8) != 0 || url[8] == '\0' ||
	    !mdm_queue_printable(url) || strchr(url, ' ') != NULL)
		return mdm_err_set(e, MDM_E_USAGE, "the manifest URL must be "
		    "an https:// URL");
	return 0;
}

static int
fill_mgmt_flags(plist_t c, const struct mdm_queue_build *b,
    struct mdm_err *e)
{
	if (b->management_flags < 0 || b->management_flags > 0xffff)
		return mdm_err_set(e, MDM_E_USAGE, "management flags out of "
		    "range");
	if (b->management_flags != 0 &&
	    mdm_plist_set_int(c, "ManagementFlags", b->management_flags) == -1)
		return oom(e);
	return 0;
}

static int
fill_install_app(plist_t c, const struct mdm_queue_build *b,
    struct mdm_err *e)
{
	int n = (b->itunes_store_id != 0) + (b->identifier != NULL) +
	    (b->manifest_url != NULL);

	if (n != 1)
		return mdm_err_set(e, MDM_E_USAGE, "InstallApplication takes "
		    "exactly one of an iTunes Store id, an identifier or a "
		    "manifest URL");
	if (b->itunes_store_id < 0)
		return mdm_err_set(e, MDM_E_USAGE, "the iTunes Store id must "
		    "be positive");
	if (b->itunes_store_id != 0 &&
	    mdm_plist_set_int(c, "iTunesStoreID", b->itunes_store_id) == -1)
		return oom(e);
	if (b->identifier != NULL &&
	    set_str(c, "Identifier", b->identifier, e) == -1)
		return -1;
	if (b->manifest_url != NULL && (check_url(b->manifest_url, e) == -1 ||
	    set_str(c, "ManifestURL", b->manifest_url, e) == -1))
		return -1;
	return fill_mgmt_flags(c, b, e);
}

static int
fill_install_enterprise_app(plist_t c, const struct mdm_queue_build *b,
    struct mdm_err *e)
{
	if (check_url(b->manifest_url, e) == -1 ||
	    set_str(c, "ManifestURL", b->manifest_url, e) == -1)
		return -1;
	return fill_mgmt_flags(c, b, e);
}

static int
fill_schedule_os_update(plist_t c, const struct mdm_queue_build *b,
    struct mdm_err *e)
{
	const char *action = b->install_action ? b->install_action : "Default";
	plist_t arr, u;
	size_t i;

	for (i = 0; i < MDM_ARRAY_LEN(install_actions); i++)
		if (strcmp(action, install_actions[i]) == 0)
			break;
	if (i == MDM_ARRAY_LEN(install_actions))
		return mdm_err_set(e, MDM_E_USAGE, "install action must be "
		    "Default, DownloadOnly, InstallASAP, NotifyOnly, "
		    "InstallLater or InstallForceRestart");
	if ((arr = plist_new_array()) == NULL)
		return oom(e);
	plist_dict_set_item(c, "Updates", arr);
	if ((u = plist_new_dict()) == NULL)
		return oom(e);
	plist_array_append_item(arr, u);
	if (b->product_key != NULL &&
	    set_str(u, "ProductKey", b->product_key, e) == -1)
		return -1;
	if (b->product_version != NULL &&
	    set_str(u, "ProductVersion", b->product_version, e) == -1)
		return -1;
	return set_str(u, "InstallAction", action, e);
}

static int
add_setting(plist_t arr, const char *item, const char *value,
    struct mdm_err *e)
{
	plist_t d;

	if ((d = plist_new_dict()) == NULL)
		return oom(e);
	plist_array_append_item(arr, d);
	if (set_str(d, "Item", item, e) == -1)
		return -1;
	return set_str(d, item, value, e);
}

static int
fill_settings(plist_t c, const struct mdm_queue_build *b, struct mdm_err *e)
{
	plist_t arr;

	if (b->device_name == NULL && b->host_name == NULL)
		return mdm_err_set(e, MDM_E_USAGE, "Settings needs a device "
		    "name or a host name");
	if ((arr = plist_new_array()) == NULL)
		return oom(e);
	plist_dict_set_item(c, "Settings", arr);
	if (b->device_name != NULL &&
	    add_setting(arr, "DeviceName", b->device_name, e) == -1)
		return -1;
	if (b->host_name != NULL &&
	    add_setting(arr, "HostName", b->host_name, e) == -1)
		return -1;
	return 0;
}

static int
fill_declarative(plist_t c, const struct mdm_queue_build *b,
    struct mdm_err *e)
{
	json_t *j = NULL;

	if (b->data == NULL)
		return 0;
	if (mdm_json_parse(b->data, b->data_len, &j, e) == -1) {
		mdm_err_prefix(e, "DeclarativeManagement data");
		if (e != NULL)
			e->code = MDM_E_USAGE;
		return -1;
	}
	json_decref(j);
	if (mdm_plist_set_data(c, "Data", b->data, b->data_len) == -1)
		return oom(e);
	return 0;
}

static int
fill_clear_passcode(plist_t c, const struct mdm_queue_build *b,
    struct mdm_err *e)
{
	if (mdm_plist_set_data(c, "UnlockToken", b->unlock_token,
	    b->unlock_token_len) == -1)
		return oom(e);
	return 0;
}

static const struct build_type build_types[] = {
	{ "InstallProfile", F_PROFILE, F_PROFILE, fill_install_profile },
	{ "RemoveProfile", F_IDENTIFIER, F_IDENTIFIER, fill_remove_profile },
	{ "ProfileList", F_MANAGED_ONLY, 0, fill_managed_only },
	{ "DeviceInformation", F_QUERIES, 0, fill_device_information },
	{ "SecurityInfo", 0, 0, fill_nothing },
	{ "CertificateList", F_MANAGED_ONLY, 0, fill_managed_only },
	{ "InstalledApplicationList", F_MANAGED_ONLY, 0, fill_app_list },
	{ "DeviceLock", F_PIN | F_MESSAGE | F_PHONE, 0, fill_device_lock },
	{ "EraseDevice", F_PIN, 0, fill_erase_device },
	{ "RestartDevice", F_NOTIFY, 0, fill_restart },
	{ "ShutDownDevice", 0, 0, fill_nothing },
	{ "InstallApplication", F_ITUNES | F_IDENTIFIER | F_MANIFEST |
	    F_MGMT_FLAGS, 0, fill_install_app },
	{ "InstallEnterpriseApplication", F_MANIFEST | F_MGMT_FLAGS,
	    F_MANIFEST, fill_install_enterprise_app },
	{ "ScheduleOSUpdate", F_PRODUCT_KEY | F_PRODUCT_VERSION |
	    F_INSTALL_ACTION, 0, fill_schedule_os_update },
	{ "Settings", F_DEVICE_NAME | F_HOST_NAME, 0, fill_settings },
	{ "DeviceConfigured", 0, 0, fill_nothing },
	{ "DeclarativeManagement", F_DATA, 0, fill_declarative },
	{ "ClearPasscode", F_UNLOCK, F_UNLOCK, fill_clear_passcode },
};

const char *const mdm_queue_build_types[] = {
	"InstallProfile", "RemoveProfile", "ProfileList", "DeviceInformation",
	"SecurityInfo", "CertificateList", "InstalledApplicationList",
	"DeviceLock", "EraseDevice", "RestartDevice", "ShutDownDevice",
	"InstallApplication", "InstallEnterpriseApplication",
	"ScheduleOSUpdate", "Settings", "DeviceConfigured",
	"DeclarativeManagement", "ClearPasscode", NULL
};

static unsigned
fields_given(const struct mdm_queue_build *b)
{
	unsigned f = 0;

	if (b->profile != NULL)
		f |= F_PROFILE;
	if (b->identifier != NULL)
		f |= F_IDENTIFIER;
	if (b->nqueries > 0)
		f |= F_QUERIES;
	if (b->managed_only)
		f |= F_MANAGED_ONLY;
	if (b->pin != NULL)
		f |= F_PIN;
	if (b->message != NULL)
		f |= F_MESSAGE;
	if (b->phone_number != NULL)
		f |= F_PHONE;
	if (b->itunes_store_id != 0)
		f |= F_ITUNES;
	if (b->manifest_url != NULL)
		f |= F_MANIFEST;
	if (b->management_flags != 0)
		f |= F_MGMT_FLAGS;
	if (b->product_key != NULL)
		f |= F_PRODUCT_KEY;
	if (b->product_version != NULL)
		f |= F_PRODUCT_VERSION;
	if (b->install_action != NULL)
		f |= F_INSTALL_ACTION;
	if (b->device_name != NULL)
		f |= F_DEVICE_NAME;
	if (b->host_name != NULL)
		f |= F_HOST_NAME;
	if (b->data != NULL)
		f |= F_DATA;
	if (b->unlock_token != NULL)
		f |= F_UNLOCK;
	if (b->notify_user)
		f |= F_NOTIFY;
	return f;
}

static const char *
first_field(unsigned f)
{
	size_t i;

	for (i = 0; i < MDM_ARRAY_LEN(field_names); i++)
		if (f & (1u << i))
			return field_names[i];
	return "something";
}

int
mdm_queue_build(const struct mdm_queue_build *b, plist_t *out,
    struct mdm_err *e)
{
	const struct build_type *t = NULL;
	plist_t top = NULL, c;
	char uuid[37];
	unsigned given;
	size_t i;
	int rc = -1;

	*out = NULL;
	for (i = 0; b->request_type != NULL && i < MDM_ARRAY_LEN(build_types);
	    i++)
		if (strcasecmp(b->request_type, build_types[i].name) == 0)
			t = &build_types[i];
	if (t == NULL)
		return mdm_err_set(e, MDM_E_USAGE, "'%s' is not a command type "
		    "this tool builds (use a raw plist for others)",
		    b->request_type ? b->request_type : "");
	given = fields_given(b);
	if (given & ~t->takes)
		return mdm_err_set(e, MDM_E_USAGE, "%s does not take %s",
		    t->name, first_field(given & ~t->takes));
	if (t->needs & ~given)
		return mdm_err_set(e, MDM_E_USAGE, "%s needs %s", t->name,
		    first_field(t->needs & ~given));
	if (b->uuid != NULL && mdm_queue_uuid_check(b->uuid, e) == -1) {
		if (e != NULL)
			e->code = MDM_E_USAGE;
		return -1;
	}
	if ((top = plist_new_dict()) == NULL || (c = plist_new_dict()) == NULL) {
		oom(e);
		goto out;
	}
	plist_dict_set_item(top, "Command", c);
	if (mdm_plist_set_string(c, "RequestType", t->name) == -1) {
		oom(e);
		goto out;
	}
	if (t->fill(c, b, e) == -1)
		goto out;
	if (b->uuid == NULL && mdm_queue_uuid_new(uuid, e) == -1)
		goto out;
	if (mdm_plist_set_string(top, "CommandUUID", b->uuid != NULL ?
	    b->uuid : uuid) == -1) {
		oom(e);
		goto out;
	}
	*out = top;
	top = NULL;
	rc = 0;
out:
	plist_free(top);
	return rc;
}
