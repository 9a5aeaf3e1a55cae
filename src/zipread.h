/* wcm — read-only view of a zip archive held in memory (internal).
 *
 * Parses the end-of-central-directory record (zip64 too) and the central
 * directory; every offset and size is checked against the buffer. Only
 * STORED (uncompressed, unencrypted) entries can be read; their CRC-32 is
 * verified unless the library is built for fuzzing
 * (FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION), where checksums would hide
 * everything behind them from the fuzzer. */
#ifndef WCM_ZIPREAD_H
#define WCM_ZIPREAD_H

#include "loader_budget.h"
#include "wcm/common.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *name;              /* NUL-terminated copy of the entry name */
    uint16_t method;         /* 0 = stored, 8 = deflate, ... */
    uint16_t flags;
    uint32_t crc32;
    uint64_t compressed_size, size;
    uint64_t local_header_offset;
    uint64_t data_offset;    /* where the entry's bytes start (after its local header) */
    int verified;            /* CRC-32 already checked */
} wcm_zip_entry;

typedef struct {
    const unsigned char *buf; /* not owned */
    size_t len;
    wcm_zip_entry *entries;   /* sorted by name, names unique */
    size_t count;
} wcm_zip;

/* Returns WCM_ERR_FORMAT with a message if `buf` is not a readable zip:
 * every entry's local header must lie in the file and no two entries may
 * overlap. The directory's memory is charged to `budget` (NULL: unlimited). */
int wcm_zip_open(wcm_zip *z, const unsigned char *buf, size_t len, wcm_mem_budget *budget, wcm_error *err);
void wcm_zip_close(wcm_zip *z);

/* Exact-name lookup (binary search); NULL when absent. */
wcm_zip_entry *wcm_zip_find(const wcm_zip *z, const char *name);

/* Points *data at the entry's bytes inside the buffer (no copy). Refuses
 * compressed or encrypted entries and checksum mismatches; the checksum is
 * computed on the first call only. */
int wcm_zip_entry_data(const wcm_zip *z, wcm_zip_entry *e, const unsigned char **data, size_t *len, wcm_error *err);

uint32_t wcm_crc32(const unsigned char *data, size_t len);

#endif
