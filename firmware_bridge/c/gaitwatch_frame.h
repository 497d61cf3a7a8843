/*
 * gaitwatch wire protocol v1 -- reference frame encoder (C99, no allocation, no libc I/O).
 *
 * Spec: firmware_bridge/PROTOCOL.md. A frame on the wire is
 *     COBS( header | payload | CRC-16/CCITT-FALSE little-endian ) 0x00
 * with header = version u8, type u8, seq u16 LE, t_us u32 LE.
 * Every encoded frame is at most GW_MAX_ENCODED (244) bytes: it fits one BLE notification
 * at ATT MTU 247, and several frames may be concatenated in one notification or write.
 *
 * Each gw_encode_* function writes one complete encoded frame (including the trailing 0x00
 * delimiter) into `out` (capacity `cap`) and returns its length, or 0 if the arguments are
 * invalid or `cap` is too small. The caller owns the sequence counter: use gw_next_seq().
 *
 * Drop gaitwatch_frame.h/.c into a sketch; the tests compile them with the system cc and
 * decode the output with the Python decoder (shared test vectors).
 */
#ifndef GAITWATCH_FRAME_H
#define GAITWATCH_FRAME_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GW_PROTOCOL_VERSION 1u
#define GW_MAX_RAW 242u     /* header + payload + CRC, before COBS */
#define GW_MAX_ENCODED 244u /* after COBS, with the 0x00 delimiter */
#define GW_MAX_SAMPLES_6AXIS 19u
#define GW_MAX_SAMPLES_3AXIS 38u
#define GW_MAX_NAME 32u

enum gw_frame_type {
    GW_SAMPLES = 0x01,
    GW_DEVICE_INFO = 0x02,
    GW_SENSOR_CONFIG = 0x03,
    GW_STATUS = 0x04,
    GW_COMMAND = 0x10
};

/* Sequence counter shared by all frame types of one device (wraps at 65536). */
typedef struct {
    uint16_t seq;
} gw_stream;

static inline uint16_t gw_next_seq(gw_stream *s) { return s->seq++; }

/* CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no final XOR. */
uint16_t gw_crc16(const uint8_t *data, size_t len);

/* `samples`: n rows of `axes` int16 values (ax ay az [gx gy gz]), row-major; axes 3 or 6;
 * 1 <= n <= 19 (6 axes) or 38 (3 axes). t_us: device time of sample 0. */
size_t gw_encode_samples(uint8_t *out, size_t cap, uint16_t seq, uint32_t t_us,
                         const int16_t *samples, uint8_t n, uint8_t axes);

/* `name`: NUL-terminated UTF-8, at most 32 bytes (longer is an error). */
size_t gw_encode_device_info(uint8_t *out, size_t cap, uint16_t seq, uint32_t t_us,
                             uint64_t device_id, uint8_t fw_major, uint8_t fw_minor,
                             uint8_t fw_patch, const char *name);

/* fs_mhz: sample rate in millihertz; physical = raw * scale (m/s^2 per LSB, deg/s per LSB;
 * gyr_scale_dps = 0 and gyr_range_dps = 0 without a gyroscope). */
size_t gw_encode_sensor_config(uint8_t *out, size_t cap, uint16_t seq, uint32_t t_us,
                               uint32_t fs_mhz, uint8_t axes, uint16_t acc_range_g,
                               uint16_t gyr_range_dps, float acc_scale_ms2, float gyr_scale_dps);

/* battery_pct 255 = unknown; flags bit0 FIFO overflow since last status, bit1 charging. */
size_t gw_encode_status(uint8_t *out, size_t cap, uint16_t seq, uint32_t t_us,
                        uint16_t battery_mv, uint8_t battery_pct, uint8_t flags,
                        uint32_t dropped_samples, int16_t temperature_cdeg);

#ifdef __cplusplus
}
#endif
#endif /* GAITWATCH_FRAME_H */
