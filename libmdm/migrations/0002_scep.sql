-- 0002_scep: what the SCEP CA needs beyond the certificates table.
--
-- One-time challenges are stored as the lowercase hex SHA-256 of the
-- challenge, never the challenge itself: a copy of mdm.db must not let
-- anyone enrol.  A challenge is deleted in the same transaction that
-- records the certificate it paid for, so it works exactly once.

CREATE TABLE scep_challenges (
	hash		TEXT NOT NULL PRIMARY KEY
			CHECK (length(hash) = 64
			    AND hash NOT GLOB '*[^0-9a-f]*'),
	expires_at	INTEGER NOT NULL,
	created_at	INTEGER NOT NULL
) STRICT;

-- Expired challenges are swept when a new one is made.
CREATE INDEX scep_challenges_expires_at ON scep_challenges (expires_at);

-- The SCEP transactionID a certificate was issued under: CertPoll asks by
-- it, and a retried PKCSReq (same transaction, same key) gets the
-- certificate already issued instead of a second one.  NULL for
-- certificates that did not come through SCEP.
ALTER TABLE certificates ADD COLUMN transaction_id TEXT
	CHECK (transaction_id IS NULL
	    OR length(transaction_id) BETWEEN 1 AND 255);

CREATE INDEX certificates_transaction_id ON certificates (transaction_id)
	WHERE transaction_id IS NOT NULL;
