/* Test-vector writer: reads one frame description per line on stdin, writes the encoded
 * frames to stdout (binary). Used by tests/test_protocol_c.py; not needed on a device.
 *   I seq t_us device_id fw_major fw_minor fw_patch name
 *   C seq t_us fs_mhz axes acc_range_g gyr_range_dps acc_scale gyr_scale
 *   B seq t_us battery_mv pct flags dropped temp_cdeg
 *   S seq t_us axes n v0 v1 ... (n*axes int16 values)
 * Exit status 2 on a line the encoder rejects (reported on stderr). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "gaitwatch_frame.h"

int main(void) {
    char kind;
    unsigned seq;
    unsigned long t_us;
    uint8_t out[GW_MAX_ENCODED];
    int line = 0;
    while (scanf(" %c %u %lu", &kind, &seq, &t_us) == 3) {
        size_t n_out = 0;
        line++;
        if (kind == 'S') {
            unsigned axes, n;
            int16_t s[GW_MAX_SAMPLES_3AXIS * 3];
            if (scanf("%u %u", &axes, &n) != 2 || n * axes > sizeof s / sizeof s[0]) return 2;
            for (unsigned i = 0; i < n * axes; i++) {
                int v;
                if (scanf("%d", &v) != 1) return 2;
                s[i] = (int16_t)v;
            }
            n_out = gw_encode_samples(out, sizeof out, (uint16_t)seq, (uint32_t)t_us, s, (uint8_t)n, (uint8_t)axes);
        } else if (kind == 'I') {
            unsigned long long dev;
            unsigned ma, mi, pa;
            char name[64];
            if (scanf("%llu %u %u %u %63s", &dev, &ma, &mi, &pa, name) != 5) return 2;
            n_out = gw_encode_device_info(out, sizeof out, (uint16_t)seq, (uint32_t)t_us, (uint64_t)dev,
                                          (uint8_t)ma, (uint8_t)mi, (uint8_t)pa, name);
        } else if (kind == 'C') {
            unsigned long fs;
            unsigned axes, ar, gr;
            float as, gs;
            if (scanf("%lu %u %u %u %f %f", &fs, &axes, &ar, &gr, &as, &gs) != 6) return 2;
            n_out = gw_encode_sensor_config(out, sizeof out, (uint16_t)seq, (uint32_t)t_us, (uint32_t)fs,
                                            (uint8_t)axes, (uint16_t)ar, (uint16_t)gr, as, gs);
        } else if (kind == 'B') {
            unsigned mv, pct, flags;
            unsigned long dropped;
            int temp;
            if (scanf("%u %u %u %lu %d", &mv, &pct, &flags, &dropped, &temp) != 5) return 2;
            n_out = gw_encode_status(out, sizeof out, (uint16_t)seq, (uint32_t)t_us, (uint16_t)mv,
                                     (uint8_t)pct, (uint8_t)flags, (uint32_t)dropped, (int16_t)temp);
        }
        if (n_out == 0) {
            fprintf(stderr, "line %d: encoder rejected frame kind %c\n", line, kind);
            return 2;
        }
        fwrite(out, 1, n_out, stdout);
    }
    return 0;
}
