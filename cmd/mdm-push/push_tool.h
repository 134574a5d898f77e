/*
 * mdm-push: wakes devices through APNs.  It parses the command line, picks
 * the enrollments (ids, --pending or --stale) and hands them to libmdm's
 * push module, which groups them by topic, pushes, retries and stores
 * each push's health; this file prints one record per id and maps the
 * outcome to the exit status.  main.c only runs it.
 */
#ifndef MDM_PUSH_TOOL_H
#define MDM_PUSH_TOOL_H

#include "cli.h"

extern const struct mdm_cli_tool mdm_push_tool;

#endif
