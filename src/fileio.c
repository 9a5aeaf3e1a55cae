/* Whole-file reads that accept only regular files, and the one safe way wcm
 * writes an output file:
 *  - the bytes go to a temporary in the destination's folder, created with
 *    O_CREAT|O_EXCL|O_NOFOLLOW under an unpredictable name
 *    "<name>.wcm-tmp.<pid>.<16 hex digits>", then flushed, fsync'ed and
 *    renamed over the destination: readers see the old file or the new one,
 *    never a part, and a planted file or symlink at a guessed name cannot
 *    redirect the write;
 *  - only a regular file (or nothing) is replaced: a symlink, directory,
 *    FIFO, socket or device node at the destination is refused;
 *  - live temporaries sit in a fixed table that wcm_atomic_remove_temporaries
 *    (async-signal-safe) deletes, for SIGINT/SIGTERM handlers;
 *  - a temporary left by a process that died without cleaning up (SIGKILL,
 *    a crash, power loss) is deleted by the next process that writes into the
 *    same folder: the pid in its name no longer runs. */
#include "sysrand.h"
#include "wcm/io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TMP_MARK ".wcm-tmp."

/* ---- reading ---------------------------------------------------------------- */

static const char *file_kind(mode_t mode) {
    if (S_ISLNK(mode)) return "a symbolic link";
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISSOCK(mode)) return "a socket";
    return "not a regular file";
}

