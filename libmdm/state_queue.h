/*
 * state_queue: enrollments, the command queue and results in mdm.db
 * (migration 0003_queue.sql).  mdm-serve drives it from check-ins and
 * command reports, mdm-queue from the command line, mdm-push reads push
 * targets from it; all may run at once on one state directory.
 *
 * Invariants:
 *  - One queue row per (enrollment, command).  Every write is one short
 *    BEGIN IMMEDIATE transaction; a large enqueue commits every
 *    MDM_STATE_QUEUE_CHUNK enrollments, so a server waiting on the lock
 *    never waits for long.
 *  - A command's payload is stored once, shared by every enrollment (and
 *    every command) with the same content.
 *  - A queue row is 'pending' until a result, a cancel, a supersession
 *    or an Authenticate/CheckOut ends it; it is never deleted while
 *    pending except by an explicit purge of pending rows.
 *  - Sessions: an Idle report starts one.  A command is offered at most
 *    once per session; then it waits for the next session whatever the
 *    device answered (NotNow, garbage, nothing), so no answer can make the
 *    queue loop on one command or stop behind it.
 *  - An Idle report with nothing pending writes nothing (last_seen_at is
 *    refreshed at most every MDM_STATE_SEEN_INTERVAL seconds).
 *
 * Enrollment arguments named "key" accept an enrollment id, a device
 * UDID or a serial number (any case for the last two), resolved in that
 * order; a serial shared by several device enrollments resolves to the
 * one enabled one or fails as ambiguous (MDM_E_DATA).  An unknown key is
 * MDM_E_NOINPUT.  Busy past the timeout is MDM_E_TEMPFAIL, as in state.h.
 */
#ifndef MDM_STATE_QUEUE_H
#define MDM_STATE_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "queue.h"
#include "state.h"

#define MDM_STATE_QUEUE_CHUNK	5000	/* enrollments per enqueue transaction */
#define MDM_STATE_SEEN_INTERVAL	300	/* seconds between last_seen_at writes */
#define MDM_STATE_RETENTION	(30 * 86400)	/* purge's default age */

/* ---- enrollments ---- */

/*
 * Authenticate (device channel): creates or refreshes the enrollment from
 * m, disables it and its user channels until the next TokenUpdate (and
 * resets their TokenUpdate tallies), cancels every pending command of the
 * device and of its user channels, and binds cert_hash (lowercase hex
 * SHA-256 of the identity certificate; NULL leaves the binding as is).
 * A cert_hash bound to another enrollment is MDM_E_EXISTS and changes
 * nothing.  m is borrowed.
 */
int mdm_state_enroll_authenticate(struct mdm_state *st,
    const struct mdm_queue_checkin *m, const char *cert_hash,
    struct mdm_err *e);

/*
 * TokenUpdate (either channel): stores topic, push token (hex), PushMagic,
 * AwaitingConfiguration when sent, and the UnlockToken only when one is
 * sent (an absent or empty one never erases a stored one); enables the
 * enrollment, clears a dead-token mark and bumps its tally, which comes
 * back in *tally (may be NULL): 1 is the TokenUpdate of a new enrollment.
 * A user channel is created on its first TokenUpdate; its device channel
 * must exist (MDM_E_NOINPUT).  A device channel without an Authenticate
 * is created as well (the server decides whether to trust it).
 */
int mdm_state_enroll_token_update(struct mdm_state *st,
    const struct mdm_queue_checkin *m, int64_t *tally, struct mdm_err *e);

/*
 * CheckOut: disables the enrollment and, for a device channel, its user
 * channels, and cancels their pending commands.  Unknown: MDM_E_NOINPUT.
 */
int mdm_state_enroll_checkout(struct mdm_state *st,
    const struct mdm_queue_checkin *m, struct mdm_err *e);

/*
 * SetBootstrapToken: stores token (the bytes given: the server encrypts
 * it first) on the device channel id; NULL or len 0 deletes it.
 */
int mdm_state_enroll_set_bootstrap(struct mdm_state *st, const char *id,
    const void *token, size_t len, struct mdm_err *e);
/* Appends the stored bootstrap token to out; 1 if there is none, else 0. */
int mdm_state_enroll_get_bootstrap(struct mdm_state *st, const char *id,
    struct mdm_buf *out, struct mdm_err *e);

/*
 * Certificate binding.  Certificates are bound to device channels; for a
 * user channel the device channel's binding counts.
 */
