/* Reports stay well-formed whatever names they carry (issue 27, D7): the
 * one escaping path (JSON strings, HTML/XML text, CSV fields; invalid UTF-8
 * becomes U+FFFD, non-finite numbers null), then the CLI: eval-denoise with a
 * model named like markup and an image folder named with a quote, '<' and a
 * non-UTF-8 byte writes results.json that the strict JSON reader accepts with
 * the names intact, report.html and figure3.svg without live markup, and
 * results.csv with quoted fields; `--sigmas 1e300` is refused; sample's
 * log.json stays valid for a non-UTF-8 model name. */
#include "craft.h"
#include "testjson.h"
#include "testutil.h"
#include "wcm/model.h"

#include <sys/wait.h>
#include <unistd.h>

static void test_escapers(void) {
    wcm_json_buf b;
    wcm_json_buf_init(&b);
    wcm_json_buf_string(&b, "a\"<b>\\\n\x01 caf\xc3\xa9 \xff\xfe end");
    wcm_json *j;
    wcm_error err;
    int rc = wcm_json_parse(b.data, b.len, &j, &err);
    CHECK(rc == 0 && !strcmp(wcm_json_string(j), "a\"<b>\\\n\x01 caf\xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd end"),
          "JSON string: quotes, backslash, controls escaped, UTF-8 kept, invalid bytes -> U+FFFD: %s", b.data);
    if (!rc) wcm_json_free(j);
    b.len = 0;
    wcm_json_buf_html(&b, "<b onmouseover=\"alert(1)\">x & 'y'\x1b[31m\xc0\xaf");
    CHECK(!strcmp(b.data, "&lt;b onmouseover=&quot;alert(1)&quot;&gt;x &amp; &#39;y&#39;\xef\xbf\xbd[31m\xef\xbf\xbd\xef\xbf\xbd"),
          "HTML text: markup characters escaped, escape character and overlong UTF-8 replaced: %s", b.data);
    b.len = 0;
    wcm_json_buf_csv(&b, "plain");
    wcm_json_buf_puts(&b, ",");
    wcm_json_buf_csv(&b, "a,\"b\"\nc");
    CHECK(!strcmp(b.data, "plain,\"a,\"\"b\"\"\nc\""), "CSV fields: plain as is, separators and quotes quoted and doubled");
    b.len = 0;
    wcm_json_buf_number_fmt(&b, "%.4f", -INFINITY);
    wcm_json_buf_puts(&b, " ");
    wcm_json_buf_number_fmt(&b, "%.4f", NAN);
    wcm_json_buf_puts(&b, " ");
    wcm_json_buf_number_fmt(&b, "%.4f", 25.123456);
    CHECK(!strcmp(b.data, "null null 25.1235"), "numbers: -inf and NaN become null, finite ones keep their format: %s", b.data);
    wcm_json_buf_free(&b);
}

/* Runs wcm with these arguments (no shell: names pass byte for byte) in
 * the test folder, stdout and stderr to files there. */
