#include "scep_tool.h"

int
main(int argc, char **argv)
{
	return mdm_cli_main(&mdm_scep_tool, argc, argv);
}
