//! Unit tests of [`super`]: byte vectors from MySQL's own documentation of
//! the formats, and every fsp against an encoder that restates MySQL's
//! (`TIME_to_longlong_time_packed` + `my_time_packed_to_binary`,
//! `TIME_to_longlong_datetime_packed` + `my_datetime_packed_to_binary`).

use super::*;

/// MySQL's TIME2 encoder: packed `±(h << 12 | m << 6 | s) << 24 | µs`, then
/// the fsp-dependent binary form (C's `>>` floors, `%` truncates, as Rust's).
fn encode_time2(negative: bool, h: i64, m: i64, s: i64, us: i64, fsp: u8) -> Vec<u8> {
    let magnitude = (((h << 12) | (m << 6) | s) << 24) + us;
    let nr = if negative { -magnitude } else { magnitude };
    let int3 = |v: i64| v.to_be_bytes()[5..].to_vec();
    let frac = nr % (1 << 24);
    match fsp {
        0 => int3(TIME_INT_OFFSET + (nr >> 24)),
        1 | 2 => {
            let mut out = int3(TIME_INT_OFFSET + (nr >> 24));
            out.push((frac / 10_000) as i8 as u8);
            out
        }
        3 | 4 => {
            let mut out = int3(TIME_INT_OFFSET + (nr >> 24));
            out.extend_from_slice(&((frac / 100) as i16).to_be_bytes());
            out
        }
        _ => (nr + TIME_OFFSET).to_be_bytes()[2..].to_vec(),
    }
}

fn encode_datetime2(t: &DateTime, fsp: u8) -> Vec<u8> {
    let ymd = ((i64::from(t.year) * 13 + i64::from(t.month)) << 5) | i64::from(t.day);
    let hms = (i64::from(t.hour) << 12) | (i64::from(t.minute) << 6) | i64::from(t.second);
    let int_part = (ymd << 17) | hms;
    let mut out = (int_part + DATETIME_INT_OFFSET).to_be_bytes()[3..].to_vec();
    let us = i64::from(t.micros);
    match fsp {
        1 | 2 => out.push((us / 10_000) as i8 as u8),
        3 | 4 => out.extend_from_slice(&((us / 100) as i16).to_be_bytes()),
        5 | 6 => out.extend_from_slice(&(us as i32).to_be_bytes()[1..]),
        _ => {}
    }
    out
}

#[test]
fn time2_vectors_from_mysqls_own_table() {
    // my_time.cc's comment on negative TIME(2): disk value → time value.
    for (bytes, micros) in [
        ([0x80, 0x00, 0x00, 0x00], 0),
        ([0x7F, 0xFF, 0xFF, 0xFF], -10_000),
        ([0x7F, 0xFF, 0xFF, 0x9D], -990_000),
        ([0x7F, 0xFF, 0xFF, 0x00], -1_000_000),
        ([0x7F, 0xFF, 0xFE, 0xFF], -1_010_000),
        ([0x7F, 0xFF, 0xFE, 0xF6], -1_100_000),
    ] {
        assert_eq!(time2_micros(&bytes, 2).unwrap(), micros, "{bytes:02x?}");
    }
    // mysql_common 0.37 panics on exactly these (u32 - 0x100); here: the value.
    assert_eq!(
        time2_micros(&[0x7F, 0xFF, 0xFE, 0xCE], 2).unwrap(),
        -1_500_000
    );
    assert_eq!(
        time2_micros(&[0x7F, 0xFF, 0xFE, 0xCE], 1).unwrap(),
        -1_500_000
    );
}

#[test]
fn time2_extremes_by_hand() {
    // 838:59:59 → hms 0x346EFB; + 0x800000.
    let max = ((838 * 60 + 59) * 60 + 59) * 1_000_000;
    assert_eq!(time2_micros(&[0xB4, 0x6E, 0xFB], 0).unwrap(), max);
    assert_eq!(time2_micros(&[0x4B, 0x91, 0x05], 0).unwrap(), -max);
    assert_eq!(time2_micros(&[0x4B, 0x91, 0x05, 0, 0, 0], 6).unwrap(), -max);
    assert_eq!(time2_micros(&[0x4B, 0x91, 0x05, 0, 0], 4).unwrap(), -max);
    // -00:00:00.000001 at fsp 6: the packed -1 + 2^47.
    assert_eq!(
        time2_micros(&[0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], 6).unwrap(),
        -1
    );
}

