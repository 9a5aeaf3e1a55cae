/* Zip archive reader for checkpoints: central directory (with zip64) and
 * stored entries only. Layout reference: PKWARE APPNOTE.TXT sections 4.3-4.5. */
#include "zipread.h"
#include "loader_budget.h"

#include <stdlib.h>
#include <string.h>

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_EOCD64_LOCATOR 0x07064b50u
#define EOCD_SIZE 22
#define EOCD64_SIZE 56
#define LOCATOR_SIZE 20
#define CENTRAL_SIZE 46
#define LOCAL_SIZE 30
#define ZIP64_EXTRA_ID 0x0001

static uint16_t rd16(const unsigned char *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t rd32(const unsigned char *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static uint64_t rd64(const unsigned char *p) { return (uint64_t)rd32(p) | ((uint64_t)rd32(p + 4) << 32); }

/* True when [offset, offset+size) lies inside a buffer of `len` bytes. */
static int in_bounds(uint64_t offset, uint64_t size, size_t len) {
    return offset <= (uint64_t)len && size <= (uint64_t)len - offset;
}

/* Half-byte table: constant data, so no initialisation race between threads. */
uint32_t wcm_crc32(const unsigned char *data, size_t len) {
    static const uint32_t nibble[16] = {
        0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u, 0x4DB26158u, 0x5005713Cu,
        0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu, 0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu};
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < len; i++) {
        crc ^= data[i];
        crc = nibble[crc & 15] ^ (crc >> 4);
        crc = nibble[crc & 15] ^ (crc >> 4);
    }
    return crc ^ 0xFFFFFFFFu;
}

typedef struct {
    uint64_t count, cd_size, cd_offset;
} central_dir_info;

/* The EOCD record is the last 22 bytes plus a comment of up to 64 KiB, so
 * scan backwards over that window for its signature. */
static int find_eocd(const unsigned char *buf, size_t len, size_t *pos_out, wcm_error *err) {
    if (len < EOCD_SIZE) return wcm_fail(err, WCM_ERR_FORMAT, "not a zip archive (%zu bytes is too short)", len);
    size_t last = len - EOCD_SIZE;
    size_t first = last > 65535 ? last - 65535 : 0;
    for (size_t pos = last + 1; pos-- > first;) {
        if (rd32(buf + pos) == SIG_EOCD && pos + EOCD_SIZE + rd16(buf + pos + 20) <= len) {
            *pos_out = pos;
            return WCM_OK;
        }
    }
    return wcm_fail(err, WCM_ERR_FORMAT, "not a zip archive (no end-of-central-directory record)");
}

static int read_directory_info(const unsigned char *buf, size_t len, central_dir_info *info, wcm_error *err) {
    size_t eocd = 0;
    int rc = find_eocd(buf, len, &eocd, err);
    if (rc) return rc;
    const unsigned char *e = buf + eocd;
    uint16_t disk = rd16(e + 4), cd_disk = rd16(e + 6);
    info->count = rd16(e + 10);
    info->cd_size = rd32(e + 12);
    info->cd_offset = rd32(e + 16);
    if (rd16(e + 8) != rd16(e + 10))
        return wcm_fail(err, WCM_ERR_FORMAT, "multi-volume zip archives are not supported");

    /* A zip64 locator right before the EOCD overrides the 16/32-bit fields. */
    if (eocd >= LOCATOR_SIZE && rd32(buf + eocd - LOCATOR_SIZE) == SIG_EOCD64_LOCATOR) {
        const unsigned char *loc = buf + eocd - LOCATOR_SIZE;
        uint64_t off64 = rd64(loc + 8);
        if (rd32(loc + 4) != 0 || rd32(loc + 16) > 1)
            return wcm_fail(err, WCM_ERR_FORMAT, "multi-volume zip archives are not supported");
        if (!in_bounds(off64, EOCD64_SIZE, len) || rd32(buf + off64) != SIG_EOCD64)
            return wcm_fail(err, WCM_ERR_FORMAT, "zip64 end-of-central-directory record missing or out of range");
        const unsigned char *z = buf + off64;
        if (rd32(z + 16) != 0 || rd32(z + 20) != 0 || rd64(z + 24) != rd64(z + 32))
            return wcm_fail(err, WCM_ERR_FORMAT, "multi-volume zip archives are not supported");
        info->count = rd64(z + 32);
        info->cd_size = rd64(z + 40);
        info->cd_offset = rd64(z + 48);
    } else if (disk != 0 || cd_disk != 0) {
        return wcm_fail(err, WCM_ERR_FORMAT, "multi-volume zip archives are not supported");
    }
    if (!in_bounds(info->cd_offset, info->cd_size, len))
        return wcm_fail(err, WCM_ERR_FORMAT, "zip central directory (offset %llu, %llu bytes) lies outside the %zu-byte file",
                        (unsigned long long)info->cd_offset, (unsigned long long)info->cd_size, len);
    if (info->count > info->cd_size / CENTRAL_SIZE)
        return wcm_fail(err, WCM_ERR_FORMAT, "zip directory claims %llu entries but has room for only %llu",
                        (unsigned long long)info->count, (unsigned long long)(info->cd_size / CENTRAL_SIZE));
    return WCM_OK;
}

/* Replace saturated 32-bit fields by their values in the zip64 extra field. */
static int apply_zip64_extra(wcm_zip_entry *ent, const unsigned char *extra, size_t extra_len, int need_disk,
                             wcm_error *err) {
    int need_size = ent->size == 0xFFFFFFFFu, need_csize = ent->compressed_size == 0xFFFFFFFFu;
    int need_offset = ent->local_header_offset == 0xFFFFFFFFu;
    if (!need_size && !need_csize && !need_offset && !need_disk) return WCM_OK;
    size_t pos = 0;
    while (extra_len - pos >= 4) {
        uint16_t id = rd16(extra + pos), size = rd16(extra + pos + 2);
        const unsigned char *field = extra + pos + 4;
        if (size > extra_len - pos - 4) break;
        if (id == ZIP64_EXTRA_ID) {
            size_t need = 8u * (size_t)(need_size + need_csize + need_offset) + 4u * (size_t)need_disk, at = 0;
            if (size < need) break;
            if (need_size) ent->size = rd64(field + at), at += 8;
            if (need_csize) ent->compressed_size = rd64(field + at), at += 8;
            if (need_offset) ent->local_header_offset = rd64(field + at), at += 8;
            if (need_disk && rd32(field + at) != 0)
                return wcm_fail(err, WCM_ERR_FORMAT, "multi-volume zip archives are not supported");
            return WCM_OK;
        }
        pos += 4 + (size_t)size;
    }
    return wcm_fail(err, WCM_ERR_FORMAT, "zip entry '%.200s' lacks the zip64 sizes it announces", ent->name);
}

static int compare_entries(const void *a, const void *b) {
    return strcmp(((const wcm_zip_entry *)a)->name, ((const wcm_zip_entry *)b)->name);
}

void wcm_zip_close(wcm_zip *z) {
    if (!z) return;
    for (size_t i = 0; i < z->count; i++) free(z->entries[i].name);
    free(z->entries);
    memset(z, 0, sizeof *z);
}

static int compare_data_starts(const void *a, const void *b) {
    const wcm_zip_entry *x = *(const wcm_zip_entry *const *)a, *y = *(const wcm_zip_entry *const *)b;
    return x->local_header_offset < y->local_header_offset ? -1 : x->local_header_offset > y->local_header_offset;
}

/* Locates every entry's data behind its local header and refuses archives
 * whose entries overlap (real archives never do): then each byte belongs to
 * at most one entry, and checksumming every entry once costs at most one
 * pass over the file. */
static int locate_entries(wcm_zip *z, wcm_error *err) {
    if (z->count == 0) return WCM_OK;
    wcm_zip_entry **order = malloc(z->count * sizeof *order);
    if (!order) return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
    int rc = WCM_OK;
    for (size_t i = 0; i < z->count && !rc; i++) {
        wcm_zip_entry *e = &z->entries[i];
        order[i] = e;
        if (!in_bounds(e->local_header_offset, LOCAL_SIZE, z->len) || rd32(z->buf + e->local_header_offset) != SIG_LOCAL) {
            rc = wcm_fail(err, WCM_ERR_FORMAT, "zip entry '%.200s': local header missing or out of range", e->name);
            break;
        }
        const unsigned char *h = z->buf + e->local_header_offset;
        e->data_offset = e->local_header_offset + LOCAL_SIZE + rd16(h + 26) + rd16(h + 28);
        if (!in_bounds(e->data_offset, e->compressed_size, z->len))
            rc = wcm_fail(err, WCM_ERR_FORMAT, "zip entry '%.200s' (%llu bytes) runs past the end of the file", e->name,
                          (unsigned long long)e->compressed_size);
    }
    if (!rc) qsort(order, z->count, sizeof *order, compare_data_starts);
    for (size_t i = 1; i < z->count && !rc; i++)
        if (order[i]->local_header_offset < order[i - 1]->data_offset + order[i - 1]->compressed_size)
            rc = wcm_fail(err, WCM_ERR_FORMAT, "zip entries '%.200s' and '%.200s' overlap", order[i - 1]->name, order[i]->name);
    free(order);
    return rc;
}

int wcm_zip_open(wcm_zip *z, const unsigned char *buf, size_t len, wcm_mem_budget *budget, wcm_error *err) {
    memset(z, 0, sizeof *z);
    central_dir_info info;
    int rc = read_directory_info(buf, len, &info, err);
    if (rc) return rc;
    z->buf = buf;
    z->len = len;
    if (info.count == 0) return WCM_OK;
    if (wcm_budget_take(budget, (size_t)info.count * (sizeof *z->entries + sizeof(wcm_zip_entry *))))
        return wcm_fail(err, WCM_ERR_FORMAT, "zip directory of %llu entries is too large for the file",
                        (unsigned long long)info.count);
    z->entries = calloc((size_t)info.count, sizeof *z->entries);
    if (!z->entries) return wcm_fail(err, WCM_ERR_NOMEM, "out of memory for %llu zip entries", (unsigned long long)info.count);

    const unsigned char *cd = buf + info.cd_offset;
    size_t pos = 0, cd_size = (size_t)info.cd_size;
    for (uint64_t i = 0; i < info.count; i++) {
        if (cd_size - pos < CENTRAL_SIZE || rd32(cd + pos) != SIG_CENTRAL) {
            rc = wcm_fail(err, WCM_ERR_FORMAT, "zip central directory entry %llu is malformed", (unsigned long long)i);
            goto fail;
        }
        const unsigned char *h = cd + pos;
        size_t name_len = rd16(h + 28), extra_len = rd16(h + 30), comment_len = rd16(h + 32);
        if (cd_size - pos - CENTRAL_SIZE < name_len + extra_len + comment_len) {
            rc = wcm_fail(err, WCM_ERR_FORMAT, "zip central directory entry %llu runs past the directory", (unsigned long long)i);
            goto fail;
        }
        const unsigned char *name = h + CENTRAL_SIZE;
        if (memchr(name, 0, name_len)) {
            rc = wcm_fail(err, WCM_ERR_FORMAT, "zip entry %llu has a NUL byte in its name", (unsigned long long)i);
            goto fail;
        }
        wcm_zip_entry *ent = &z->entries[z->count];
        if (wcm_budget_take(budget, name_len + 1)) {
            rc = wcm_fail(err, WCM_ERR_FORMAT, "zip directory is too large for the file");
            goto fail;
        }
        ent->name = malloc(name_len + 1);
        if (!ent->name) {
            rc = wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
            goto fail;
        }
        memcpy(ent->name, name, name_len);
        ent->name[name_len] = 0;
        z->count++;
        ent->flags = rd16(h + 8);
        ent->method = rd16(h + 10);
        ent->crc32 = rd32(h + 16);
        ent->compressed_size = rd32(h + 20);
        ent->size = rd32(h + 24);
        ent->local_header_offset = rd32(h + 42);
        rc = apply_zip64_extra(ent, name + name_len, extra_len, rd16(h + 34) == 0xFFFF, err);
        if (rc) goto fail;
        if (rd16(h + 34) != 0 && rd16(h + 34) != 0xFFFF) {
            rc = wcm_fail(err, WCM_ERR_FORMAT, "multi-volume zip archives are not supported");
            goto fail;
        }
        pos += CENTRAL_SIZE + name_len + extra_len + comment_len;
    }
    qsort(z->entries, z->count, sizeof *z->entries, compare_entries);
    for (size_t i = 1; i < z->count; i++) {
        if (strcmp(z->entries[i - 1].name, z->entries[i].name) == 0) {
            rc = wcm_fail(err, WCM_ERR_FORMAT, "zip archive has two entries named '%.200s'", z->entries[i].name);
            goto fail;
        }
    }
    if ((rc = locate_entries(z, err))) goto fail;
    return WCM_OK;
fail:
    wcm_zip_close(z);
    return rc;
}

wcm_zip_entry *wcm_zip_find(const wcm_zip *z, const char *name) {
    size_t lo = 0, hi = z->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, z->entries[mid].name);
        if (c == 0) return &z->entries[mid];
        if (c < 0) hi = mid;
        else lo = mid + 1;
    }
    return NULL;
}

