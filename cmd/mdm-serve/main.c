#include "serve_tool.h"

int
main(int argc, char **argv)
{
	return mdm_cli_main(&mdm_serve_tool, argc, argv);
}
