//! PostgreSQL's ISO date and time output → days and microseconds.
//!
//! PostgreSQL's range (4713 BC to 5874897 AD for dates, to 294276 AD for
//! timestamps) is wider than chrono's, so the proleptic Gregorian arithmetic
//! is done here, on whole numbers. Years are astronomical internally: 1 BC is
//! year 0, as PostgreSQL counts too. `infinity` and `-infinity` become the
//! integer extremes, which is how PostgreSQL itself stores them. PostgreSQL's
//! timestamps reach 294276 AD, past i64 microseconds since 1970 (294247 AD):
//! a valid timestamp beyond that, or on an extreme, is `Ok(None)` — never
//! clamped — and the caller keeps its text form. Every PostgreSQL date fits
//! (Julian day 0 to 5874897 AD is well inside i32 days).

use crate::calendar::{days_from_civil, days_in_month};

const MICROS_PER_SECOND: i64 = 1_000_000;
const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;

/// `2024-02-29`, `0044-03-15 BC`, `10000-01-01`, `infinity` → days since 1970-01-01.
pub(super) fn parse_date(text: &str) -> Result<i32, String> {
    match text {
        "infinity" => return Ok(i32::MAX),
        "-infinity" => return Ok(i32::MIN),
        _ => {}
    }
    let (body, bc) = split_era(text);
    let days = civil_days(body, bc)?;
    match i32::try_from(days) {
        Ok(days) if days != i32::MAX && days != i32::MIN => Ok(days),
        _ => Err(format!(
            "{text} is {days} days from 1970-01-01, beyond what an Avro date holds"
        )),
    }
}

/// `23:59:59.999999` → microseconds since midnight; `24:00:00` is allowed
/// (PostgreSQL accepts and keeps it).
pub(super) fn parse_time(text: &str) -> Result<i64, String> {
    let micros = time_of_day(text)?;
    if micros > MICROS_PER_DAY {
        return Err(format!("{text} is after 24:00:00"));
    }
    Ok(micros)
}

/// `2024-01-02 03:04:05.123456`, `… BC`, `infinity` → microseconds since
/// 1970-01-01 00:00; `None` for a valid timestamp those cannot hold.
pub(super) fn parse_timestamp(text: &str) -> Result<Option<i64>, String> {
    match text {
        "infinity" => return Ok(Some(i64::MAX)),
        "-infinity" => return Ok(Some(i64::MIN)),
        _ => {}
    }
    let (body, bc) = split_era(text);
    let (date, time) = body
        .split_once(' ')
        .ok_or("expected YYYY-MM-DD HH:MM:SS[.ffffff]")?;
    timestamp_micros(text, date, bc, time, 0)
}

/// `2024-01-02 03:04:05.123456+00`, `…+05:30`, `…-03:00:12` (historic offsets
/// have seconds), `… BC` (after the offset), `infinity` → microseconds since
/// the Unix epoch; `None` for a valid timestamp those cannot hold. With
/// TimeZone pinned to UTC the offset is `+00`.
pub(super) fn parse_timestamptz(text: &str) -> Result<Option<i64>, String> {
    match text {
        "infinity" => return Ok(Some(i64::MAX)),
        "-infinity" => return Ok(Some(i64::MIN)),
        _ => {}
    }
    if let Some(micros) = fast_utc_timestamptz(text.as_bytes()) {
        return Ok(Some(micros));
    }
    let (body, bc) = split_era(text);
    let (date, rest) = body
        .split_once(' ')
        .ok_or("expected YYYY-MM-DD HH:MM:SS[.ffffff]+HH")?;
    let split = rest.rfind(['+', '-']).ok_or("missing UTC offset")?;
    let (time, offset) = rest.split_at(split);
    timestamp_micros(text, date, bc, time, offset_seconds(offset)?)
}

fn timestamp_micros(
    text: &str,
    date: &str,
    bc: bool,
    time: &str,
    offset_seconds: i64,
) -> Result<Option<i64>, String> {
    let time = time_of_day(time)?;
    if time >= MICROS_PER_DAY {
        return Err(format!("{text}: the time of day is not before 24:00:00"));
    }
    let micros = i128::from(civil_days(date, bc)?) * i128::from(MICROS_PER_DAY) + i128::from(time)
        - i128::from(offset_seconds) * i128::from(MICROS_PER_SECOND);
    Ok(match i64::try_from(micros) {
        Ok(micros) if micros != i64::MAX && micros != i64::MIN => Some(micros),
        _ => None,
    })
}

