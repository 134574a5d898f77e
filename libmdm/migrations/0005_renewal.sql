-- 0005_renewal: which certificate a renewed one replaces.
--
-- A device that renews its identity over SCEP signs the RenewalReq with
-- the certificate it holds; the CA records that certificate's SHA-256
-- here.  mdm-serve then knows a new certificate presented for an
-- enrollment is the same device's renewed identity, and re-binds it
-- without waiting for an Authenticate that a renewal does not send;
-- a certificate merely issued by the same CA is never enough.

ALTER TABLE certificates ADD COLUMN renewed_from TEXT
	CHECK (renewed_from IS NULL
	    OR (length(renewed_from) = 64
	    AND renewed_from NOT GLOB '*[^0-9a-f]*'));
