/*
 * mdm-scep: the SCEP certificate authority of the state directory as a
 * standalone HTTP server (serve), and the commands that administer it:
 * one-time challenges, revocation, the CRL and the list of issued
 * certificates.  The protocol lives in libmdm/scep.c and the HTTP server
 * in libmdm/http_server.c; this file only wires them to the command line.
 * main.c hands argv to the shared CLI driver.
 */
#ifndef MDM_SCEP_TOOL_H
#define MDM_SCEP_TOOL_H

#include "cli.h"

/* Where `mdm-scep serve` listens unless --listen says otherwise. */
#define MDM_SCEP_DEFAULT_LISTEN "127.0.0.1:9001"

extern const struct mdm_cli_tool mdm_scep_tool;

#endif