/// The common case under `TimeZone = UTC`, `YYYY-MM-DD HH:MM:SS[.f…]+00`
/// with a four-digit year AD, parsed byte by byte; `None` sends anything
/// else (and anything invalid) to the general parser, which names the error.
fn fast_utc_timestamptz(b: &[u8]) -> Option<i64> {
    let (body, offset) = b.split_at_checked(b.len().checked_sub(3)?)?;
    if offset != b"+00" || body.len() < 19 {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        body[range].iter().try_fold(0i64, |v, &d| {
            d.is_ascii_digit().then(|| v * 10 + i64::from(d - b'0'))
        })
    };
    if body[4] != b'-'
        || body[7] != b'-'
        || body[10] != b' '
        || body[13] != b':'
        || body[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hours, minutes, seconds) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let micros = match body.len() {
        19 => 0,
        21..=26 if body[19] == b'.' => num(20..body.len())? * 10_i64.pow(26 - body.len() as u32),
        _ => return None,
    };
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hours > 23
        || minutes > 59
        || seconds > 59
    {
        return None;
    }
    Some(
        days_from_civil(year, month, day) * MICROS_PER_DAY
            + ((hours * 60 + minutes) * 60 + seconds) * MICROS_PER_SECOND
            + micros,
    )
}

/// Strips PostgreSQL's era suffix: `(text, true)` for ` BC`.
fn split_era(text: &str) -> (&str, bool) {
    match text.strip_suffix(" BC") {
        Some(body) => (body, true),
        None => (text, false),
    }
}

/// Unsigned decimal digits, `min_len` to `max_len` of them.
fn digits(text: &str, what: &str, min_len: usize, max_len: usize) -> Result<i64, String> {
    let len = text.len();
    if len < min_len || len > max_len || len > 18 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{text:?} is not a valid {what}"));
    }
    // At most 18 digits: accumulating cannot overflow an i64.
    Ok(text
        .bytes()
        .fold(0, |value, b| value * 10 + i64::from(b - b'0')))
}

/// `YYYY-MM-DD` (four or more year digits) → days since 1970-01-01.
fn civil_days(text: &str, bc: bool) -> Result<i64, String> {
    let mut parts = text.split('-');
    let (Some(year), Some(month), Some(day), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(format!("{text:?} is not a YYYY-MM-DD date"));
    };
    let year = digits(year, "year", 4, 9)?;
    if bc && year == 0 {
        return Err(format!("{text:?} BC: there is no year 0 BC"));
    }
    let year = if bc { 1 - year } else { year };
    let month = digits(month, "month", 2, 2)?;
    let day = digits(day, "day", 2, 2)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err(format!("{text:?} is not a calendar date"));
    }
    Ok(days_from_civil(year, month, day))
}

/// `HH:MM:SS[.f…]` (up to six fractional digits) → microseconds.
fn time_of_day(text: &str) -> Result<i64, String> {
    let (hms, fraction) = text.split_once('.').unwrap_or((text, ""));
    let mut parts = hms.split(':');
    let (Some(hours), Some(minutes), Some(seconds), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(format!("{text:?} is not HH:MM:SS[.ffffff]"));
    };
    let hours = digits(hours, "hour", 2, 2)?;
    let minutes = digits(minutes, "minute", 2, 2)?;
    let seconds = digits(seconds, "second", 2, 2)?;
    if hours > 24 || minutes > 59 || seconds > 59 {
        return Err(format!("{text:?} is not a time of day"));
    }
    let micros = if text.contains('.') {
        digits(fraction, "fraction of a second", 1, 6)? * 10_i64.pow(6 - fraction.len() as u32)
    } else {
        0
    };
    Ok(((hours * 60 + minutes) * 60 + seconds) * MICROS_PER_SECOND + micros)
}

