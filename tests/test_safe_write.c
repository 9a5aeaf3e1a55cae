/* Safe output files and safe reads (issue 27, D5, D6, D9, D12 messages):
 * outputs replace only regular files (symlinks, FIFOs, directories and
 * device nodes are refused and left as they were); temporaries have
 * unpredictable names in the output's folder, so symlinks planted at the old
 * predictable names redirect nothing; a signal handler removes live
 * temporaries; a temporary left by a SIGKILLed process is removed by the next
 * process writing into its folder; reading a FIFO fails at once instead of
 * blocking; long messages keep their reason. */
#include "testutil.h"
#include "wcm/io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

static int count_temporaries(void) {
    DIR *d = opendir(t_dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".wcm-tmp.")) n++;
    closedir(d);
    return n;
}

static int file_is(const char *path, const char *text) {
    unsigned char *buf;
    size_t len;
    wcm_error err;
    if (wcm_read_file(path, &buf, &len, &err)) return 0;
    int same = len == strlen(text) && !memcmp(buf, text, len);
    free(buf);
    return same;
}

static void put_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (f) fputs(text, f), fclose(f);
}

static void test_refusals(void) {
    wcm_error err;
    int rc = wcm_write_file_atomic(t_at("plain.txt"), "one", 3, &err);
    CHECK(!rc && file_is(t_at("plain.txt"), "one"), "a new regular file is written");
    rc = wcm_write_file_atomic(t_at("plain.txt"), "two", 3, &err);
    CHECK(!rc && file_is(t_at("plain.txt"), "two") && count_temporaries() == 0, "an existing regular file is replaced, no temporary left");

    put_text(t_at("victim.txt"), "precious");
    symlink("victim.txt", t_at("link.png"));
    rc = wcm_write_file_atomic(t_at("link.png"), "data", 4, &err);
    struct stat st;
    CHECK(rc == WCM_ERR_IO && strstr(err.msg, "symbolic link") && lstat(t_at("link.png"), &st) == 0 && S_ISLNK(st.st_mode) &&
              file_is(t_at("victim.txt"), "precious"),
          "a symlink destination is refused, link and target unchanged: %s", err.msg);

    mkfifo(t_at("fifo.png"), 0600);
    rc = wcm_write_file_atomic(t_at("fifo.png"), "data", 4, &err);
    CHECK(rc == WCM_ERR_IO && strstr(err.msg, "FIFO") && lstat(t_at("fifo.png"), &st) == 0 && S_ISFIFO(st.st_mode),
          "a FIFO destination is refused and stays a FIFO: %s", err.msg);

    mkdir(t_at("sub.png"), 0700);
    rc = wcm_write_file_atomic(t_at("sub.png"), "data", 4, &err);
    CHECK(rc == WCM_ERR_IO && strstr(err.msg, "directory") && lstat(t_at("sub.png"), &st) == 0 && S_ISDIR(st.st_mode),
          "a directory destination is refused: %s", err.msg);

    /* A private null device in the test folder (root only): -o /dev/null
     * would otherwise have been replaced by a regular file. */
    if (mknod(t_at("null.png"), S_IFCHR | 0600, makedev(1, 3)) == 0) {
        rc = wcm_write_file_atomic(t_at("null.png"), "data", 4, &err);
        CHECK(rc == WCM_ERR_IO && strstr(err.msg, "character device") && lstat(t_at("null.png"), &st) == 0 &&
                  S_ISCHR(st.st_mode),
              "a device-node destination is refused and stays a device: %s", err.msg);
    } else {
        printf("skip: cannot create a device node here (not root): %s\n", strerror(errno));
    }
    CHECK(count_temporaries() == 0, "refusals leave no temporary");
}

static void test_unpredictable_temporaries(void) {
    wcm_error err;
    /* The names the old code used: "<out>.tmp.<pid>" for this pid and the next 200. */
    put_text(t_at("victim2.txt"), "precious");
    char name[64];
    for (int p = getpid(); p < getpid() + 200; p++) {
        snprintf(name, sizeof name, "out.png.tmp.%d", p);
        symlink("victim2.txt", t_at(name));
    }
    int rc = wcm_write_file_atomic(t_at("out.png"), "image", 5, &err);
    struct stat st;
    CHECK(!rc && file_is(t_at("victim2.txt"), "precious") && lstat(t_at("out.png"), &st) == 0 && S_ISREG(st.st_mode) &&
              file_is(t_at("out.png"), "image"),
          "200 symlinks at the old predictable temporary names redirect nothing");
    for (int p = getpid(); p < getpid() + 200; p++) {
        snprintf(name, sizeof name, "out.png.tmp.%d", p);
        unlink(t_at(name));
    }
    wcm_atomic_file a, b;
    REQUIRE_OK(wcm_atomic_open(&a, t_at("same.bin"), &err), &err);
    REQUIRE_OK(wcm_atomic_open(&b, t_at("same.bin"), &err), &err);
    const char *hex = strrchr(a.tmp_path, '.');
    CHECK(strcmp(a.tmp_path, b.tmp_path) != 0 && hex && strlen(hex + 1) == 16 && !strncmp(a.tmp_path, t_dir, strlen(t_dir)),
          "two temporaries for one output differ, end in 16 random hex digits, live in its folder: %s", a.tmp_path + strlen(t_dir));
    struct stat sa;
    CHECK(lstat(a.tmp_path, &sa) == 0 && S_ISREG(sa.st_mode), "the temporary is a regular file while writing");
    /* What a SIGINT handler calls: both temporaries vanish. */
    wcm_atomic_remove_temporaries();
    CHECK(count_temporaries() == 0, "wcm_atomic_remove_temporaries deletes the live temporaries");
    wcm_atomic_abort(&a);
    wcm_atomic_abort(&b);
}