enum mdm_state_cert {
	MDM_STATE_CERT_MATCH,	 /* bound to this hash */
	MDM_STATE_CERT_UNBOUND,	 /* nothing bound, hash bound nowhere */
	MDM_STATE_CERT_MISMATCH, /* bound to another hash; hash bound nowhere
				    (a renewed identity: re-bind it if its
				    chain checks out) */
	MDM_STATE_CERT_OTHER,	 /* hash is bound to another enrollment */
	MDM_STATE_CERT_UNKNOWN,	 /* no such enrollment */
};
int mdm_state_enroll_cert_check(struct mdm_state *st, const char *id,
    const char *cert_hash, enum mdm_state_cert *out, struct mdm_err *e);
/* Binds hash to id's device channel; MDM_E_EXISTS if bound elsewhere. */
int mdm_state_enroll_cert_bind(struct mdm_state *st, const char *id,
    const char *cert_hash, struct mdm_err *e);
/*
 * A renewed identity: re-binds id's device channel to cert_hash when our
 * CA issued that certificate, unrevoked, from a RenewalReq signed with the
 * certificate bound now (certificates.renewed_from).  MDM_E_PERM when it
 * did not; MDM_E_EXISTS when cert_hash is bound elsewhere.
 */
int mdm_state_enroll_cert_renew(struct mdm_state *st, const char *id,
    const char *cert_hash, struct mdm_err *e);
/* 1 when our CA has revoked the certificate cert_hash, else 0. */
int mdm_state_enroll_cert_revoked(struct mdm_state *st, const char *cert_hash,
    struct mdm_err *e);
/* The device enrollment hash is bound to, into out; MDM_E_NOINPUT if none. */
int mdm_state_enroll_by_cert(struct mdm_state *st, const char *cert_hash,
    char *out, size_t outlen, struct mdm_err *e);

/* What mdm-push records after a push to id. */
int mdm_state_enroll_push_result(struct mdm_state *st, const char *id,
    int64_t at, int http_status, const char *reason, int token_dead,
    struct mdm_err *e);

struct mdm_state_enrollment {
	const char *id, *type, *device_id, *udid, *user_id, *user_short_name;
	const char *user_long_name, *serial_number, *os_version, *product_name;
	const char *device_name, *model, *topic, *push_token, *push_magic;
	const char *cert_hash, *last_push_reason;	/* NULL when unset */
	const unsigned char *unlock_token;		/* NULL when none */
	size_t unlock_token_len;
	int enabled, awaiting_configuration, token_dead, has_bootstrap_token;
	int64_t token_update_tally, last_seen_at, last_push_at;
	int64_t last_push_status, created_at, updated_at; /* 0 when unset */
	int64_t pending;		/* pending commands */
	void *mem;			/* owned by _get; NULL in _foreach */
};

/*
 * Looks key up (see above).  The strings in out are owned by out: free
 * them with mdm_state_enrollment_release.
 */
int mdm_state_enroll_get(struct mdm_state *st, const char *key,
    struct mdm_state_enrollment *out, struct mdm_err *e);
void mdm_state_enrollment_release(struct mdm_state_enrollment *en);

struct mdm_state_enroll_filter {
	int pending;		/* only enrollments with pending commands */
	int enabled;		/* only enabled ones with a live push token */
	int64_t seen_before;	/* only those last seen before (or never); 0: any */
	/*
	 * Keyset paging: only ids after this one (borrowed; NULL: from
	 * the first), at most limit of them (0: all).
	 */
	const char *after_id;
	int64_t limit;
};
/*
 * Calls fn for each enrollment passing f (NULL: all), by id.  The row is
 * borrowed for the call only; fn must not use st.  fn returns 0 to go
 * on or -1 with e filled to stop.
 */
int mdm_state_enroll_foreach(struct mdm_state *st,
    const struct mdm_state_enroll_filter *f,
    int (*fn)(const struct mdm_state_enrollment *en, void *arg,
    struct mdm_err *e), void *arg, struct mdm_err *e);

/* ---- enqueue ---- */

enum mdm_state_enqueue_outcome {
	MDM_STATE_ENQ_QUEUED,	 /* a new queue row */
	MDM_STATE_ENQ_DUPLICATE, /* it already had this command (or the id
				    was given twice) */
	MDM_STATE_ENQ_UNKNOWN,	 /* no such enrollment */
	MDM_STATE_ENQ_AMBIGUOUS, /* a serial number of several enrollments */
};