/// `+00`, `-05:30`, `+03:00:12` → seconds east of UTC.
fn offset_seconds(offset: &str) -> Result<i64, String> {
    let (sign, body) = match offset.split_at_checked(1) {
        Some(("+", body)) => (1, body),
        Some(("-", body)) => (-1, body),
        _ => return Err(format!("{offset:?} is not a UTC offset")),
    };
    let mut seconds = 0;
    let mut units = [3600, 60, 1].into_iter();
    for part in body.split(':') {
        let unit = units
            .next()
            .ok_or_else(|| format!("{offset:?} is not a UTC offset"))?;
        seconds += digits(part, "UTC offset", 2, 2)? * unit;
    }
    Ok(sign * seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_path_agrees_with_the_general_parser() {
        for text in [
            "2024-02-29 23:59:59.999999+00",
            "1970-01-01 00:00:00+00",
            "1969-12-31 23:59:59.5+00",
            "0001-01-01 00:00:00+00",
            "9999-12-31 12:34:56.123+00",
        ] {
            let fast = fast_utc_timestamptz(text.as_bytes()).expect(text);
            let (date, rest) = text.split_once(' ').unwrap();
            let general = timestamp_micros(text, date, false, &rest[..rest.len() - 3], 0).unwrap();
            assert_eq!(Some(fast), general, "{text}");
        }
        for other in [
            "2024-02-30 00:00:00+00",
            "2024-01-01 24:00:00+00",
            "2024-01-01 00:00:00+05:30",
            "12024-01-01 00:00:00+00",
            "2024-01-01 00:00:00.1234567+00",
            "2024-01-01 00:00:00+00 BC",
        ] {
            assert_eq!(fast_utc_timestamptz(other.as_bytes()), None, "{other}");
        }
    }

    #[test]
    fn dates_across_eras() {
        assert_eq!(parse_date("1970-01-01").unwrap(), 0);
        assert_eq!(parse_date("1970-01-02").unwrap(), 1);
        assert_eq!(parse_date("1969-12-31").unwrap(), -1);
        assert_eq!(parse_date("2000-03-01").unwrap(), 11_017);
        assert_eq!(parse_date("0001-01-01").unwrap(), -719_162);
        // 1 BC is year 0, a leap year.
        assert_eq!(parse_date("0001-12-31 BC").unwrap(), -719_163);
        assert_eq!(parse_date("0001-02-29 BC").unwrap(), -719_469);
        // PostgreSQL's first date (Julian day 0) and its last.
        assert_eq!(parse_date("4714-11-24 BC").unwrap(), -2_440_588);
        assert_eq!(parse_date("5874897-12-31").unwrap(), 2_145_042_905);
        assert_eq!(parse_date("10000-01-01").unwrap(), 2_932_897);
        assert_eq!(parse_date("infinity").unwrap(), i32::MAX);
        assert_eq!(parse_date("-infinity").unwrap(), i32::MIN);
    }

    #[test]
    fn bad_dates_are_refused() {
        for bad in [
            "2023-02-29",
            "0002-02-29 BC",
            "2024-13-01",
            "2024-00-10",
            "2024-1-01",
            "24-01-01",
            "0000-01-01 BC",
            "2024-01-01x",
            "",
            "Infinity",
            "99999999-01-01",
        ] {
            assert!(parse_date(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn times_of_day() {
        assert_eq!(parse_time("00:00:00").unwrap(), 0);
        assert_eq!(parse_time("23:59:59.999999").unwrap(), MICROS_PER_DAY - 1);
        assert_eq!(parse_time("24:00:00").unwrap(), MICROS_PER_DAY);
        assert_eq!(parse_time("12:00:00.5").unwrap(), 43_200_500_000);
        for bad in [
            "24:00:00.000001",
            "12:60:00",
            "12:00",
            "12:00:00.",
            "1:00:00.1234567",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn timestamps_across_eras() {
        let ts = |text| parse_timestamp(text).unwrap();
        assert_eq!(ts("1970-01-01 00:00:01.5"), Some(1_500_000));
        assert_eq!(
            ts("0044-03-15 12:34:56.000001 BC"),
            Some(-63_517_778_703_999_999)
        );
        // PostgreSQL's first timestamp.
        assert_eq!(ts("4714-11-24 00:00:00 BC"), Some(-210_866_803_200_000_000));
        assert_eq!(ts("10000-01-01 00:00:00"), Some(253_402_300_800_000_000));
        assert_eq!(ts("infinity"), Some(i64::MAX));
        assert_eq!(ts("-infinity"), Some(i64::MIN));
        // PostgreSQL's last timestamp does not fit in i64 microseconds since
        // 1970: valid, but the caller keeps its text.
        assert_eq!(ts("294276-12-31 23:59:59.999999"), None);
        // The last one that does is i64::MAX, reserved for infinity.
        assert_eq!(ts("294247-01-10 04:00:54.775807"), None);
        assert_eq!(ts("294247-01-10 04:00:54.775806"), Some(i64::MAX - 1));
        assert!(parse_timestamp("2024-01-01 24:00:00").is_err());
        assert!(parse_timestamp("2024-01-01").is_err());
        assert!(parse_timestamp("294276-02-30 00:00:00").is_err());
    }

    #[test]
    fn timestamptz_offsets_and_eras() {
        let tz = |text| parse_timestamptz(text).unwrap();
        assert_eq!(tz("1970-01-01 01:00:00+01"), Some(0));
        assert_eq!(tz("1970-01-01 00:00:00-00:30"), Some(1_800_000_000));
        assert_eq!(tz("1970-01-01 00:00:00+00:00:12"), Some(-12_000_000));
        assert_eq!(
            tz("2024-03-01 10:00:00.000001+00"),
            Some(1_709_287_200_000_001)
        );
        assert_eq!(
            tz("0044-03-15 12:34:56.000001+00 BC"),
            parse_timestamp("0044-03-15 12:34:56.000001 BC").unwrap()
        );
        assert_eq!(tz("-infinity"), Some(i64::MIN));
        assert_eq!(tz("294276-12-31 23:59:59.999999+00"), None);
        // In range only thanks to its offset.
        assert_eq!(
            tz("294247-01-10 04:00:54.775807+00:00:01"),
            Some(i64::MAX - 1_000_000)
        );
        for bad in [
            "2024-01-01 00:00:00",
            "2024-01-01 00:00:00+1",
            "2024-01-01 00:00:00+01:00:00:00",
            "2024-01-01 00:00:00+",
            "294276-13-31 23:59:59.999999+00",
        ] {
            assert!(parse_timestamptz(bad).is_err(), "{bad}");
        }
    }
}
