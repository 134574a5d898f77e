-- 0003_queue: enrollments, the command queue and command results.
--
-- Shaped by what went wrong elsewhere (anchors.md section 3): MicroMDM kept
-- each device's whole queue as one blob (races, a 22 GB database), Fleet's
-- queue table grew without bound and its check-ins fell back to full
-- scans, and an undecodable result blocked a queue for good.  So:
--  - one row per queued command per enrollment, written in short
--    transactions; a command's plist is stored once, in command_payloads,
--    keyed by its SHA-256, however many enrollments get it;
--  - queue rows carry the integer keys of their enrollment and command, not
--    the 40-80 byte ids, so 100,000 of them stay a few megabytes;
--  - the next command of an enrollment comes from a partial covering index
--    that holds pending rows only, so finished rows cost nothing there;
--  - finished rows and results carry the time they finished, indexed, so
--    `mdm-queue purge` drops them in bounded batches;
--  - a result that cannot be parsed is stored raw with status
--    'unparseable' and its command leaves the queue like any other.
-- All timestamps are unix seconds.  STRICT tables throughout.

CREATE TABLE enrollments (
	eid		INTEGER PRIMARY KEY,
	-- The enrollment id as NanoMDM normalises it: UDID, UDID:UserID,
	-- UDID:UserShortName, EnrollmentID, EnrollmentID:EnrollmentUserID.
	id		TEXT NOT NULL UNIQUE
			CHECK (length(id) BETWEEN 1 AND 511),
	type		TEXT NOT NULL
			CHECK (type IN ('device', 'user', 'user-enrollment-device',
			    'user-enrollment', 'shared-ipad')),
	-- User channels name the device channel they ride on; device
	-- channels have none.
	device_id	TEXT REFERENCES enrollments (id),
	udid		TEXT,
	user_id		TEXT,		-- UserID or EnrollmentUserID
	user_short_name	TEXT,
	user_long_name	TEXT,
	serial_number	TEXT,
	os_version	TEXT,
	build_version	TEXT,
	product_name	TEXT,
	device_name	TEXT,
	model		TEXT,
	topic		TEXT,
	push_token	TEXT CHECK (push_token IS NULL
			    OR (length(push_token) BETWEEN 2 AND 512
			    AND push_token NOT GLOB '*[^0-9a-f]*')),
	push_magic	TEXT,
	unlock_token	BLOB,
	-- As mdm-serve hands it over: it encrypts the token before storing.
	bootstrap_token	BLOB,
	-- SHA-256 (lowercase hex) of the identity certificate bound on
	-- Authenticate; only device channels carry one, and a certificate
	-- belongs to one enrollment.
	cert_hash	TEXT UNIQUE CHECK (cert_hash IS NULL
			    OR (length(cert_hash) = 64
			    AND cert_hash NOT GLOB '*[^0-9a-f]*')),
	enabled		INTEGER NOT NULL DEFAULT 0 CHECK (enabled IN (0, 1)),
	token_update_tally INTEGER NOT NULL DEFAULT 0,
	awaiting_configuration INTEGER NOT NULL DEFAULT 0
			CHECK (awaiting_configuration IN (0, 1)),
	-- Written at most every few minutes, so an Idle check-in with an
	-- empty queue writes nothing.
	last_seen_at	INTEGER,
	-- Push health, kept by mdm-push.
	last_push_at	INTEGER,
	last_push_status INTEGER,
	last_push_reason TEXT,
	token_dead	INTEGER NOT NULL DEFAULT 0 CHECK (token_dead IN (0, 1)),
	created_at	INTEGER NOT NULL,
	updated_at	INTEGER NOT NULL,
	CHECK ((device_id IS NULL) = (type IN ('device', 'user-enrollment-device')))
) STRICT;

CREATE INDEX enrollments_device_id ON enrollments (device_id)
	WHERE device_id IS NOT NULL;
-- mdm-queue takes UDIDs and serial numbers as typed, in any case.
CREATE INDEX enrollments_udid ON enrollments (udid COLLATE NOCASE)
	WHERE udid IS NOT NULL;