static void on_signal(int sig) {
    wcm_atomic_remove_temporaries();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* A child opens an output, writes part of it and dies of `sig`. */
static int child_dies_writing(const char *path, int sig, int with_handler) {
    pid_t pid = fork();
    if (pid == 0) {
        if (with_handler) signal(sig, on_signal);
        wcm_atomic_file f;
        wcm_error err;
        if (wcm_atomic_open(&f, path, &err)) _exit(3);
        fputs("partial", f.fp);
        fflush(f.fp);
        raise(sig);
        _exit(4);
    }
    int status;
    waitpid(pid, &status, 0);
    return WIFSIGNALED(status) ? WTERMSIG(status) : -1;
}

static void test_signals(void) {
    int sig = child_dies_writing(t_at("interrupted.png"), SIGINT, 1);
    CHECK(sig == SIGINT && count_temporaries() == 0 && access(t_at("interrupted.png"), F_OK) != 0,
          "SIGINT during a write (handler installed): the process dies of SIGINT, no temporary, no output");
    sig = child_dies_writing(t_at("terminated.png"), SIGTERM, 1);
    CHECK(sig == SIGTERM && count_temporaries() == 0, "the same for SIGTERM");

    sig = child_dies_writing(t_at("killed.safetensors"), SIGKILL, 0);
    int left = count_temporaries();
    CHECK(sig == SIGKILL && left == 1, "SIGKILL during a write leaves its temporary (%d)", left);
    /* A later process writing anything into the folder removes it. */
    pid_t pid = fork();
    if (pid == 0) {
        wcm_error err;
        _exit(wcm_write_file_atomic(t_at("later.txt"), "x", 1, &err) ? 1 : 0);
    }
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0 && count_temporaries() == 0,
          "the next process writing into the folder removes the dead writer's temporary");

    /* A live writer's temporary is never removed. */
    int fds[2];
    if (pipe(fds)) return;
    pid = fork();
    if (pid == 0) {
        wcm_atomic_file f;
        wcm_error err;
        char c;
        close(fds[1]);
        if (wcm_atomic_open(&f, t_at("slow.png"), &err)) _exit(3);
        if (read(fds[0], &c, 1) < 0) _exit(4); /* wait for the parent */
        _exit(wcm_atomic_commit(&f, &err) ? 5 : 0);
    }
    close(fds[0]);
    while (count_temporaries() == 0) usleep(1000);
    pid_t other = fork();
    if (other == 0) {
        wcm_error err;
        _exit(wcm_write_file_atomic(t_at("other.txt"), "y", 1, &err) ? 1 : 0);
    }
    waitpid(other, &status, 0);
    int kept = count_temporaries();
    if (write(fds[1], "g", 1) < 0) printf("pipe write failed\n");
    close(fds[1]);
    waitpid(pid, &status, 0);
    CHECK(kept == 1 && WIFEXITED(status) && WEXITSTATUS(status) == 0 && access(t_at("slow.png"), F_OK) == 0,
          "another process's sweep keeps a live writer's temporary, which then commits");
}

static int ends_with(const char *s, const char *tail) {
    size_t a = strlen(s), b = strlen(tail);
    return a >= b && !strcmp(s + a - b, tail);
}

static void on_alarm(int sig) {
    (void)sig;
    static const char msg[] = "FAIL reading a FIFO blocked\n";
    if (write(1, msg, sizeof msg - 1) < 0) _exit(2);
    _exit(1);
}

static void test_reads_and_messages(void) {
    wcm_error err;
    unsigned char *buf = NULL;
    size_t len;
    mkfifo(t_at("model.safetensors"), 0600);
    signal(SIGALRM, on_alarm);
    alarm(10);
    double t0 = wcm_seconds();
    int rc = wcm_read_file(t_at("model.safetensors"), &buf, &len, &err);
    alarm(0);
    CHECK(rc == WCM_ERR_IO && strstr(err.msg, "not a regular file") && wcm_seconds() - t0 < 1,
          "reading a FIFO fails at once: %s", err.msg);
    rc = wcm_read_file(t_dir, &buf, &len, &err);
    CHECK(rc == WCM_ERR_IO && strstr(err.msg, "directory"), "reading a directory fails: %s", err.msg);

    /* A reason after a path longer than the message buffer survives. */
    char path[3000];
    memset(path, 'd', sizeof path - 1);
    path[sizeof path - 1] = 0;
    wcm_fail(&err, WCM_ERR_IO, "/tmp/%s/model.safetensors: cannot open: No such file or directory", path);
    size_t n = strlen(err.msg);
    CHECK(n < sizeof err.msg && n > 900 && strstr(err.msg, " ... ") && ends_with(err.msg, "cannot open: No such file or directory"),
          "a 3 KB message is shortened in the middle to %zu bytes and keeps its reason", n);
    wcm_fail(&err, WCM_ERR_FORMAT, "truncated .npy data");
    wcm_fail_context(&err, WCM_ERR_FORMAT, "%s", path);
    n = strlen(err.msg);
    CHECK(n < sizeof err.msg && ends_with(err.msg, ": truncated .npy data"),
          "a long context prefix keeps the original reason at the end");
}

int main(void) {
    t_temp_dir("safe_write");
    test_refusals();
    test_unpredictable_temporaries();
    test_signals();
    test_reads_and_messages();
    t_temp_dir_remove();
    return t_done("test_safe_write");
}
