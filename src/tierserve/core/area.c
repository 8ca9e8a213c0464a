/* Exact area averaging of a box of 8- or 16-bit samples (tierserve.core.area_kernel calls it).
 *
 * Output row o of a strip is the weighted sum of box rows taps_y[o][0..ty) with weights_y[o][..]
 * (the vertical pass, into the double row buffer `row` of width * bands samples), then each output
 * pixel m the weighted sum of row pixels taps_x[m][0..tx) with weights_x[m][..], band by band. Sums
 * are in double, in the NumPy path's order; the result is rounded half to even. Weights are the
 * overlaps of core.resample._axis_weights: non-negative, summing to 1, so a sum stays within half a
 * unit of the samples' range and needs no clamping.
 *
 * src points at box row y0 (taps are box rows, src row taps_y - y0); row_stride is in samples; the
 * samples of a row are contiguous (pixel after pixel, band after band). dst is out_rows x out_width
 * x bands, contiguous. The caller checks every tap lies inside the rows it passes.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* v rounded half to even, for 0 <= v < 2**31: adding 2**52 leaves the rounded integer in the low
 * bits of the mantissa (the default rounding mode rounds the addition half to even). Sums of
 * non-negative samples with non-negative weights are never negative. */
static inline uint32_t half_even(double v)
{
    const double shifted = v + 0x1p52;
    uint64_t bits;
    memcpy(&bits, &shifted, sizeof bits);
    return (uint32_t)bits;
}

/* BANDS and TAPS_X: 0 for "as passed"; a constant lets the compiler unroll the horizontal pass. */
#define DEFINE_AREA(NAME, T, BANDS, TAPS_X)                                                          \
    static void NAME(const T *restrict src, ptrdiff_t row_stride, ptrdiff_t width, ptrdiff_t bands,   \
                     ptrdiff_t y0, ptrdiff_t out_rows, const intptr_t *taps_y,                        \
                     const double *weights_y, ptrdiff_t ty, ptrdiff_t out_width,                      \
                     const intptr_t *taps_x, const double *weights_x, ptrdiff_t tx, T *restrict dst,  \
                     double *restrict row)                                                            \
    {                                                                                                 \
        const ptrdiff_t nb = BANDS ? BANDS : bands, nt = TAPS_X ? TAPS_X : tx;                        \
        const ptrdiff_t samples = width * nb;                                                         \
        for (ptrdiff_t o = 0; o < out_rows; o++) {                                                    \
            const intptr_t *ry = taps_y + o * ty;                                                     \
            const double *wy = weights_y + o * ty;                                                    \
            const T *restrict first = src + (ry[0] - y0) * row_stride;                                \
            for (ptrdiff_t k = 0; k < samples; k++) row[k] = wy[0] * first[k];                        \
            for (ptrdiff_t t = 1; t < ty; t++) {                                                      \
                const T *restrict s = src + (ry[t] - y0) * row_stride;                                \
                const double w = wy[t];                                                               \
                for (ptrdiff_t k = 0; k < samples; k++) row[k] += w * s[k];                           \
            }                                                                                         \
            T *restrict d = dst + o * out_width * nb;                                                 \
            for (ptrdiff_t m = 0; m < out_width; m++) {                                               \
                const intptr_t *rx = taps_x + m * tx;                                                 \
                const double *wx = weights_x + m * tx;                                                \
                for (ptrdiff_t b = 0; b < nb; b++) {                                                  \
                    double sum = 0.0;                                                                 \
                    for (ptrdiff_t t = 0; t < nt; t++) sum += wx[t] * row[rx[t] * nb + b];            \
                    d[m * nb + b] = (T)half_even(sum);                                                \
                }                                                                                     \
            }                                                                                         \
        }                                                                                             \
    }

#define DEFINE_DISPATCH(NAME, T)                                                                      \
    DEFINE_AREA(NAME##_any, T, 0, 0)                                                                  \
    DEFINE_AREA(NAME##_grey, T, 1, 0)                                                                 \
    DEFINE_AREA(NAME##_rgb, T, 3, 0)                                                                  \
    DEFINE_AREA(NAME##_rgb2, T, 3, 2)                                                                 \
    DEFINE_AREA(NAME##_rgb3, T, 3, 3)                                                                 \
    void NAME(const T *src, ptrdiff_t row_stride, ptrdiff_t width, ptrdiff_t bands, ptrdiff_t y0,     \
              ptrdiff_t out_rows, const intptr_t *taps_y, const double *weights_y, ptrdiff_t ty,      \
              ptrdiff_t out_width, const intptr_t *taps_x, const double *weights_x, ptrdiff_t tx,     \
              T *dst, double *row)                                                                    \
    {                                                                                                 \
        void (*area)(const T *restrict, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t,        \
                     const intptr_t *, const double *, ptrdiff_t, ptrdiff_t, const intptr_t *,        \
                     const double *, ptrdiff_t, T *restrict, double *restrict) = NAME##_any;          \
        if (bands == 1)                                                                               \
            area = NAME##_grey;                                                                       \
        else if (bands == 3)                                                                          \
            area = tx == 3 ? NAME##_rgb3 : tx == 2 ? NAME##_rgb2 : NAME##_rgb;                        \
        area(src, row_stride, width, bands, y0, out_rows, taps_y, weights_y, ty, out_width, taps_x,   \
             weights_x, tx, dst, row);                                                                \
    }

DEFINE_DISPATCH(tierserve_area_u8, uint8_t)
DEFINE_DISPATCH(tierserve_area_u16, uint16_t)
