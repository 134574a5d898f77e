/*
 * queue: the protocol half of the command queue, with no SQL in it.  It
 * turns device bodies into structs (check-in messages and command
 * reports), names the channel a body belongs to by the enrollment id
 * NanoMDM normalises it to, builds the common commands with the keys Apple
 * documents, and checks raw command plists before they are stored.
 * state_queue.h stores and serves what this module produces.
 *
 *   device channel          UDID                            device
 *   macOS user channel      UDID:UserID                     user
 *   Shared iPad user        UDID:UserShortName              shared-ipad
 *   User Enrollment device  EnrollmentID            user-enrollment-device
 *   User Enrollment user    EnrollmentID:EnrollmentUserID   user-enrollment
 *
 * Invariants: every body goes through mdm_plist_parse (capped and
 * depth-checked) before anything here reads it; an optional key that is
 * missing or of the wrong type reads as absent, never as an error or a
 * crash; every string handed out is borrowed from a plist tree its struct
 * owns, or held in a fixed array, and ids never hold control characters,
 * so they print as one line and one field.
 *
 * A stored command is its XML plist without CommandUUID: the top-level
 * dict's contents only, so one stored payload serves every command with
 * the same content (one profile sent to 100,000 devices under several
 * UUIDs is one row).  mdm_queue_render puts a UUID back when a device is
 * sent the command.
 */
#ifndef MDM_QUEUE_H
#define MDM_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include <plist/plist.h>

#include "buf.h"
#include "err.h"

#define MDM_QUEUE_UUID_MAX	64	/* CommandUUID */
#define MDM_QUEUE_TYPE_MAX	64	/* RequestType */
#define MDM_QUEUE_ID_PART_MAX	255	/* UDID, UserID, ... */
#define MDM_QUEUE_ID_MAX	(2 * MDM_QUEUE_ID_PART_MAX + 1)
/* A profile to install; base64 in the command plist stays under its cap. */
#define MDM_QUEUE_PROFILE_MAX	(8u << 20)
/* ErrorChain items kept from one report. */
#define MDM_QUEUE_ERROR_CHAIN_MAX 32

/*
 * 1 when s holds no control character (C0 or DEL), so it prints as one
 * line and one field; UTF-8 passes.  The rule for ids and the other
 * values here, and for the enrollment profile's fields (enroll.h).
 */
int mdm_queue_printable(const char *s);

/*
 * The enrollment ids one request names: owned copies, grown as needed.
 * Start it zeroed; mdm_queue_ids_release frees it.
 */
struct mdm_queue_ids {
	char **v;
	size_t n, alloc;
};

/* Appends a copy of id; MDM_E_TOOBIG when l holds max ids already. */
int mdm_queue_ids_add(struct mdm_queue_ids *l, const char *id, size_t max,
    struct mdm_err *e);
/* Frees the copies and the array and zeroes l; a zeroed l is fine. */
void mdm_queue_ids_release(struct mdm_queue_ids *l);

/* NanoMDM's numbering. */
enum mdm_queue_enroll_type {
	MDM_QUEUE_DEVICE = 1,
	MDM_QUEUE_USER = 2,
	MDM_QUEUE_UE_DEVICE = 3,
	MDM_QUEUE_UE = 4,
	MDM_QUEUE_SHARED_IPAD = 5,
};

/* "device", "user", "user-enrollment-device", ...; static storage. */
const char *mdm_queue_enroll_type_name(enum mdm_queue_enroll_type t);
/* Device channels (device, user-enrollment-device) vs user channels. */
int mdm_queue_enroll_type_is_device(enum mdm_queue_enroll_type t);

struct mdm_queue_ident {
	enum mdm_queue_enroll_type type;
	char id[MDM_QUEUE_ID_MAX + 1];		/* the enrollment id */
	char device_id[MDM_QUEUE_ID_MAX + 1];	/* its device channel (== id there) */
	/* Borrowed from the message they came from; NULL when absent. */
	const char *udid;
	const char *enrollment_id;
	const char *user_id;		/* UserID or EnrollmentUserID */
	const char *user_short_name;
	const char *user_long_name;
};

/*
 * Names the channel of msg, a check-in or report dict (borrowed; out
 * borrows strings from it).  MDM_E_DATA when msg carries neither UDID nor
 * EnrollmentID, or an id part is empty, longer than
 * MDM_QUEUE_ID_PART_MAX or holds a control character.
 */
int mdm_queue_ident_from_plist(plist_t msg, struct mdm_queue_ident *out,
    struct mdm_err *e);

/* The Status of a command report.  UNPARSEABLE is ours, never sent. */
enum mdm_queue_status {
	MDM_QUEUE_IDLE = 0,
	MDM_QUEUE_ACKNOWLEDGED,
	MDM_QUEUE_ERROR,
	MDM_QUEUE_FORMAT_ERROR,
	MDM_QUEUE_NOT_NOW,
	MDM_QUEUE_UNPARSEABLE,
};

