/*
 * mdm-serve: the tool's command line, over libmdm's service (what a
 * request means) and http_server (the transport).  main.c only runs it.
 */
#ifndef MDM_SERVE_TOOL_H
#define MDM_SERVE_TOOL_H

#include "cli.h"

extern const struct mdm_cli_tool mdm_serve_tool;

#endif
