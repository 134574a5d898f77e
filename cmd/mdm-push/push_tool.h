/*
 * mdm-push: wakes devices through APNs.  It picks enrollments from the
 * state, groups them by topic, pushes each topic on its own thread with
 * libmdm's apns client, retries transient failures a bounded number of
 * times and stores each push's health on the enrollment.  main.c only
 * runs it.
 */
#ifndef MDM_PUSH_TOOL_H
#define MDM_PUSH_TOOL_H

#include "cli.h"

extern const struct mdm_cli_tool mdm_push_tool;

#endif