CREATE INDEX enrollments_serial ON enrollments (serial_number COLLATE NOCASE)
	WHERE serial_number IS NOT NULL;
CREATE INDEX enrollments_last_seen ON enrollments (last_seen_at);

-- A command's plist without its CommandUUID (the server puts the UUID back
-- when it sends it), as the XML between the top-level <dict> tags.
CREATE TABLE command_payloads (
	pid		INTEGER PRIMARY KEY,
	sha256		BLOB NOT NULL UNIQUE CHECK (length(sha256) = 32),
	body		BLOB NOT NULL
) STRICT;

CREATE TABLE commands (
	cid		INTEGER PRIMARY KEY,
	uuid		TEXT NOT NULL UNIQUE
			CHECK (length(uuid) BETWEEN 1 AND 64),
	request_type	TEXT NOT NULL
			CHECK (length(request_type) BETWEEN 1 AND 64),
	payload		INTEGER NOT NULL REFERENCES command_payloads (pid),
	-- InstallProfile and RemoveProfile: the profile's PayloadIdentifier,
	-- so a newer one supersedes a still-queued older one.
	payload_identifier TEXT,
	created_at	INTEGER NOT NULL
) STRICT;

CREATE INDEX commands_payload ON commands (payload);
CREATE INDEX commands_payload_identifier ON commands (payload_identifier)
	WHERE payload_identifier IS NOT NULL;

CREATE TABLE queue (
	enrollment	INTEGER NOT NULL
			REFERENCES enrollments (eid) ON DELETE CASCADE,
	command		INTEGER NOT NULL
			REFERENCES commands (cid) ON DELETE CASCADE,
	status		TEXT NOT NULL DEFAULT 'pending'
			CHECK (status IN ('pending', 'acknowledged', 'error',
			    'format_error', 'unparseable', 'cancelled',
			    'superseded')),
	-- 1 once the command was offered in the device's current session
	-- (which an Idle report starts): it is not offered again before the
	-- next session, whatever the device answered, so a NotNow or an
	-- answer we cannot match never loops.
	offered		INTEGER NOT NULL DEFAULT 0 CHECK (offered IN (0, 1)),
	not_now_count	INTEGER NOT NULL DEFAULT 0,
	not_now_at	INTEGER,
	sent_at		INTEGER,
	created_at	INTEGER NOT NULL,
	-- When the status last changed: what retention goes by.
	updated_at	INTEGER NOT NULL,
	PRIMARY KEY (enrollment, command)
) STRICT, WITHOUT ROWID;

-- The next command of an enrollment, and whether it has any: pending rows
-- only, oldest first, answered from the index alone.
CREATE INDEX queue_pending ON queue (enrollment, offered, created_at, command)
	WHERE status = 'pending';
-- Cancel by UUID, results by command, and the foreign key from commands.
CREATE INDEX queue_command ON queue (command, status);
-- Retention.
CREATE INDEX queue_finished ON queue (updated_at) WHERE status <> 'pending';

-- One result per command and enrollment (a resent result replaces the
-- first); command is NULL for a report that could not be parsed nor
-- matched to any command.
CREATE TABLE results (
	rid		INTEGER PRIMARY KEY,
	enrollment	INTEGER NOT NULL
			REFERENCES enrollments (eid) ON DELETE CASCADE,
	command		INTEGER REFERENCES commands (cid) ON DELETE CASCADE,
	status		TEXT NOT NULL
			CHECK (status IN ('acknowledged', 'error', 'format_error',
			    'unparseable')),
	error_chain	TEXT,		-- the ErrorChain as a JSON array
	raw		BLOB NOT NULL,	-- the report as the device sent it
	received_at	INTEGER NOT NULL,
	UNIQUE (enrollment, command)
) STRICT;

CREATE INDEX results_command ON results (command) WHERE command IS NOT NULL;
CREATE INDEX results_received_at ON results (received_at);
