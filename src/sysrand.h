/* wcm — unpredictable 64-bit values from the system (internal): temporary
 * file names and hash-table keys. */
#ifndef WCM_SYSRAND_H
#define WCM_SYSRAND_H

#include <stdint.h>

uint64_t wcm_system_random(void);

#endif
