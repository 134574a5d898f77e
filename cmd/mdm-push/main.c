#include "push_tool.h"

int
main(int argc, char **argv)
{
	return mdm_cli_main(&mdm_push_tool, argc, argv);
}
