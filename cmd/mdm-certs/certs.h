/*
 * mdm-certs: every certificate and key of an MDM server in one state
 * directory: the CA that issues device identities, the TLS server identity,
 * the profile-signing identity, APNs push certificates by topic and DEP
 * token keypairs, and the enrollment profile built from them.  The
 * subcommands live in certs.c; main.c only hands argv to the shared CLI
 * driver.
 */
#ifndef MDM_CERTS_H
#define MDM_CERTS_H

#include "cli.h"

extern const struct mdm_cli_tool mdm_certs_tool;

#endif
