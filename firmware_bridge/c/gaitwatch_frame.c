/* gaitwatch wire protocol v1 -- reference encoder. See gaitwatch_frame.h and PROTOCOL.md. */
#include "gaitwatch_frame.h"

#include <string.h>

uint16_t gw_crc16(const uint8_t *data, size_t len) {
    uint16_t crc = 0xFFFFu;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)((uint16_t)data[i] << 8);
        for (int b = 0; b < 8; b++) {
            crc = (crc & 0x8000u) ? (uint16_t)((crc << 1) ^ 0x1021u) : (uint16_t)(crc << 1);
        }
    }
    return crc;
}

static void put_u16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void put_f32(uint8_t *p, float f) {
    uint32_t v;
    memcpy(&v, &f, sizeof v); /* IEEE 754 binary32, sent little-endian */
    put_u32(p, v);
}

static size_t header(uint8_t *raw, uint8_t type, uint16_t seq, uint32_t t_us) {
    raw[0] = GW_PROTOCOL_VERSION;
    raw[1] = type;
    put_u16(raw + 2, seq);
    put_u32(raw + 4, t_us);
    return 8;
}

/* Appends the CRC to raw[0..len) and COBS-encodes it into out, with the 0x00 delimiter.
 * COBS: S. Cheshire, M. Baker, IEEE/ACM Trans. Networking 7(2), 1999. */
static size_t finish(uint8_t *raw, size_t len, uint8_t *out, size_t cap) {
    put_u16(raw + len, gw_crc16(raw, len));
    len += 2;
    if (len > GW_MAX_RAW || cap < len + 2) return 0;
    size_t code_pos = 0, o = 1;
    uint8_t code = 1;
    for (size_t i = 0; i < len; i++) {
        if (raw[i] == 0) {
            out[code_pos] = code;
            code_pos = o++;
            code = 1;
        } else {
            out[o++] = raw[i];
            if (++code == 0xFF) { /* never reached for len <= 242, kept for completeness */
                out[code_pos] = code;
                code_pos = o++;
                code = 1;
            }
        }
    }
    out[code_pos] = code;
    out[o++] = 0;
    return o;
}

size_t gw_encode_samples(uint8_t *out, size_t cap, uint16_t seq, uint32_t t_us,
                         const int16_t *samples, uint8_t n, uint8_t axes) {
    uint8_t raw[GW_MAX_RAW];
    if (!(axes == 3 || axes == 6) || n == 0) return 0;
    if (n > (axes == 6 ? GW_MAX_SAMPLES_6AXIS : GW_MAX_SAMPLES_3AXIS)) return 0;
    size_t len = header(raw, GW_SAMPLES, seq, t_us);
    raw[len++] = n;
    raw[len++] = axes;
    for (size_t i = 0; i < (size_t)n * axes; i++) {
        put_u16(raw + len, (uint16_t)samples[i]);
        len += 2;
    }
    return finish(raw, len, out, cap);
}

size_t gw_encode_device_info(uint8_t *out, size_t cap, uint16_t seq, uint32_t t_us,
                             uint64_t device_id, uint8_t fw_major, uint8_t fw_minor,
                             uint8_t fw_patch, const char *name) {
    uint8_t raw[GW_MAX_RAW];
    size_t name_len = 0;
    while (name && name[name_len] != '\0') {
        if (++name_len > GW_MAX_NAME) return 0;
    }
    size_t len = header(raw, GW_DEVICE_INFO, seq, t_us);
    put_u32(raw + len, (uint32_t)(device_id & 0xFFFFFFFFu));
    put_u32(raw + len + 4, (uint32_t)(device_id >> 32));
    len += 8;
    raw[len++] = fw_major;
    raw[len++] = fw_minor;
    raw[len++] = fw_patch;
    raw[len++] = 0; /* reserved */
    if (name_len) memcpy(raw + len, name, name_len);
    len += name_len;
    return finish(raw, len, out, cap);
}

size_t gw_encode_sensor_config(uint8_t *out, size_t cap, uint16_t seq, uint32_t t_us,
                               uint32_t fs_mhz, uint8_t axes, uint16_t acc_range_g,
                               uint16_t gyr_range_dps, float acc_scale_ms2, float gyr_scale_dps) {
    uint8_t raw[GW_MAX_RAW];
    if (!(axes == 3 || axes == 6) || fs_mhz == 0) return 0;
    size_t len = header(raw, GW_SENSOR_CONFIG, seq, t_us);
    put_u32(raw + len, fs_mhz);
    raw[len + 4] = axes;
    raw[len + 5] = 0; /* reserved */
    put_u16(raw + len + 6, acc_range_g);
    put_u16(raw + len + 8, gyr_range_dps);
    put_f32(raw + len + 10, acc_scale_ms2);
    put_f32(raw + len + 14, gyr_scale_dps);
    len += 18;
    return finish(raw, len, out, cap);
}

size_t gw_encode_status(uint8_t *out, size_t cap, uint16_t seq, uint32_t t_us,
                        uint16_t battery_mv, uint8_t battery_pct, uint8_t flags,
                        uint32_t dropped_samples, int16_t temperature_cdeg) {
    uint8_t raw[GW_MAX_RAW];
    size_t len = header(raw, GW_STATUS, seq, t_us);
    put_u16(raw + len, battery_mv);
    raw[len + 2] = battery_pct;
    raw[len + 3] = flags;
    put_u32(raw + len + 4, dropped_samples);
    put_u16(raw + len + 8, (uint16_t)temperature_cdeg);
    len += 10;
    return finish(raw, len, out, cap);
}