int wcm_open_regular(const char *path, size_t *size, wcm_error *err) {
    /* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) return wcm_fail(err, WCM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return wcm_fail(err, WCM_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return wcm_fail(err, WCM_ERR_IO, "%s: not a regular file (%s)", path, file_kind(st.st_mode));
    }
    *size = (size_t)st.st_size;
    return fd;
}

int wcm_read_file(const char *path, unsigned char **buf, size_t *len, wcm_error *err) {
    *buf = NULL;
    *len = 0;
    size_t size;
    int fd = wcm_open_regular(path, &size, err);
    if (fd < 0) return fd;
    unsigned char *data = size < SIZE_MAX ? malloc(size + 1) : NULL;
    if (!data) {
        close(fd);
        return wcm_fail(err, WCM_ERR_NOMEM, "%s: out of memory (%zu bytes)", path, size);
    }
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, data + got, size - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
    }
    int e = errno;
    close(fd);
    if (got != size) {
        free(data);
        return wcm_fail(err, WCM_ERR_IO, "%s: read error: %s", path, got < size ? strerror(e) : "file changed size");
    }
    data[size] = 0;
    *buf = data;
    *len = size;
    return WCM_OK;
}

/* ---- the table of live temporaries (read by signal handlers) ------------------ */

#define LIVE_SLOTS 32
enum { SLOT_FREE = 0, SLOT_CLAIMED = 1, SLOT_LIVE = 2 };
static struct {
    int state;
    char path[PATH_MAX];
} live[LIVE_SLOTS];

/* Registers `path` before the file exists, so a signal between creating and
 * registering cannot leave it behind. Returns the slot or -1 (table full or
 * path too long: the write still works, only signal cleanup is lost). */
static int register_temporary(const char *path) {
    size_t n = strlen(path);
    if (n >= PATH_MAX) return -1;
    for (int i = 0; i < LIVE_SLOTS; i++) {
        int expected = SLOT_FREE;
        if (__atomic_compare_exchange_n(&live[i].state, &expected, SLOT_CLAIMED, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
            memcpy(live[i].path, path, n + 1);
            __atomic_store_n(&live[i].state, SLOT_LIVE, __ATOMIC_RELEASE);
            return i;
        }
    }
    return -1;
}

static void unregister_temporary(int slot) {
    if (slot >= 0 && slot < LIVE_SLOTS) __atomic_store_n(&live[slot].state, SLOT_FREE, __ATOMIC_RELEASE);
}

void wcm_atomic_remove_temporaries(void) {
    for (int i = 0; i < LIVE_SLOTS; i++)
        if (__atomic_load_n(&live[i].state, __ATOMIC_ACQUIRE) == SLOT_LIVE) unlink(live[i].path);
}

/* ---- stale temporaries of dead processes -------------------------------------- */

/* pid of a name "<anything>.wcm-tmp.<pid>.<16 hex>", or 0. */
static long temporary_pid(const char *name) {
    const char *mark = strstr(name, TMP_MARK), *next;
    while (mark && (next = strstr(mark + 1, TMP_MARK))) mark = next;
    if (!mark || mark == name) return 0;
    const char *p = mark + sizeof TMP_MARK - 1;
    long pid = 0;
    for (; *p >= '0' && *p <= '9' && pid < 100000000; p++) pid = pid * 10 + (*p - '0');
    if (pid <= 0 || *p != '.') return 0;
    p++;
    int hex = 0;
    for (; (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'); p++) hex++;
    return hex == 16 && !*p ? pid : 0;
}

static int process_is_gone(long pid) { return pid != (long)getpid() && kill((pid_t)pid, 0) != 0 && errno == ESRCH; }

static char sweep_lock;
static struct {
    dev_t dev;
    ino_t ino;
} swept[64];
static int swept_count;
static pid_t swept_by; /* a forked child starts its own list */

/* Deletes the stale temporaries in `dir` (regular files of ours whose
 * writer is gone). Each folder is swept once per process: a later process
 * finds what an earlier one left, and writing many files into one folder
 * stays linear. */
static void sweep_stale_temporaries(const char *dir) {
    struct stat st;
    if (stat(dir, &st) != 0) return;
    while (__atomic_test_and_set(&sweep_lock, __ATOMIC_ACQUIRE)) {
    }
    if (swept_by != getpid()) swept_by = getpid(), swept_count = 0;
    int seen = 0;
    for (int i = 0; i < swept_count && !seen; i++) seen = swept[i].dev == st.st_dev && swept[i].ino == st.st_ino;
    if (!seen) {
        int at = swept_count < 64 ? swept_count++ : (int)(st.st_ino % 64);
        swept[at].dev = st.st_dev, swept[at].ino = st.st_ino;
    }
    __atomic_clear(&sweep_lock, __ATOMIC_RELEASE);
    if (seen) return;
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        long pid = temporary_pid(e->d_name);
        struct stat fs;
        if (pid && process_is_gone(pid) && fstatat(dirfd(d), e->d_name, &fs, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISREG(fs.st_mode) && fs.st_uid == geteuid())
            unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
}

/* ---- writing ------------------------------------------------------------------ */

uint64_t wcm_system_random(void) {
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, GRND_NONBLOCK) == (ssize_t)sizeof v) return v;
    /* No entropy source: mix the clock, pid and a counter (splitmix64). */
    static uint64_t counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t z = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ ((uint64_t)getpid() << 40) ^
                 __atomic_add_fetch(&counter, 0x9E3779B97F4A7C15ULL, __ATOMIC_RELAXED);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Only a regular file (or nothing) may be replaced. */
static int check_destination(const char *path, wcm_error *err) {
    struct stat st;
    if (lstat(path, &st) != 0 || S_ISREG(st.st_mode)) return WCM_OK; /* absent: created; errors: open reports them */
    return wcm_fail(err, WCM_ERR_IO, "%s: refusing to replace %s (only a regular file is replaced by an output)", path,
                    file_kind(st.st_mode));
}

int wcm_atomic_open(wcm_atomic_file *f, const char *path, wcm_error *err) {
    memset(f, 0, sizeof *f);
    f->slot = -1;
    size_t n = strlen(path);
    if (n == 0 || path[n - 1] == '/') return wcm_fail(err, WCM_ERR_IO, "%s: not a file name", path);
    int rc = check_destination(path, err);
    if (rc) return rc;
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    size_t cap = n + sizeof TMP_MARK + 40;
    f->final_path = strdup(path);
    f->tmp_path = malloc(cap);
    if (!dir || !f->final_path || !f->tmp_path) {
        free(dir), free(f->final_path), free(f->tmp_path);
        memset(f, 0, sizeof *f);
        return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
    }
    sweep_stale_temporaries(dir);
    free(dir);
    int fd = -1, e = 0;
    for (int attempt = 0; attempt < 16 && fd < 0; attempt++) {
        snprintf(f->tmp_path, cap, "%s" TMP_MARK "%ld.%016llx", path, (long)getpid(), (unsigned long long)wcm_system_random());
        f->slot = register_temporary(f->tmp_path);
        fd = open(f->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0666);
        e = errno;
        if (fd < 0) unregister_temporary(f->slot), f->slot = -1;
        if (fd < 0 && e != EEXIST) break;
    }
    if (fd >= 0 && !(f->fp = fdopen(fd, "wb"))) {
        e = errno;
        close(fd);
        unlink(f->tmp_path);
        unregister_temporary(f->slot);
        fd = -1;
    }
    if (fd < 0) {
        free(f->final_path), free(f->tmp_path);
        memset(f, 0, sizeof *f);
        return wcm_fail(err, WCM_ERR_IO, "%s: cannot create: %s", path, strerror(e));
    }
    return WCM_OK;
}

void wcm_atomic_abort(wcm_atomic_file *f) {
    if (f->fp) fclose(f->fp);
    if (f->tmp_path) unlink(f->tmp_path);
    unregister_temporary(f->slot);
    free(f->final_path);
    free(f->tmp_path);
    memset(f, 0, sizeof *f);
    f->slot = -1;
}

int wcm_atomic_commit(wcm_atomic_file *f, wcm_error *err) {
    int e = 0, bad = ferror(f->fp);
    if (fflush(f->fp) != 0 && !bad) bad = 1, e = errno;
    if (!bad && fsync(fileno(f->fp)) != 0 && errno != EINVAL) bad = 1, e = errno; /* EINVAL: no fsync (pipes, some fs) */
    if (fclose(f->fp) != 0 && !bad) bad = 1, e = errno;
    f->fp = NULL;
    int rc = WCM_OK;
    if (bad) rc = wcm_fail(err, WCM_ERR_IO, "%s: write failed%s%s", f->final_path, e ? ": " : "", e ? strerror(e) : "");
    if (!rc) rc = check_destination(f->final_path, err); /* something may have appeared while writing */
    if (!rc && rename(f->tmp_path, f->final_path) != 0)
        rc = wcm_fail(err, WCM_ERR_IO, "%s: cannot rename into place: %s", f->final_path, strerror(errno));
    if (rc) {
        wcm_atomic_abort(f);
        return rc;
    }
    unregister_temporary(f->slot);
    free(f->final_path);
    free(f->tmp_path);
    memset(f, 0, sizeof *f);
    f->slot = -1;
    return WCM_OK;
}

int wcm_write_file_atomic(const char *path, const void *buf, size_t len, wcm_error *err) {
    wcm_atomic_file f;
    int rc = wcm_atomic_open(&f, path, err);
    if (rc) return rc;
    if (len && fwrite(buf, 1, len, f.fp) != len) {
        int e = errno;
        wcm_atomic_abort(&f);
        return wcm_fail(err, WCM_ERR_IO, "%s: write failed: %s", path, strerror(e));
    }
    return wcm_atomic_commit(&f, err);
}