#[test]
fn time2_round_trips_at_every_fsp_and_sign() {
    for fsp in 0..=6u8 {
        let unit = 10_i64.pow(6 - u32::from(fsp));
        for h in [0, 1, 23, 24, 99, 255, 256, 837, 838] {
            for (m, s) in [(0, 0), (0, 1), (59, 59), (30, 7)] {
                for us in [0, 1, 5, 9, 10, 99, 500, 999_999 / unit] {
                    let us = us * unit;
                    if us > 999_999 {
                        continue;
                    }
                    for negative in [false, true] {
                        let bytes = encode_time2(negative, h, m, s, us, fsp);
                        assert_eq!(bytes.len(), time2_len(fsp).unwrap());
                        let magnitude = ((h * 60 + m) * 60 + s) * 1_000_000 + us;
                        let expected = if negative { -magnitude } else { magnitude };
                        assert_eq!(
                            time2_micros(&bytes, fsp).unwrap(),
                            expected,
                            "fsp {fsp}, {negative} {h}:{m}:{s}.{us}: {bytes:02x?}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn damaged_temporal_bytes_are_errors_not_panics() {
    // Minute 63 (0x3F << 6) at hour 0.
    assert!(time2_micros(&[0x80, 0x0F, 0xC0], 0).is_err());
    // A TIME(4) fraction of 0x2710 = 10 000 hundreds of µs is 1 s.
    assert!(time2_micros(&[0x80, 0x00, 0x00, 0x27, 0x10], 4).is_err());
    assert!(time2_micros(&[0x80, 0x00], 0).is_err());
    assert!(time2_micros(&[0x80, 0, 0, 0], 7).is_err());
    for fsp in 0..=6 {
        for len in 0..10 {
            let bytes = vec![0xFF; len];
            let _ = time2_micros(&bytes, fsp);
            let _ = datetime2(&bytes, fsp);
            let _ = timestamp2(&bytes, fsp);
        }
    }
    // Hour 31 in a DATETIME2.
    let t = DateTime {
        year: 2024,
        month: 1,
        day: 1,
        hour: 31,
        minute: 0,
        second: 0,
        micros: 0,
    };
    assert!(datetime2(&encode_datetime2(&t, 0), 0).is_err());
    // Below the offset: a negative DATETIME2.
    assert!(datetime2(&[0x7F, 0xFF, 0xFF, 0xFF, 0xFF], 0).is_err());
    // A TIMESTAMP(6) fraction of 2^23 - 1 µs.
    assert!(timestamp2(&[0, 0, 0, 1, 0x7F, 0xFF, 0xFF], 6).is_err());
    assert_eq!(time_parts_micros(false, u32::MAX, 0, 0, 0, 0), None);
    assert_eq!(time_parts_micros(false, 0, 0, 60, 0, 0), None);
}

#[test]
fn datetime2_at_every_fsp() {
    // 2012-06-21 15:45:17.765432 at fsp 6, as MySQL stores it.
    let bytes = [0x99, 0x8C, 0xAA, 0xFB, 0x51, 0x0B, 0xAD, 0xF8];
    let expected = DateTime {
        year: 2012,
        month: 6,
        day: 21,
        hour: 15,
        minute: 45,
        second: 17,
        micros: 765_432,
    };
    assert_eq!(datetime2(&bytes, 6).unwrap(), expected);
    assert_eq!(encode_datetime2(&expected, 6), bytes);
    for fsp in 0..=6u8 {
        let unit = 10_u32.pow(6 - u32::from(fsp));
        for (year, month, day, hour, minute, second, micros) in [
            (0, 0, 0, 0, 0, 0, 0),
            (1000, 1, 1, 0, 0, 0, 1),
            (9999, 12, 31, 23, 59, 59, 999_999),
            (2024, 0, 10, 12, 0, 0, 5),
            (1970, 1, 1, 0, 0, 1, 500_000),
        ] {
            let t = DateTime {
                year,
                month,
                day,
                hour,
                minute,
                second,
                micros: micros / unit * unit,
            };
            let bytes = encode_datetime2(&t, fsp);
            assert_eq!(bytes.len(), datetime2_len(fsp).unwrap());
            assert_eq!(datetime2(&bytes, fsp).unwrap(), t, "fsp {fsp}");
        }
    }
}

#[test]
fn timestamp2_and_the_old_forms() {
    assert_eq!(
        timestamp2(&[0x7F, 0xFF, 0xFF, 0xFF], 0).unwrap(),
        (i64::from(i32::MAX), 0)
    );
    // Unsigned seconds: past 2038 (MariaDB 11.5+).
    assert_eq!(
        timestamp2(&[0xFF, 0xFF, 0xFF, 0xFF], 0).unwrap(),
        (4_294_967_295, 0)
    );
    assert_eq!(timestamp2(&[0, 0, 0, 1, 99], 2).unwrap(), (1, 990_000));
    assert_eq!(
        timestamp2(&[0, 0, 0, 1, 0x03, 0xE7], 3).unwrap(),
        (1, 99_900)
    );
    assert_eq!(
        timestamp2(&[0, 0, 0, 1, 0x0F, 0x42, 0x3F], 6).unwrap(),
        (1, 999_999)
    );
    // Old TIME: little-endian signed ±HHMMSS.
    let raw = |v: i32| v.to_le_bytes()[..3].to_vec();
    let max = ((838 * 60 + 59) * 60 + 59) * 1_000_000;
    assert_eq!(time_old_micros(&raw(8_385_959)).unwrap(), max);
    assert_eq!(time_old_micros(&raw(-8_385_959)).unwrap(), -max);
    assert_eq!(time_old_micros(&raw(-1)).unwrap(), -1_000_000);
    assert!(time_old_micros(&raw(160)).is_err());
    // Old DATETIME: little-endian YYYYMMDDhhmmss.
    assert_eq!(
        datetime_old(&20_240_229_235_958u64.to_le_bytes()).unwrap(),
        DateTime {
            year: 2024,
            month: 2,
            day: 29,
            hour: 23,
            minute: 59,
            second: 58,
            micros: 0
        }
    );
    assert!(datetime_old(&20_240_229_246_000u64.to_le_bytes()).is_err());
}

#[test]
fn decoded_values_take_mysql_commons_forms() {
    let max = ((838 * 60 + 59) * 60 + 59) * 1_000_000;
    assert_eq!(
        Decoded::Time(-max - 1).to_mysql(),
        My::Time(true, 34, 22, 59, 59, 1)
    );
    assert_eq!(
        Decoded::Timestamp(86_400, 500_000).to_mysql(),
        My::Bytes(b"86400.500000".to_vec())
    );
    assert_eq!(
        Temporal::of(ColumnType::MYSQL_TYPE_TIME2, &[2]),
        Some(Temporal::Time2 { fsp: 2 })
    );
    assert_eq!(Temporal::of(ColumnType::MYSQL_TYPE_LONG, &[]), None);
    assert_eq!(
        Temporal::Timestamp.decode(&[1, 0, 0, 0]).unwrap(),
        Decoded::Timestamp(1, 0)
    );
}
