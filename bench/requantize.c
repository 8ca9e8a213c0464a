/* Requantize a baseline JPEG in the DCT domain with libjpeg: entropy-decode its coefficients, scale each
 * by old step / new step (rounded half away from zero, clamped to baseline's range) to the tables
 * libjpeg writes at `quality`, entropy-encode them again. No inverse or forward DCT, no colour
 * conversion, no chroma resampling. A measurement of bench/requantize.py, not part of tierserve.
 * Returns the output's length, -1 when libjpeg refused the stream (warnings included) or a component
 * uses a table other than 0 and 1 (the two jpeg_set_quality writes), -2 when `capacity` is too small. */
#include <setjmp.h>
#include <stdio.h> /* jpeglib.h needs FILE */
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>

/* Everything libjpeg changes between setjmp and a longjmp lives here, on the heap, so that it is still
 * valid after the jump (automatic variables changed in between would not be). */
struct job {
    struct jpeg_decompress_struct source;
    struct jpeg_compress_struct target;
    struct jpeg_error_mgr manager;
    jmp_buf jump;
    unsigned char *buffer;
    unsigned long size;
};

static void on_error(j_common_ptr info) { longjmp(((struct job *)info->client_data)->jump, 1); }

static void on_message(j_common_ptr info, int level) {
    if (level < 0) longjmp(((struct job *)info->client_data)->jump, 1);
}

static JCOEF requantized(JCOEF coefficient, UINT16 old_step, UINT16 new_step) {
    long value = (long)coefficient * old_step, step = new_step;
    long scaled = value >= 0 ? (value + step / 2) / step : -((step / 2 - value) / step);
    return (JCOEF)(scaled > 1023 ? 1023 : scaled < -1023 ? -1023 : scaled);
}

static void transcode(struct job *job, const unsigned char *in, unsigned long in_size, int quality) {
    jpeg_mem_src(&job->source, in, in_size);
    jpeg_read_header(&job->source, TRUE);
    jvirt_barray_ptr *coefficients = jpeg_read_coefficients(&job->source);
    jpeg_copy_critical_parameters(&job->source, &job->target);
    jpeg_set_quality(&job->target, quality, TRUE);
    for (int c = 0; c < job->source.num_components; c++) {
        jpeg_component_info *component = &job->source.comp_info[c];
        const JQUANT_TBL *old_table = component->quant_table;
        if (old_table == NULL || component->quant_tbl_no > 1) longjmp(job->jump, 1);
        const UINT16 *old_steps = old_table->quantval;
        const UINT16 *new_steps = job->target.quant_tbl_ptrs[component->quant_tbl_no]->quantval;
        for (JDIMENSION row = 0; row < component->height_in_blocks; row++) {
            JBLOCKARRAY rows = (*job->source.mem->access_virt_barray)(
                (j_common_ptr)&job->source, coefficients[c], row, 1, TRUE);
            for (JDIMENSION b = 0; b < component->width_in_blocks; b++)
                for (int k = 0; k < DCTSIZE2; k++)
                    rows[0][b][k] = requantized(rows[0][b][k], old_steps[k], new_steps[k]);
        }
    }
    jpeg_mem_dest(&job->target, &job->buffer, &job->size);
    jpeg_write_coefficients(&job->target, coefficients);
    jpeg_finish_compress(&job->target);
    jpeg_finish_decompress(&job->source);
}

long bench_requantize(const unsigned char *in, unsigned long in_size, int quality, unsigned char *out,
                      unsigned long capacity) {
    struct job *job = calloc(1, sizeof *job);
    volatile long result = -1;
    if (job == NULL) return -1;
    job->source.err = job->target.err = jpeg_std_error(&job->manager);
    job->manager.error_exit = on_error;
    job->manager.emit_message = on_message;
    job->source.client_data = job->target.client_data = job;
    if (setjmp(job->jump) == 0) {
        jpeg_create_decompress(&job->source);
        jpeg_create_compress(&job->target);
        transcode(job, in, in_size, quality);
        result = job->size <= capacity ? (long)job->size : -2;
        if (result > 0) memcpy(out, job->buffer, job->size);
    }
    jpeg_destroy_compress(&job->target);
    jpeg_destroy_decompress(&job->source);
    free(job->buffer);
    free(job);
    return result;
}