static int run(const char *const *args) {
    pid_t pid = fork();
    if (pid == 0) {
        const char *argv[32] = {"wcm"};
        int n = 1;
        for (; args[n - 1] && n < 31; n++) argv[n] = args[n - 1];
        argv[n] = NULL;
        if (chdir(t_dir) || !freopen("stdout.txt", "w", stdout) || !freopen("stderr.txt", "w", stderr)) _exit(97);
        execv(WCM_CLI_PATH, (char *const *)argv);
        _exit(98);
    }
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

static char *slurp(const char *path) {
    unsigned char *text = NULL;
    size_t len;
    wcm_error err;
    if (wcm_read_file(path, &text, &len, &err)) return NULL;
    return (char *)text;
}

#define MODEL_NAME "<b onmouseover=alert(1)>x"
#define IMAGES_DIR "inj\"dir<script>\xff"

static void test_eval_reports(void) {
    wcm_error err;
    wcm_model m = {0};
    wcm_array_list_init(&m.meta);
    REQUIRE_OK(wcm_net_create(&m.net, WCM_NET_FLAT, 5, &err), &err);
    wcm_net_init_reference(m.net, 1);
    REQUIRE_OK(wcm_model_save(&m, t_at(MODEL_NAME ".safetensors"), 0, &err), &err);
    REQUIRE_OK(wcm_model_save(&m, t_at("a,\"b\".safetensors"), 0, &err), &err);
    wcm_model_free(&m);
    mkdir(t_at(IMAGES_DIR), 0700);
    bytes img = npy_filled(32, 32, 0.5f);
    craft_write(t_at(IMAGES_DIR "/face\xfe.npy"), img.data, img.len);
    free(img.data);

    const char *bad_args[] = {"eval-denoise", "--quiet", "--images", IMAGES_DIR, "--crop", "32", "--sigmas", "10,1e300",
                              "--out", "bad", MODEL_NAME ".safetensors", NULL};
    int rc = run(bad_args);
    char *text = slurp(t_at("stderr.txt"));
    CHECK(rc == 1 && text && strstr(text, "--sigmas") && access(t_at("bad"), F_OK) != 0,
          "--sigmas 1e300 (which wrote -inf into results.json) is refused: %s", text ? text : "");
    free(text);

    const char *args[] = {"eval-denoise", "--quiet", "--images", IMAGES_DIR, "--crop", "32", "--sigmas", "10,20",
                          "--out", "ev", MODEL_NAME ".safetensors", "a,\"b\".safetensors", NULL};
    rc = run(args);
    if (rc) {
        text = slurp(t_at("stderr.txt"));
        CHECK(0, "eval-denoise with hostile names runs: exit %d %s", rc, text ? text : "");
        free(text);
        return;
    }
    wcm_json *j = t_load_json(t_at("ev/results.json"));
    const wcm_json *models = wcm_json_get(j, "models");
    CHECK(j && !strcmp(wcm_json_string(wcm_json_get(j, "images_dir")), "inj\"dir<script>\xef\xbf\xbd") &&
              wcm_json_get(models, MODEL_NAME) && wcm_json_get(models, "a,\"b\"") &&
              !strcmp(wcm_json_string(wcm_json_at(wcm_json_get(j, "images"), 0)), "face\xef\xbf\xbd.npy"),
          "results.json is valid JSON; folder, image and model names read back (invalid bytes as U+FFFD)");
    double psnr = 0;
    CHECK(j && !wcm_json_number(wcm_json_at(wcm_json_get(models, MODEL_NAME), 1), &psnr) && psnr > 0,
          "results.json numbers are finite PSNRs (%.4f dB)", psnr);
    wcm_json_free(j);
    text = slurp(t_at("ev/report.html"));
    CHECK(text && !strstr(text, "<b onmouseover") && !strstr(text, "<script>") &&
              strstr(text, "&lt;b onmouseover=alert(1)&gt;x") && strstr(text, "inj&quot;dir&lt;script&gt;\xef\xbf\xbd"),
          "report.html shows the names as text, no markup from them");
    free(text);
    text = slurp(t_at("ev/figure3.svg"));
    CHECK(text && !strstr(text, "<b onmouseover") && strstr(text, "&lt;b onmouseover=alert(1)&gt;x"),
          "figure3.svg escapes the series names");
    free(text);
    text = slurp(t_at("ev/results.csv"));
    CHECK(text && strstr(text, "\n" MODEL_NAME ",10,") && strstr(text, "\n\"a,\"\"b\"\"\",10,"),
          "results.csv quotes the name with a comma and a quote");
    free(text);
}

static void test_sample_log(void) {
    char src[4096];
    snprintf(src, sizeof src, "%s/models/wcm_face160_j2_rf13.safetensors", WCM_SOURCE_DIR);
    unsigned char *model;
    size_t len;
    wcm_error err;
    if (wcm_read_file(src, &model, &len, &err)) {
        printf("skip: %s\n", err.msg);
        return;
    }
    craft_write(t_at("bad\xff\xfename.safetensors"), model, len);
    free(model);
    const char *args[] = {"sample", "--quiet", "bad\xff\xfename.safetensors", "--out", "smp", "--n", "1", "--low-size", "4",
                          "--max-iters", "3", "--threads", "1", NULL};
    int rc = run(args);
    wcm_json *j = t_load_json(t_at("smp/log.json"));
    CHECK(rc == 0 && j && !strcmp(wcm_json_string(wcm_json_get(j, "model")), "bad\xef\xbf\xbd\xef\xbf\xbdname.safetensors"),
          "sample's log.json is valid for a model file named with invalid UTF-8 (exit %d)", rc);
    wcm_json_free(j);
}

int main(void) {
    t_temp_dir("reports");
    test_escapers();
    test_eval_reports();
    test_sample_log();
    t_temp_dir_remove();
    return t_done("test_reports");
}
