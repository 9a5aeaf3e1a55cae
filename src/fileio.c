/* Whole-file reads and atomic writes (temporary name, then rename), so a
 * failed command never leaves a partial output file. */
#include "wcm/io.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int wcm_read_file(const char *path, unsigned char **buf, size_t *len, wcm_error *err) {
    *buf = NULL;
    *len = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) return wcm_fail(err, WCM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(fp);
        return wcm_fail(err, WCM_ERR_IO, "%s: not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    unsigned char *data = malloc(size + 1);
    if (!data) {
        fclose(fp);
        return wcm_fail(err, WCM_ERR_NOMEM, "%s: out of memory (%zu bytes)", path, size);
    }
    size_t got = fread(data, 1, size, fp);
    int bad = ferror(fp);
    fclose(fp);
    if (bad || got != size) {
        free(data);
        return wcm_fail(err, WCM_ERR_IO, "%s: read error", path);
    }
    data[size] = 0;
    *buf = data;
    *len = size;
    return WCM_OK;
}

int wcm_atomic_open(wcm_atomic_file *f, const char *path, wcm_error *err) {
    memset(f, 0, sizeof *f);
    size_t n = strlen(path);
    f->final_path = malloc(n + 1);
    f->tmp_path = malloc(n + 32);
    if (!f->final_path || !f->tmp_path) {
        free(f->final_path);
        free(f->tmp_path);
        return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
    }
    memcpy(f->final_path, path, n + 1);
    snprintf(f->tmp_path, n + 32, "%s.tmp.%ld", path, (long)getpid());
    f->fp = fopen(f->tmp_path, "wb");
    if (!f->fp) {
        int e = errno;
        free(f->final_path);
        free(f->tmp_path);
        memset(f, 0, sizeof *f);
        return wcm_fail(err, WCM_ERR_IO, "%s: cannot create: %s", path, strerror(e));
    }
    return WCM_OK;
}

void wcm_atomic_abort(wcm_atomic_file *f) {
    if (f->fp) fclose(f->fp);
    if (f->tmp_path) remove(f->tmp_path);
    free(f->final_path);
    free(f->tmp_path);
    memset(f, 0, sizeof *f);
}

int wcm_atomic_commit(wcm_atomic_file *f, wcm_error *err) {
    int bad = ferror(f->fp);
    if (fflush(f->fp) != 0) bad = 1;
    if (fclose(f->fp) != 0) bad = 1;
    f->fp = NULL;
    if (bad) {
        int rc = wcm_fail(err, WCM_ERR_IO, "%s: write failed", f->final_path);
        wcm_atomic_abort(f);
        return rc;
    }
    if (rename(f->tmp_path, f->final_path) != 0) {
        int rc = wcm_fail(err, WCM_ERR_IO, "%s: cannot rename into place: %s", f->final_path, strerror(errno));
        wcm_atomic_abort(f);
        return rc;
    }
    free(f->final_path);
    free(f->tmp_path);
    memset(f, 0, sizeof *f);
    return WCM_OK;
}

int wcm_write_file_atomic(const char *path, const void *buf, size_t len, wcm_error *err) {
    wcm_atomic_file f;
    int rc = wcm_atomic_open(&f, path, err);
    if (rc) return rc;
    if (len && fwrite(buf, 1, len, f.fp) != len) {
        wcm_atomic_abort(&f);
        return wcm_fail(err, WCM_ERR_IO, "%s: write failed", path);
    }
    return wcm_atomic_commit(&f, err);
}
