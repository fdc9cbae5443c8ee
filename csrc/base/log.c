/* Log line formatting (see log.h). */
#include "log.h"

#include <stdio.h>

size_t log_format(char *line, size_t size, const char *prefix, const char *fmt, va_list ap)
{
	if (size < 2)
		return 0;
	int p = snprintf(line, size - 1, "%s: ", prefix);
	size_t n = p < 0 ? 0 : (size_t)p < size - 1 ? (size_t)p : size - 2;
	int m = vsnprintf(line + n, size - 1 - n, fmt, ap);
	n += m < 0 ? 0 : (size_t)m < size - 1 - n ? (size_t)m : size - 2 - n;
	line[n++] = '\n';
	return n;
}
