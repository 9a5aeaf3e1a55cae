/* What src/device.c needs of the CUDA backend to select a device. */
#ifndef WCM_CUDA_SELECT_H
#define WCM_CUDA_SELECT_H

#include <stddef.h>

/* The number of CUDA devices; 0 with the reason in why when there are none
 * or the driver cannot be used. */
int wcm_cuda_device_count(char *why, size_t size);
/* The device that contexts without a variant of their own use. */
void wcm_cuda_set_default_device(int device);

#endif