/* "Idle", "Acknowledged", ..., "Unparseable"; static storage. */
const char *mdm_queue_status_name(enum mdm_queue_status s);

/* A command report: the body of a PUT to the command URL. */
struct mdm_queue_report {
	plist_t plist;			/* owned; NULL if the body did not parse */
	enum mdm_queue_status status;
	const char *command_uuid;	/* borrowed; NULL for Idle or if missing */
	const char *request_type;	/* borrowed; echoed by macOS, or NULL */
	struct mdm_queue_ident ident;	/* ident.id is "" when unknown */
	char *error_chain;		/* owned: ErrorChain as a JSON array, or NULL */
	char problem[MDM_ERR_MSG_MAX];	/* why status is UNPARSEABLE, else "" */
};

/*
 * Parses a command report.  Returns 0 when the body names its enrollment:
 * status is then what the device said, or MDM_QUEUE_UNPARSEABLE (problem
 * says why) when Status is missing or unknown, or a result comes without
 * a CommandUUID.  Returns -1 (MDM_E_DATA or MDM_E_TOOBIG) when the body is
 * not a plist dict or names no enrollment; out is then still filled as far
 * as it goes, with status MDM_QUEUE_UNPARSEABLE, so a server that knows
 * the device from its certificate can copy the id into out->ident.id and
 * store the report anyway.  ErrorChain items that are not dicts, and keys
 * of the wrong type in them, are left out of error_chain.
 * Release out in either case.
 */
int mdm_queue_report_parse(const void *body, size_t len,
    struct mdm_queue_report *out, struct mdm_err *e);
/* Frees what out owns and zeroes it.  r may be NULL or zeroed. */
void mdm_queue_report_release(struct mdm_queue_report *r);

enum mdm_queue_checkin_type {
	MDM_QUEUE_CHECKIN_OTHER = 0,	/* a MessageType we do not know */
	MDM_QUEUE_AUTHENTICATE,
	MDM_QUEUE_TOKEN_UPDATE,
	MDM_QUEUE_CHECK_OUT,
	MDM_QUEUE_USER_AUTHENTICATE,
	MDM_QUEUE_SET_BOOTSTRAP_TOKEN,
	MDM_QUEUE_GET_BOOTSTRAP_TOKEN,
	MDM_QUEUE_DECLARATIVE_MANAGEMENT,
	MDM_QUEUE_GET_TOKEN,
};

/* A check-in message.  Pointers are borrowed from plist; NULL = absent. */
struct mdm_queue_checkin {
	plist_t plist;			/* owned */
	enum mdm_queue_checkin_type type;
	const char *message_type;
	struct mdm_queue_ident ident;
	const char *topic;
	/* Authenticate */
	const char *serial_number, *os_version, *build_version;
	const char *product_name, *device_name, *model, *model_name;
	const char *imei, *meid;
	/* TokenUpdate */
	const unsigned char *token;	/* raw APNs token */
	size_t token_len;
	const char *push_magic;
	const unsigned char *unlock_token; /* NULL when absent or empty */
	size_t unlock_token_len;
	int awaiting_configuration;	/* -1 absent, else 0 or 1 */
	int not_on_console;		/* -1 absent, else 0 or 1 */
	/* SetBootstrapToken: NULL when absent or empty (= delete it) */
	const unsigned char *bootstrap_token;
	size_t bootstrap_token_len;
	/* UserAuthenticate */
	const char *digest_response;
	/* DeclarativeManagement */
	const char *endpoint;
	const unsigned char *data;
	size_t data_len;
	/* GetToken */
	const char *token_service_type;
	plist_t token_parameters;	/* borrowed dict, or NULL */
};

/*
 * Parses a check-in body.  MDM_E_DATA when it is not a plist dict, has no
 * MessageType, names no enrollment, or lacks what its type needs:
 * Authenticate needs Topic and must come on a device channel; TokenUpdate
 * needs Topic, a Token of 1 to 256 bytes and PushMagic; CheckOut,
 * SetBootstrapToken and GetBootstrapToken come on device channels only.
 * A MessageType not listed above parses with type MDM_QUEUE_CHECKIN_OTHER.
 * On failure out is released.
 */
int mdm_queue_checkin_parse(const void *body, size_t len,
    struct mdm_queue_checkin *out, struct mdm_err *e);
void mdm_queue_checkin_release(struct mdm_queue_checkin *c);

/* A command ready to be stored. */
struct mdm_queue_cmd {
	char uuid[MDM_QUEUE_UUID_MAX + 1];
	char request_type[MDM_QUEUE_TYPE_MAX + 1];
	/* InstallProfile/RemoveProfile: the profile's PayloadIdentifier. */
	char *payload_identifier;	/* owned, or NULL */
	struct mdm_buf body;		/* the stored form (see above) */
};

