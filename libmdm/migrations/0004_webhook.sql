-- 0004_webhook: the webhook outbox.
--
-- MicroMDM and NanoMDM POST each event once and forget it (anchors.md,
-- row 20 and item 23): a subscriber that is down or answers 404 loses the
-- event for good.  Here mdm-serve writes every event to this table first,
-- in its own short transaction, and a delivery loop POSTs it later, with
-- retries, so a subscriber that comes back gets everything it missed:
--  - id is the order events were written in; an event waits while an
--    older undelivered event of the same device (okey) is not yet
--    delivered nor dead, so one device's events arrive in order, while a
--    device whose event keeps failing does not hold up the others;
--  - a process that delivers first leases its batch (claimed_until,
--    claimed_by) in one BEGIN IMMEDIATE transaction, so two processes on
--    one state directory never send the same event at the same time, and
--    a lease left by a process that died simply runs out;
--  - a failed attempt pushes next_attempt_at back (exponential backoff
--    with jitter); after too many attempts or too long the event is given
--    up (dead_at) but kept, so it can be inspected and resent by hand;
--  - delivered and dead rows carry the time they ended, indexed, so
--    retention deletes them in bounded batches.
-- Times in this table are unix milliseconds, not seconds as elsewhere:
-- backoff starts at one second, and its jitter needs finer steps.

CREATE TABLE webhook_outbox (
	id		INTEGER PRIMARY KEY,
	topic		TEXT NOT NULL
			CHECK (length(topic) BETWEEN 5 AND 64
			    AND topic GLOB 'mdm.*'),
	-- The event_id inside body, for inspection and for receivers that
	-- drop duplicates (delivery is at least once).
	event_id	TEXT NOT NULL CHECK (length(event_id) BETWEEN 1 AND 64),
	-- Ordering key: the device channel's enrollment id, so a device's
	-- events and its user channels' events go out in the order written.
	okey		TEXT NOT NULL CHECK (length(okey) <= 511),
	-- The JSON exactly as it is POSTed (and signed).
	body		BLOB NOT NULL,
	created_at	INTEGER NOT NULL,
	attempts	INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
	next_attempt_at	INTEGER NOT NULL,
	-- 0 when no process holds the event.
	claimed_until	INTEGER NOT NULL DEFAULT 0,
	claimed_by	TEXT CHECK (claimed_by IS NULL OR length(claimed_by) <= 128),
	-- The HTTP status of the last attempt, 0 when no answer came
	-- (refused, timed out, reset); NULL before the first attempt.
	last_status	INTEGER CHECK (last_status IS NULL OR last_status = 0
			    OR last_status BETWEEN 100 AND 599),
	last_error	TEXT,
	delivered_at	INTEGER,
	-- Given up: set instead of delivered_at, never both.
	dead_at		INTEGER,
	CHECK (delivered_at IS NULL OR dead_at IS NULL)
) STRICT;

-- The due events, oldest first: undelivered rows only, so however many
-- delivered rows retention keeps, the delivery loop never reads them.
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_at, id)
	WHERE delivered_at IS NULL AND dead_at IS NULL;
-- "Is an older event of this device still undelivered?"
CREATE INDEX webhook_outbox_okey ON webhook_outbox (okey, id)
	WHERE delivered_at IS NULL AND dead_at IS NULL;
-- Retention.
CREATE INDEX webhook_outbox_delivered ON webhook_outbox (delivered_at)
	WHERE delivered_at IS NOT NULL;
CREATE INDEX webhook_outbox_dead ON webhook_outbox (dead_at)
	WHERE dead_at IS NOT NULL;
