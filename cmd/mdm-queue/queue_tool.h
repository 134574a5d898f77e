/*
 * mdm-queue: build, enqueue, inspect, cancel and purge MDM commands, and
 * read their results, straight from the state database while mdm-serve
 * serves it.  The subcommands live in queue_tool.c; main.c only hands argv
 * to the shared CLI driver.  All SQL stays behind libmdm/state_queue.h.
 */
#ifndef MDM_QUEUE_TOOL_H
#define MDM_QUEUE_TOOL_H

#include "cli.h"

extern const struct mdm_cli_tool mdm_queue_tool;

#endif
