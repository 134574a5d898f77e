#include "queue_tool.h"

int
main(int argc, char **argv)
{
	return mdm_cli_main(&mdm_queue_tool, argc, argv);
}