struct mdm_state_enqueue_stats {
	size_t queued, duplicate, unknown, superseded, disabled;
};

enum {
	/* Queue for the known ids and report the others, instead of
	   queuing nothing when any id is unknown. */
	MDM_STATE_ENQ_SKIP_UNKNOWN = 1,
};

/*
 * Called once per id after its transaction committed (so a slow reader
 * of the output never holds the database lock): given is the id as
 * passed, enrollment_id what it resolved to (NULL if it did not).
 * Return 0, or -1 with e filled to stop (what committed stays).
 */
typedef int mdm_state_enqueue_fn(const char *given, const char *enrollment_id,
    enum mdm_state_enqueue_outcome outcome, void *arg, struct mdm_err *e);

/*
 * Queues cmd for the n enrollments keys[].  All keys are resolved first,
 * without writing: if any is unknown or ambiguous, fn hears about each
 * such key and, without MDM_STATE_ENQ_SKIP_UNKNOWN, nothing is queued and
 * the call fails with MDM_E_NOINPUT.  Then the payload is stored (or
 * found), the command row made, and queue rows are added
 * MDM_STATE_QUEUE_CHUNK at a time.  An InstallProfile or RemoveProfile
 * cancels, as 'superseded', a pending InstallProfile or RemoveProfile
 * with the same payload_identifier for the same enrollment.
 *
 * cmd->uuid may already exist only with the same payload (a command sent
 * to more enrollments later); otherwise MDM_E_EXISTS.  A failure part-way
 * leaves the command queued for the enrollments whose chunks committed:
 * the message says how many.  stats (may be NULL) is filled in any case;
 * fn may be NULL.
 */
int mdm_state_queue_enqueue(struct mdm_state *st,
    const struct mdm_queue_cmd *cmd, const char *const *keys, size_t n,
    unsigned flags, mdm_state_enqueue_fn *fn, void *arg,
    struct mdm_state_enqueue_stats *stats, struct mdm_err *e);

/* ---- the device session ---- */

enum mdm_state_report_outcome {
	MDM_STATE_REP_IDLE,	   /* Idle: a new session */
	MDM_STATE_REP_RECORDED,	   /* result stored, command dequeued */
	MDM_STATE_REP_NOT_NOW,	   /* kept and counted; offered again next session */
	MDM_STATE_REP_UNKNOWN,	   /* no such command for this enrollment: ignored */
	MDM_STATE_REP_UNPARSEABLE, /* stored raw, marked; its command (the one
				      named, else the one last offered) dequeued */
	MDM_STATE_REP_ORPHAN,	   /* unparseable and matched to no command:
				      stored raw for inspection */
};

struct mdm_state_delivery {
	enum mdm_state_report_outcome outcome;
	char result_uuid[MDM_QUEUE_UUID_MAX + 1]; /* the command the report
						     was matched to, or "" */
	/* The command to answer with; body.len == 0: answer with an empty body. */
	char uuid[MDM_QUEUE_UUID_MAX + 1];
	char request_type[MDM_QUEUE_TYPE_MAX + 1];
	struct mdm_buf body;
};
void mdm_state_delivery_init(struct mdm_state_delivery *d);
void mdm_state_delivery_release(struct mdm_state_delivery *d);

/*
 * One step of a device session: records rep (raw is the body as received,
 * stored with results), then picks the next command: the oldest pending
 * one not offered in this session.  rep->ident.id names the enrollment
 * (MDM_E_NOINPUT if unknown).  An Acknowledged, Error, CommandFormatError
 * or unparseable report dequeues its command and stores the result; a
 * NotNow counts; a result for a command this enrollment does not have is
 * ignored.  The answer is the next command or an empty body, in out
 * (initialised by the caller; its body is reset first).
 */
int mdm_state_queue_report(struct mdm_state *st,
    const struct mdm_queue_report *rep, const void *raw, size_t raw_len,
    struct mdm_state_delivery *out, struct mdm_err *e);

/* ---- inspection and upkeep ---- */

