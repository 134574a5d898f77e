#include "devsim.h"

int
main(int argc, char **argv)
{
	return mdm_cli_main(&mdm_devsim_tool, argc, argv);
}
