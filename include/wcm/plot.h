/* wcm — a small SVG line-plot writer for reports (Figure 3, training
 * curves, the reproductions of the paper). */
#ifndef WCM_PLOT_H
#define WCM_PLOT_H

#include "wcm/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *name;
    const double *x, *y;
    int n;
    int dashed;
    const char *color; /* NULL: from the palette */
} wcm_plot_series;

typedef struct {
    const char *title, *xlabel, *ylabel;
    int identity_line; /* draw y = x */
    int width, height;
} wcm_plot;

/* Render to a string (malloc'd) and write it atomically to `path`. */
int wcm_plot_write_svg(const char *path, const wcm_plot *p, const wcm_plot_series *s, int ns, wcm_error *err);
/* Same, returned as a malloc'd string (for embedding in HTML). */
char *wcm_plot_render_svg(const wcm_plot *p, const wcm_plot_series *s, int ns);
/* Same with a logarithmic y axis (values <= 0 are left out). */
char *wcm_plot_render_svg_log(const wcm_plot *p, const wcm_plot_series *s, int ns);

#ifdef __cplusplus
}
#endif
#endif