static const char *method_name(unsigned method) {
    switch (method) {
    case 8: return "deflate";
    case 9: return "deflate64";
    case 12: return "bzip2";
    case 14: return "lzma";
    case 93: return "zstd";
    case 95: return "xz";
    default: return "unknown";
    }
}

int wcm_zip_entry_data(const wcm_zip *z, wcm_zip_entry *e, const unsigned char **data, size_t *len, wcm_error *err) {
    *data = NULL;
    *len = 0;
    if (e->flags & 1) return wcm_fail(err, WCM_ERR_FORMAT, "zip entry '%.200s' is encrypted", e->name);
    if (e->method != 0)
        return wcm_fail(err, WCM_ERR_FORMAT,
                        "zip entry '%.200s' is compressed (method %u, %s); only stored (uncompressed) entries are supported",
                        e->name, e->method, method_name(e->method));
    if (e->compressed_size != e->size)
        return wcm_fail(err, WCM_ERR_FORMAT, "stored zip entry '%.200s' has different packed and unpacked sizes", e->name);
    if (rd16(z->buf + e->local_header_offset + 8) != e->method)
        return wcm_fail(err, WCM_ERR_FORMAT, "zip entry '%.200s': local and central headers disagree", e->name);
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
    /* Checked once per entry, however many tensors read it. */
    if (!e->verified && wcm_crc32(z->buf + e->data_offset, (size_t)e->size) != e->crc32)
        return wcm_fail(err, WCM_ERR_FORMAT, "zip entry '%.200s' is corrupt (CRC-32 mismatch)", e->name);
#endif
    e->verified = 1;
    *data = z->buf + e->data_offset;
    *len = (size_t)e->size;
    return WCM_OK;
}