/* Frees what c owns and zeroes it.  c may be NULL or zeroed. */
void mdm_queue_cmd_release(struct mdm_queue_cmd *c);

/*
 * Checks a command dict and makes its stored form.  cmd is borrowed and
 * left unchanged.  It must hold a Command dict with a non-empty
 * RequestType string of at most MDM_QUEUE_TYPE_MAX letters and digits;
 * InstallProfile needs Payload data holding a profile (signed or not;
 * see mdm_queue_profile_identifier) and RemoveProfile an Identifier
 * string.  A CommandUUID is kept if it passes mdm_queue_uuid_check;
 * without one a new UUID is made.  MDM_E_DATA (or MDM_E_TOOBIG) when the
 * command does not pass.
 */
int mdm_queue_cmd_from_plist(plist_t cmd, struct mdm_queue_cmd *out,
    struct mdm_err *e);
/* The same from bytes (XML or binary plist). */
int mdm_queue_cmd_parse(const void *data, size_t len, struct mdm_queue_cmd *out,
    struct mdm_err *e);

/*
 * Appends to out the body a device is sent: the stored form with uuid
 * put back as CommandUUID, as an XML plist.  stored comes from
 * mdm_queue_cmd (as kept in the database); uuid must pass
 * mdm_queue_uuid_check.
 */
int mdm_queue_render(const char *uuid, const void *stored, size_t len,
    struct mdm_buf *out, struct mdm_err *e);

/* A new random (version 4) UUID in lowercase: 36 characters and a NUL. */
int mdm_queue_uuid_new(char out[37], struct mdm_err *e);
/*
 * A CommandUUID we store and send: 1 to MDM_QUEUE_UUID_MAX of letters,
 * digits, '-', '_', '.' and ':' (it is written into XML and into
 * tab-separated output unescaped).
 */
int mdm_queue_uuid_check(const char *uuid, struct mdm_err *e);

/*
 * The top-level PayloadIdentifier of a configuration profile: an XML or
 * binary plist, or one signed in CMS (the signature must verify; the
 * signer is not checked against any CA, as the device does that).
 * *out is owned (free it); *is_signed says which it was (may be NULL).
 * MDM_E_DATA when it is neither, or has no PayloadIdentifier;
 * MDM_E_TOOBIG over MDM_QUEUE_PROFILE_MAX.
 */
int mdm_queue_profile_identifier(const void *profile, size_t len, char **out,
    int *is_signed, struct mdm_err *e);

/*
 * The common commands.  Zero means "not given" for every field.  Which
 * fields each type reads, and what it requires, is in mdm-queue(1); a
 * field a type does not read is an error, so a typo in a script does not
 * send something else than meant.
 */
struct mdm_queue_build {
	const char *request_type;	/* Apple's name, any case */
	const char *uuid;		/* NULL: a new one */
	const unsigned char *profile;	/* InstallProfile: sent as given */
	size_t profile_len;
	const char *identifier;		/* RemoveProfile; InstallApplication */
	const char *const *queries;	/* DeviceInformation; none: a default set */
	size_t nqueries;
	int managed_only;		/* ProfileList, CertificateList,
					   InstalledApplicationList */
	const char *pin;		/* DeviceLock, EraseDevice: 6 digits */
	const char *message;		/* DeviceLock */
	const char *phone_number;	/* DeviceLock */
	int64_t itunes_store_id;	/* InstallApplication */
	const char *manifest_url;	/* InstallApplication,
					   InstallEnterpriseApplication */
	int64_t management_flags;	/* the same two */
	const char *product_key;	/* ScheduleOSUpdate */
	const char *product_version;	/* ScheduleOSUpdate */
	const char *install_action;	/* ScheduleOSUpdate; NULL: Default */
	const char *device_name;	/* Settings */
	const char *host_name;		/* Settings */
	const unsigned char *data;	/* DeclarativeManagement: JSON */
	size_t data_len;
	const unsigned char *unlock_token; /* ClearPasscode */
	size_t unlock_token_len;
	int notify_user;		/* RestartDevice */
};

/* The request types mdm_queue_build knows, NULL-terminated. */
extern const char *const mdm_queue_build_types[];

/*
 * Builds the command dict (CommandUUID and Command) for b.  *out is owned
 * (plist_free).  MDM_E_USAGE for an unknown type, a missing required
 * field, a field the type does not read, or a malformed value (a PIN
 * that is not six digits, an install action Apple does not define, Data
 * that is not JSON); MDM_E_DATA for a profile that is not one.
 */
int mdm_queue_build(const struct mdm_queue_build *b, plist_t *out,
    struct mdm_err *e);

#endif
