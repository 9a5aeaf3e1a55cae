/* SVG line plots: axes with "nice" ticks, one polyline per series, legend.
 * Titles, labels and series names (file names) go through the shared HTML/XML
 * escaper. */
#include "wcm/plot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wcm/json.h"
#include "wcm/io.h"

static const char *palette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#000000"};

static double nice_step(double range) {
    double raw = range / 6, mag = pow(10, floor(log10(raw))), f = raw / mag;
    return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
}

/* y on a log scale: positive values only, plotted as log10(y); decade ticks
 * (or nice steps within less than a decade) labelled with 10^tick. */
#define YV(v) (log_y ? ((v) > 0 ? log10(v) : NAN) : (v))

static char *render(const wcm_plot *p, const wcm_plot_series *s, int ns, int log_y) {
    int W = p->width ? p->width : 760, H = p->height ? p->height : 520;
    const int ml = 70, mr = 200, mt = 40, mb = 60;
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (int i = 0; i < ns; i++)
        for (int k = 0; k < s[i].n; k++) {
            if (!isfinite(s[i].x[k]) || !isfinite(YV(s[i].y[k]))) continue;
            x0 = fmin(x0, s[i].x[k]), x1 = fmax(x1, s[i].x[k]);
            y0 = fmin(y0, YV(s[i].y[k])), y1 = fmax(y1, YV(s[i].y[k]));
        }
    if (!isfinite(x0)) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
    if (p->identity_line) {
        double lo = fmin(x0, y0), hi = fmax(x1, y1);
        x0 = y0 = lo, x1 = y1 = hi;
    }
    if (x1 - x0 < 1e-9) x0 -= 1, x1 += 1;
    if (y1 - y0 < 1e-9) y0 -= 1, y1 += 1;
    double xs = nice_step(x1 - x0), ys = log_y && y1 - y0 >= 2 ? 1 : nice_step(y1 - y0);
    x0 = floor(x0 / xs) * xs, x1 = ceil(x1 / xs) * xs;
    y0 = floor(y0 / ys) * ys, y1 = ceil(y1 / ys) * ys;
    double pw = W - ml - mr, ph = H - mt - mb;
#define PX(v) (ml + ((v) - x0) / (x1 - x0) * pw)
#define PY(v) (mt + ph - ((v) - y0) / (y1 - y0) * ph)
    wcm_json_buf b;
    wcm_json_buf_init(&b);
    wcm_json_buf_printf(&b,
              "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
              "font-family=\"Helvetica, Arial, sans-serif\" font-size=\"13\">\n"
              "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
              W, H, W, H);
    if (p->title) {
        wcm_json_buf_printf(&b, "<text x=\"%d\" y=\"24\" font-size=\"16\" text-anchor=\"middle\">", ml + (int)pw / 2);
        wcm_json_buf_html(&b, p->title);
        wcm_json_buf_printf(&b, "</text>\n");
    }
    /* Ticks by index, at most a few dozen: extreme values (x0 + xs == x0)
     * must not loop forever. */
    for (int k = 0; k <= 64 && x0 + k * xs <= x1 + xs * 1e-6; k++) {
        double v = x0 + k * xs;
        wcm_json_buf_printf(&b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>\n", PX(v), mt, PX(v), mt + ph);
        wcm_json_buf_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%g</text>\n", PX(v), mt + ph + 18, v);
    }
    for (int k = 0; k <= 64 && y0 + k * ys <= y1 + ys * 1e-6; k++) {
        double v = y0 + k * ys;
        wcm_json_buf_printf(&b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>\n", ml, PY(v), ml + pw, PY(v));
        wcm_json_buf_printf(&b, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.3g</text>\n", ml - 6, PY(v) + 4,
                            log_y ? pow(10, v) : v);
    }
    wcm_json_buf_printf(&b, "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#333\"/>\n", ml, mt, pw, ph);
    if (p->xlabel) {
        wcm_json_buf_printf(&b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">", ml + pw / 2, H - 18);
        wcm_json_buf_html(&b, p->xlabel);
        wcm_json_buf_printf(&b, "</text>\n");
    }
    if (p->ylabel) {
        wcm_json_buf_printf(&b, "<text transform=\"translate(18 %.1f) rotate(-90)\" text-anchor=\"middle\">", mt + ph / 2);
        wcm_json_buf_html(&b, p->ylabel);
        wcm_json_buf_printf(&b, "</text>\n");
    }
    if (p->identity_line)
        wcm_json_buf_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#999\" stroke-dasharray=\"2 3\"/>\n",
                  PX(x0), PY(x0), PX(x1), PY(x1));
    for (int i = 0; i < ns; i++) {
        const char *color = s[i].color ? s[i].color : palette[i % 11];
        wcm_json_buf_printf(&b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"", color,
                  s[i].dashed ? " stroke-dasharray=\"6 4\"" : "");
        for (int k = 0; k < s[i].n; k++)
            if (isfinite(s[i].x[k]) && isfinite(YV(s[i].y[k])))
                wcm_json_buf_printf(&b, "%.1f,%.1f ", PX(s[i].x[k]), PY(YV(s[i].y[k])));
        wcm_json_buf_printf(&b, "\"/>\n");
        for (int k = 0; k < s[i].n; k++)
            if (isfinite(s[i].x[k]) && isfinite(YV(s[i].y[k])))
                wcm_json_buf_printf(&b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>\n", PX(s[i].x[k]),
                                    PY(YV(s[i].y[k])), color);
        double ly = mt + 10 + 20.0 * i;
        wcm_json_buf_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"%s/>\n",
                  ml + pw + 12, ly, ml + pw + 40, ly, color, s[i].dashed ? " stroke-dasharray=\"6 4\"" : "");
        wcm_json_buf_printf(&b, "<text x=\"%.1f\" y=\"%.1f\">", ml + pw + 46, ly + 4);
        wcm_json_buf_html(&b, s[i].name);
        wcm_json_buf_printf(&b, "</text>\n");
    }
    wcm_json_buf_printf(&b, "</svg>\n");
#undef PX
#undef PY
    if (b.failed) wcm_json_buf_free(&b);
    return b.data;
}

#undef YV

char *wcm_plot_render_svg(const wcm_plot *p, const wcm_plot_series *s, int ns) { return render(p, s, ns, 0); }
char *wcm_plot_render_svg_log(const wcm_plot *p, const wcm_plot_series *s, int ns) { return render(p, s, ns, 1); }

int wcm_plot_write_svg(const char *path, const wcm_plot *p, const wcm_plot_series *s, int ns, wcm_error *err) {
    char *text = wcm_plot_render_svg(p, s, ns);
    if (!text) return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
    int rc = wcm_write_file_atomic(path, text, strlen(text), err);
    free(text);
    return rc;
}
