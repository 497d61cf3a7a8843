/* How a firmware sketch uses the encoder: one 0x00 first (flushes a half-received frame at
 * the host), device info and sensor config at start and once a second, then a samples
 * frame per 19 IMU samples. Here the "IMU" is a sine and the "UART" is stdout, so it builds
 * and runs on a PC:  cc -std=c99 -O2 example_sketch.c gaitwatch_frame.c -lm && ./a.out | ...
 * On a board replace imu_read() and uart_write() with the real drivers. */
#include <math.h>
#include <stdio.h>

#include "gaitwatch_frame.h"

static void uart_write(const uint8_t *p, size_t n) { fwrite(p, 1, n, stdout); }

static void imu_read(uint32_t i, int16_t out[6]) { /* 1 kHz, +-16 g, +-2000 dps */
    double t = i / 1000.0;
    out[0] = 0;
    out[1] = 0;
    out[2] = (int16_t)(2048 + 1024 * sin(2 * 3.14159265 * 1.4 * t)); /* 2048 LSB/g */
    out[3] = (int16_t)(300 * sin(2 * 3.14159265 * 1.4 * t));
    out[4] = 0;
    out[5] = 0;
}

int main(void) {
    static const uint8_t zero = 0;
    gw_stream st = {0};
    uint8_t buf[GW_MAX_ENCODED];
    int16_t block[GW_MAX_SAMPLES_6AXIS * 6];
    uint8_t n = 0;
    uart_write(&zero, 1);
    for (uint32_t i = 0; i < 3000; i++) { /* 3 s of samples */
        uint32_t t_us = i * 1000u;
        if (i % 1000 == 0) {
            uart_write(buf, gw_encode_device_info(buf, sizeof buf, gw_next_seq(&st), t_us,
                                                  0x1234ABCDull, 1, 0, 0, "gw-example"));
            uart_write(buf, gw_encode_sensor_config(buf, sizeof buf, gw_next_seq(&st), t_us, 1000000u, 6, 16,
                                                    2000, 9.80665f / 2048.0f, 1.0f / 16.4f));
        }
        static uint32_t t_first;
        if (n == 0) t_first = t_us;
        imu_read(i, &block[n * 6]);
        if (++n == GW_MAX_SAMPLES_6AXIS) {
            uart_write(buf, gw_encode_samples(buf, sizeof buf, gw_next_seq(&st), t_first, block, n, 6));
            n = 0;
        }
    }
    return 0;
}
