/* A small SVG line-plot writer for reports (Figure 3, training curves). */
#ifndef WCM_SVGPLOT_H
#define WCM_SVGPLOT_H

#include "wcm/common.h"

typedef struct {
    const char *name;
    const double *x, *y;
    int n;
    int dashed;
    const char *color; /* NULL: from the palette */
} svg_series;

typedef struct {
    const char *title, *xlabel, *ylabel;
    int identity_line; /* draw y = x */
    int width, height;
} svg_plot;

/* Render to a string (malloc'd) and write it atomically to `path`. */
int svg_plot_write(const char *path, const svg_plot *p, const svg_series *s, int ns, wcm_error *err);
/* Same, returned as a malloc'd string (for embedding in HTML). */
char *svg_plot_render(const svg_plot *p, const svg_series *s, int ns);
/* Same with a logarithmic y axis (values <= 0 are left out). */
char *svg_plot_render_log(const svg_plot *p, const svg_series *s, int ns);

#endif