/* Queue row statuses, as bits for filters. */
enum {
	MDM_STATE_Q_PENDING = 1 << 0,
	MDM_STATE_Q_ACKNOWLEDGED = 1 << 1,
	MDM_STATE_Q_ERROR = 1 << 2,
	MDM_STATE_Q_FORMAT_ERROR = 1 << 3,
	MDM_STATE_Q_UNPARSEABLE = 1 << 4,
	MDM_STATE_Q_CANCELLED = 1 << 5,
	MDM_STATE_Q_SUPERSEDED = 1 << 6,
	MDM_STATE_Q_FINISHED = 0x7e,	/* all but pending */
};
/* "pending", "acknowledged", ...: the bit, or -1. */
int mdm_state_qstatus_parse(const char *name);

struct mdm_state_queue_row {
	const char *enrollment_id, *command_uuid, *request_type, *status;
	int64_t not_now_count, not_now_at, sent_at, created_at, updated_at;
};
struct mdm_state_queue_filter {
	const char *key;		/* enrollment key; NULL: all */
	const char *command_uuid;	/* NULL: all */
	unsigned statuses;		/* 0: pending only */
};
/*
 * Calls fn for each queue row passing f, oldest first.  Borrowed rows,
 * fn must not use st, as in mdm_state_enroll_foreach.  An unknown key or
 * command is MDM_E_NOINPUT.
 */
int mdm_state_queue_foreach(struct mdm_state *st,
    const struct mdm_state_queue_filter *f,
    int (*fn)(const struct mdm_state_queue_row *row, void *arg,
    struct mdm_err *e), void *arg, struct mdm_err *e);

struct mdm_state_result_row {
	const char *enrollment_id;
	const char *command_uuid;	/* NULL: matched to no command */
	const char *request_type;	/* NULL likewise */
	const char *status;		/* acknowledged, error, format_error,
					   unparseable */
	const char *error_chain;	/* JSON array, or NULL */
	const unsigned char *raw;
	size_t raw_len;
	int64_t received_at;
};
/* Results, oldest first; key and command_uuid filter as above. */
int mdm_state_queue_results_foreach(struct mdm_state *st, const char *key,
    const char *command_uuid,
    int (*fn)(const struct mdm_state_result_row *row, void *arg,
    struct mdm_err *e), void *arg, struct mdm_err *e);

/*
 * Cancels the pending rows of command uuid ('cancelled'); *n (may be NULL)
 * says how many.  Unknown uuid: MDM_E_NOINPUT.
 */
int mdm_state_queue_cancel(struct mdm_state *st, const char *uuid,
    int64_t *n, struct mdm_err *e);
/* Cancels every pending command of the enrollment key (only that one). */
int mdm_state_queue_clear(struct mdm_state *st, const char *key, int64_t *n,
    struct mdm_err *e);

struct mdm_state_purge {
	int64_t older_than;	/* seconds; < 0: MDM_STATE_RETENTION */
	unsigned statuses;	/* 0: every finished status (never pending) */
	int vacuum;		/* VACUUM afterwards (see mdm_state_queue_purge) */
};
struct mdm_state_purge_stats {
	int64_t queue_rows, results, commands, payloads;
	int64_t bytes_freed;	/* file size given back by vacuuming */
};
/*
 * Deletes queue rows whose status is in p->statuses and that finished
 * (pending: were queued) more than older_than seconds ago, results
 * received that long ago (all of them when statuses is 0; else those
 * with a selected status), then commands left with no queue row and no
 * result, and payloads left with no command.  Deletes run in batches of
 * MDM_STATE_QUEUE_CHUNK rows, each its own transaction.
 *
 * Freed pages are reused by later inserts, so the file stops growing at
 * the size its retention window needs.  To give space back to the file
 * system: when the database is in auto_vacuum=INCREMENTAL mode, purge
 * runs PRAGMA incremental_vacuum; with p->vacuum it runs VACUUM, first
 * switching the database to incremental mode (which only VACUUM can do
 * for a database that has tables; VACUUM rewrites the file and holds
 * the write lock meanwhile).
 */
int mdm_state_queue_purge(struct mdm_state *st, const struct mdm_state_purge *p,
    struct mdm_state_purge_stats *out, struct mdm_err *e);

struct mdm_state_queue_counts {
	int64_t pending, not_now, acknowledged, error, format_error;
	int64_t unparseable, cancelled, superseded;
	int64_t commands, payloads, results, enrollments;
	int64_t pushable;	/* enrollments the "enabled" filter passes */
};
/* Row counts, for metrics and tests. */
int mdm_state_queue_counts(struct mdm_state *st,
    struct mdm_state_queue_counts *out, struct mdm_err *e);

#endif
