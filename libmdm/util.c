#include <string.h>

#include "mdm_int.h"

void
mdm_strip_newlines(char *s)
{
	for (; *s != '\0'; s++)
		if (*s == '\n' || *s == '\r')
			*s = ' ';
}
