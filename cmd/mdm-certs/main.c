#include "certs.h"

int
main(int argc, char **argv)
{
	return mdm_cli_main(&mdm_certs_tool, argc, argv);
}
