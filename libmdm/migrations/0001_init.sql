-- 0001_init: certificates the SCEP CA issued (device identities).
-- Later tables (enrollments, the command queue, DEP, ...) come in their own
-- migrations.  STRICT: a value of the wrong type is an error, not a silent
-- conversion.  revoked_at is NULL while the certificate is valid.

CREATE TABLE certificates (
	serial		TEXT NOT NULL PRIMARY KEY
			CHECK (length(serial) BETWEEN 1 AND 64
			    AND serial NOT GLOB '*[^0-9A-F]*'),
	subject		TEXT NOT NULL,
	sha256		TEXT NOT NULL UNIQUE
			CHECK (length(sha256) = 64
			    AND sha256 NOT GLOB '*[^0-9a-f]*'),
	kind		TEXT NOT NULL CHECK (kind <> ''),
	not_before	INTEGER NOT NULL,
	not_after	INTEGER NOT NULL,
	revoked_at	INTEGER,
	der		BLOB NOT NULL,
	created_at	INTEGER NOT NULL,
	CHECK (not_before <= not_after)
) STRICT;

-- `mdm-certs expiring` and `list` walk certificates by expiry.
CREATE INDEX certificates_not_after ON certificates (not_after);
