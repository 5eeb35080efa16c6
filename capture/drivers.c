/*
 * drivers.c - the table of device kinds. A session finds its driver here by
 * the device's kind; everything protocol-specific is behind the row.
 */
#include <string.h>

#include "capture.h"

const struct driver *drivers[DRIVERS_MAX] = {
	&drv_nanokvm,
	&drv_rfb,
	NULL,
};

const struct driver *driver_find(const char *kind)
{
	for (int i = 0; i < DRIVERS_MAX && drivers[i] != NULL; i++)
		if (strcmp(drivers[i]->kind, kind) == 0)
			return drivers[i];
	return NULL;
}
