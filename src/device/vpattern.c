/* The moving test pattern source and its drawing (see vpattern.h for the
 * picture's layout). */
#include "device/vpattern.h"

#include <errno.h>
#include <stdlib.h>

typedef struct vpattern_source {
  video_source_t base;
  uint32_t next;
} vpattern_source_t;

typedef struct vpattern__layout {
  int bars_h;      /* luma rows of the colour bars */
  int sq, sq_y;    /* index square size and top row */
  int box, bx, by; /* moving box: size and top-left corner */
} vpattern__layout_t;

static void vpattern__layout(int w, int h, uint32_t index,
                             vpattern__layout_t *l);
static int vpattern__tri(uint32_t t, int span);
static void vpattern__yuv(int i, uint8_t *y, uint8_t *u, uint8_t *v);
static int vpattern__read(video_source_t *s, video_image_t *img);
static void vpattern__close(video_source_t *s);

static const video_source_ops_t vpattern__ops = {vpattern__read,
                                                 vpattern__close};

/* 75% bars: white, yellow, cyan, green, magenta, red, blue (R, G, B). */
static const uint8_t vpattern__rgb[7][3] = {
    {191, 191, 191}, {191, 191, 0}, {0, 191, 191}, {0, 191, 0},
    {191, 0, 191},   {191, 0, 0},   {0, 0, 191}};

void vpattern_draw(video_image_t *img, uint32_t index) {
  int w = img->width, h = img->height;
  vpattern__layout_t l;
  vpattern__layout(w, h, index, &l);
  for (int y = 0; y < h; y++) {
    uint8_t *row = img->planes[0] + (size_t)y * img->strides[0];
    for (int x = 0; x < w; x++) {
      int v;
      if (y >= l.by && y < l.by + l.box && x >= l.bx && x < l.bx + l.box) {
        v = 235;
      } else if (y >= l.sq_y && y < l.sq_y + l.sq && x >= l.sq &&
                 x < l.sq * (VPATTERN_BITS + 1)) {
        int bit = VPATTERN_BITS - 1 - (x / l.sq - 1);
        v = (index >> bit) & 1 ? 235 : 16;
      } else if (y < l.bars_h) {
        uint8_t yy, uu, vv;
        vpattern__yuv(x * 7 / w, &yy, &uu, &vv);
        v = yy;
      } else {
        v = 16 + 219 * x / w;
      }
      /* Grain from a hash of position and index: deterministic. */
      uint32_t g =
          (uint32_t)x * 73856093u ^ (uint32_t)y * 19349663u ^ index * 83492791u;
      g ^= g >> 13;
      g *= 0x5bd1e995u;
      g ^= g >> 15;
      v += (int)(g % 7) - 3;
      row[x] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
  }
  int cw = (w + 1) / 2, ch = (h + 1) / 2;
  for (int cy = 0; cy < ch; cy++) {
    uint8_t *ur = img->planes[1] + (size_t)cy * img->strides[1];
    uint8_t *vr = img->planes[2] + (size_t)cy * img->strides[2];
    for (int cx = 0; cx < cw; cx++) {
      int x = cx * 2, y = cy * 2;
      bool in_box =
          y >= l.by && y < l.by + l.box && x >= l.bx && x < l.bx + l.box;
      uint8_t yy, uu = 128, vv = 128;
      if (!in_box && y < l.bars_h && !(y >= l.sq_y && y < l.sq_y + l.sq))
        vpattern__yuv(x * 7 / w, &yy, &uu, &vv);
      ur[cx] = uu;
      vr[cx] = vv;
    }
  }
}

int vpattern_read_index(const video_image_t *img, uint32_t *index) {
  if (!img->buf || img->width < 32 || img->height < 16)
    return -EINVAL;
  vpattern__layout_t l;
  vpattern__layout(img->width, img->height, 0, &l);
  uint32_t n = 0;
  int cy = l.sq_y + l.sq / 2;
  for (int b = 0; b < VPATTERN_BITS; b++) {
    int cx = l.sq * (b + 1) + l.sq / 2;
    n = n << 1 | (img->planes[0][(size_t)cy * img->strides[0] + cx] > 128);
  }
  *index = n;
  return 0;
}

int vpattern_source_open(int width, int height, int fps, video_source_t **out) {
  if (width < 32 || height < 16 || width > VIDEO_MAX_WIDTH ||
      height > VIDEO_MAX_HEIGHT || fps < 1 || fps > 120)
    return -EINVAL;
  vpattern_source_t *p = calloc(1, sizeof(*p));
  if (!p)
    return -ENOMEM;
  p->base.ops = &vpattern__ops;
  p->base.paced = false;
  p->base.width = width;
  p->base.height = height;
  p->base.fps = fps;
  *out = &p->base;
  return 0;
}

static int vpattern__read(video_source_t *s, video_image_t *img) {
  vpattern_source_t *p = (vpattern_source_t *)s;
  int r = video_image_alloc(img, s->width, s->height);
  if (r != 0)
    return r;
  vpattern_draw(img, p->next++);
  return 1;
}

static void vpattern__close(video_source_t *s) {
  free(s);
}

/* Where everything goes at w x h for picture `index`. The index squares
 * sit in the ramp, one square's height above the bottom; the box bounces
 * over the bars, a few pixels a picture. */
static void vpattern__layout(int w, int h, uint32_t index,
                             vpattern__layout_t *l) {
  l->bars_h = h * 2 / 3;
  l->sq = w / (VPATTERN_BITS + 2);
  if (l->sq > h / 6)
    l->sq = h / 6;
  if (l->sq < 1)
    l->sq = 1;
  l->sq_y = h - 2 * l->sq;
  l->box = h / 6 > 2 ? h / 6 : 2;
  int sx = w / 160 > 1 ? w / 160 : 1, sy = h / 240 > 1 ? h / 240 : 1;
  l->bx = vpattern__tri(index * (uint32_t)sx, w - l->box);
  l->by = vpattern__tri(index * (uint32_t)sy, l->bars_h - l->box);
}

/* A triangle wave: 0 .. span .. 0 as t grows. */
static int vpattern__tri(uint32_t t, int span) {
  if (span <= 0)
    return 0;
  uint32_t p = t % (2u * (uint32_t)span);
  return (int)(p <= (uint32_t)span ? p : 2u * (uint32_t)span - p);
}

/* Bar i in BT.601 limited range (what libvpx and libyuv assume). */
static void vpattern__yuv(int i, uint8_t *y, uint8_t *u, uint8_t *v) {
  int r = vpattern__rgb[i][0], g = vpattern__rgb[i][1], b = vpattern__rgb[i][2];
  *y = (uint8_t)(((66 * r + 129 * g + 25 * b + 128) >> 8) + 16);
  *u = (uint8_t)(((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128);
  *v = (uint8_t)(((112 * r - 94 * g - 18 * b + 128) >> 8) + 128);
}
