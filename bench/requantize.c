/* Requantize a baseline JPEG in the DCT domain with libjpeg: entropy-decode its coefficients, scale each
 * by old step / new step (rounded half away from zero) with the tables libjpeg writes at `quality`,
 * entropy-encode them again. No inverse or forward DCT, no colour conversion, no chroma resampling.
 * A measurement of bench/requantize.py, not part of tierserve. Returns the output's length, -1 when
 * libjpeg refused the stream (warnings included), -2 when `capacity` is too small. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>

struct failure { struct jpeg_error_mgr manager; jmp_buf jump; };

static void on_error(j_common_ptr info) { longjmp(((struct failure *)info->err)->jump, 1); }

static void on_message(j_common_ptr info, int level) {
    if (level < 0) longjmp(((struct failure *)info->err)->jump, 1);
}

long bench_requantize(const unsigned char *in, unsigned long in_size, int quality, unsigned char *out,
                      unsigned long capacity) {
    struct jpeg_decompress_struct source;
    struct jpeg_compress_struct target;
    struct failure failure;
    unsigned char *buffer = NULL;
    unsigned long size = 0;
    long result = -1;
    source.err = target.err = jpeg_std_error(&failure.manager);
    failure.manager.error_exit = on_error;
    failure.manager.emit_message = on_message;
    jpeg_create_decompress(&source);
    jpeg_create_compress(&target);
    if (setjmp(failure.jump)) goto done;
    jpeg_mem_src(&source, in, in_size);
    jpeg_read_header(&source, TRUE);
    jvirt_barray_ptr *coefficients = jpeg_read_coefficients(&source);
    jpeg_copy_critical_parameters(&source, &target);
    jpeg_set_quality(&target, quality, TRUE);
    for (int c = 0; c < source.num_components; c++) {
        jpeg_component_info *component = &source.comp_info[c];
        const UINT16 *old_steps = component->quant_table->quantval;
        const UINT16 *new_steps = target.quant_tbl_ptrs[target.comp_info[c].quant_tbl_no]->quantval;
        for (JDIMENSION row = 0; row < component->height_in_blocks; row++) {
            JBLOCKROW blocks = (*source.mem->access_virt_barray)((j_common_ptr)&source, coefficients[c], row, 1, TRUE)[0];
            for (JDIMENSION b = 0; b < component->width_in_blocks; b++) {
                for (int k = 0; k < DCTSIZE2; k++) {
                    long value = (long)blocks[b][k] * old_steps[k], step = new_steps[k];
                    blocks[b][k] = (JCOEF)(value >= 0 ? (value + step / 2) / step : -((step / 2 - value) / step));
                }
            }
        }
    }
    jpeg_mem_dest(&target, &buffer, &size);
    jpeg_write_coefficients(&target, coefficients);
    jpeg_finish_compress(&target);
    jpeg_finish_decompress(&source);
    result = size <= capacity ? (long)size : -2;
    if (result > 0) memcpy(out, buffer, size);
done:
    jpeg_destroy_compress(&target);
    jpeg_destroy_decompress(&source);
    free(buffer);
    return result;
}
