/* A minimal plotting canvas for gantl's examples: scatter plots with axes, ticks and text,
   written as PNG with stb_image_write. Text comes from stb_easy_font (Debian: libstb-dev).
   Include after stb_image_write.h; the functions are static, for one translation unit. */
#ifndef GANTL_PLOT_H
#define GANTL_PLOT_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#endif
#include <stb/stb_easy_font.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

typedef struct plot {
    int width, height;
    int left, right, top, bottom; /* the plotting area, in pixels */
    double x0, x1, y0, y1;        /* its data range */
    unsigned char *rgb;           /* (height, width, 3) */
} plot;

static const unsigned char plot_red[3] = {220, 40, 40}, plot_blue[3] = {40, 90, 220}, plot_green[3] = {30, 170, 60},
                           plot_gold[3] = {230, 170, 0}, plot_grey[3] = {150, 150, 150}, plot_black[3] = {0, 0, 0};

static void plot_pixel(plot *p, int x, int y, const unsigned char *c, float alpha) {
    if (x < 0 || y < 0 || x >= p->width || y >= p->height) return;
    unsigned char *px = p->rgb + 3 * ((size_t)y * p->width + x);
    for (int k = 0; k < 3; k++) px[k] = (unsigned char)(px[k] + alpha * (c[k] - px[k]) + 0.5f);
}

static void plot_rect(plot *p, int x0, int y0, int x1, int y1, const unsigned char *c, float alpha) {
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) plot_pixel(p, x, y, c, alpha);
}

/* Text at pixel (x, y) (top left), scale 1 or 2. */
static void plot_text(plot *p, int x, int y, const char *text, const unsigned char *c, int scale) {
    static char buffer[60000];
    int quads = stb_easy_font_print(0, 0, (char *)text, NULL, buffer, sizeof buffer);
    for (int q = 0; q < quads; q++) {
        const float *v = (const float *)(buffer + q * 64); /* 4 vertices of 16 bytes: x, y, z, colour */
        int qx0 = (int)v[0], qy0 = (int)v[1], qx1 = (int)v[8], qy1 = (int)v[9];
        plot_rect(p, x + scale * qx0, y + scale * qy0, x + scale * qx1 - 1, y + scale * qy1 - 1, c, 1.0f);
    }
}

static int plot_text_width(const char *text, int scale) { return scale * stb_easy_font_width((char *)text); }

static int plot_px(const plot *p, double x) {
    return p->left + (int)lround((x - p->x0) / (p->x1 - p->x0) * (p->right - p->left));
}
static int plot_py(const plot *p, double y) {
    return p->bottom - (int)lround((y - p->y0) / (p->y1 - p->y0) * (p->bottom - p->top));
}

/* A "nice" tick step covering range with about 5 ticks. */
static double plot_tick_step(double range) {
    double raw = range / 5, mag = pow(10, floor(log10(raw))), f = raw / mag;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
}

/* A white canvas with a framed plotting area, ticks, tick labels, axis labels and a title. */
static int plot_init(plot *p, int width, int height, double x0, double x1, double y0, double y1, const char *title,
                     const char *xlabel, const char *ylabel) {
    memset(p, 0, sizeof *p);
    p->width = width, p->height = height;
    p->left = 70, p->right = width - 20, p->top = 40, p->bottom = height - 50;
    if (x1 <= x0) x1 = x0 + 1;
    if (y1 <= y0) y1 = y0 + 1;
    p->x0 = x0, p->x1 = x1, p->y0 = y0, p->y1 = y1;
    p->rgb = (unsigned char *)malloc((size_t)width * height * 3);
    if (!p->rgb) return 0;
    memset(p->rgb, 255, (size_t)width * height * 3);
    char buf[64];
    double step = plot_tick_step(x1 - x0);
    for (double t = ceil(x0 / step) * step; t <= x1 + 1e-9 * step; t += step) {
        int x = plot_px(p, t);
        plot_rect(p, x, p->top, x, p->bottom, plot_grey, 0.25f);
        plot_rect(p, x, p->bottom, x, p->bottom + 5, plot_black, 1.0f);
        snprintf(buf, sizeof buf, "%g", fabs(t) < 1e-9 * step ? 0.0 : t);
        plot_text(p, x - plot_text_width(buf, 1) / 2, p->bottom + 9, buf, plot_black, 1);
    }
    step = plot_tick_step(y1 - y0);
    for (double t = ceil(y0 / step) * step; t <= y1 + 1e-9 * step; t += step) {
        int y = plot_py(p, t);
        plot_rect(p, p->left, y, p->right, y, plot_grey, 0.25f);
        plot_rect(p, p->left - 5, y, p->left, y, plot_black, 1.0f);
        snprintf(buf, sizeof buf, "%g", fabs(t) < 1e-9 * step ? 0.0 : t);
        plot_text(p, p->left - 9 - plot_text_width(buf, 1), y - 3, buf, plot_black, 1);
    }
    plot_rect(p, p->left, p->top, p->right, p->top, plot_black, 1.0f);
    plot_rect(p, p->left, p->bottom, p->right, p->bottom, plot_black, 1.0f);
    plot_rect(p, p->left, p->top, p->left, p->bottom, plot_black, 1.0f);
    plot_rect(p, p->right, p->top, p->right, p->bottom, plot_black, 1.0f);
    if (title) plot_text(p, (width - plot_text_width(title, 2)) / 2, 10, title, plot_black, 2);
    if (xlabel) plot_text(p, (p->left + p->right - plot_text_width(xlabel, 1)) / 2, height - 22, xlabel, plot_black, 1);
    if (ylabel) plot_text(p, 6, p->top - 14, ylabel, plot_black, 1);
    return 1;
}

/* A filled disc of radius r pixels at data point (x, y). */
static void plot_point(plot *p, double x, double y, int r, const unsigned char *c, float alpha) {
    int cx = plot_px(p, x), cy = plot_py(p, y);
    if (cx < p->left || cx > p->right || cy < p->top || cy > p->bottom) return;
    for (int dy = -r; dy <= r; dy++)
        for (int dx = -r; dx <= r; dx++)
            if (dx * dx + dy * dy <= r * r) plot_pixel(p, cx + dx, cy + dy, c, alpha);
}

/* A legend entry at row k in the top right corner. */
static void plot_legend(plot *p, int k, const char *label, const unsigned char *c) {
    int x = p->right - 140, y = p->top + 8 + 16 * k;
    plot_rect(p, x, y, x + 8, y + 8, c, 1.0f);
    plot_text(p, x + 14, y, label, plot_black, 1);
}

static int plot_save(plot *p, const char *path) {
    int ok = stbi_write_png(path, p->width, p->height, 3, p->rgb, p->width * 3);
    free(p->rgb);
    p->rgb = NULL;
    return ok;
}

#endif
