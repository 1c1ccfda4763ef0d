//! How the values of a timestamp or date column stand for instants: what `freshness` dates a
//! table by and what `volume_anomaly` buckets rows by. Instants (`timestamptz`) are read as they
//! are; times without a zone and dates (as their midnight) are wall-clock times in a zone the
//! rule names (`timezone:`, an IANA name, default UTC).

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::{suggest, Column, LogicalType, RuleError, Spanned};

/// How a column's values are dated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dating {
    /// Timestamps with a zone (`timestamptz`): instants.
    Instant,
    /// Timestamps without a zone: wall-clock times in `timezone:`.
    WallClock,
    /// Dates: their midnight in `timezone:`.
    Day,
}

impl Dating {
    pub fn of(logical: LogicalType) -> Option<Self> {
        match logical {
            LogicalType::TimestampTz => Some(Dating::Instant),
            LogicalType::Timestamp => Some(Dating::WallClock),
            LogicalType::Date => Some(Dating::Day),
            _ => None,
        }
    }
}

/// How `column` of a table (its `columns`) is dated, and the zone its wall-clock values are read
/// in (`zone`, the rule's `timezone:`, else UTC). The error is why it cannot be dated, for a
/// `CheckError::CannotMeasure`: not a column, not a time (`purpose` says what the check dates
/// and why text will not do), or a `timezone:` given for a column of instants.
pub fn column_dating(
    columns: &[Column],
    column: &str,
    zone: Option<Tz>,
    purpose: &str,
) -> Result<(Dating, Tz), String> {
    let Some(found) = columns.iter().find(|c| c.name == column) else {
        let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
        return Err(format!(
            "`{column}` is not one of its columns ({})",
            names.join(", ")
        ));
    };
    let Some(dating) = Dating::of(found.logical) else {
        return Err(format!(
            "`{column}` is {} ({}); {purpose}",
            found.engine_type, found.logical
        ));
    };
    if let (Dating::Instant, Some(zone)) = (dating, zone) {
        return Err(format!(
            "`timezone: {zone}` reads times without a zone, and `{column}` ({}) holds instants; \
             remove `timezone`",
            found.engine_type
        ));
    }
    Ok((dating, zone.unwrap_or(Tz::UTC)))
}

/// A rule's `timezone:` (an IANA name), or where it went wrong; `what` names the rule part
/// ("check #1"). Only a near miss is suggested: a list of every zone helps nobody.
pub fn parse_zone(name: &Spanned<String>, what: &str) -> Result<Tz, RuleError> {
    name.value.trim().parse::<Tz>().map_err(|_| {
        let error = RuleError::new(
            name.location.clone(),
            format!("unknown time zone `{}` in {what}", name.value),
        );
        match suggest(&name.value, chrono_tz::TZ_VARIANTS.iter().map(|z| z.name()))
            .filter(|help| help.starts_with("did you mean"))
        {
            Some(help) => error.with_help(help),
            None => error.with_help(
                "write an IANA time zone name, e.g. `America/Chicago`, `Europe/Berlin` or `UTC`",
            ),
        }
    })
}

/// The instant a column's value stands for, as a source renders it: RFC 3339 or PostgreSQL's
/// `2026-12-02 10:03:00+00` for instants; zone-less times and dates in `zone`.
pub fn read_time(text: &str, dating: Dating, zone: Tz) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    let not_a = |what: &str| format!("`{text}` is not {what}");
    let wall_clock = match dating {
        Dating::Instant => {
            return read_instant(text).ok_or_else(|| not_a("a timestamp with a zone"));
        }
        Dating::WallClock => read_naive(text).ok_or_else(|| not_a("a timestamp"))?,
        Dating::Day => NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map_err(|_| not_a("a date"))?
            .and_time(chrono::NaiveTime::MIN),
    };
    in_zone(wall_clock, zone).ok_or_else(|| {
        format!(
            "`{text}` never occurs in {zone} (clocks skip it when daylight saving time starts), \
             so the column is likely not in that zone; check `timezone:`"
        )
    })
}

/// The wall-clock time a column's value shows in the zone it is read in: an instant's in UTC
/// (instants are never read in another zone), a zone-less time's or date's own. Tolerant of
/// what an engine makes of a zone-less value: a date may come back as a timestamp, and
/// PostgreSQL's `date_trunc` of a date as a timestamp with the session's zone, whose wall-clock
/// part is the date's.
pub fn read_wall_clock(text: &str, dating: Dating) -> Result<NaiveDateTime, String> {
    let text = text.trim();
    let read = match dating {
        Dating::Instant => read_instant(text).map(|at| at.naive_utc()),
        Dating::WallClock | Dating::Day => read_naive(text)
            .or_else(|| {
                NaiveDate::parse_from_str(text, "%Y-%m-%d")
                    .ok()
                    .map(|d| d.and_time(chrono::NaiveTime::MIN))
            })
            .or_else(|| read_zoned(text).map(|at| at.naive_local())),
    };
    read.ok_or_else(|| match dating {
        Dating::Instant => format!("`{text}` is not a timestamp with a zone"),
        Dating::WallClock | Dating::Day => format!("`{text}` is not a timestamp or a date"),
    })
}

/// The instant a wall-clock time in `zone` stands for; `None` for a time the zone skips
/// (clocks turned forward). A time that occurs twice (clocks turned back) is taken at its
/// first, older occurrence, so an age is never understated.
pub fn in_zone(wall_clock: NaiveDateTime, zone: Tz) -> Option<DateTime<Utc>> {
    match zone.from_local_datetime(&wall_clock) {
        LocalResult::Single(at) => Some(at.with_timezone(&Utc)),
        LocalResult::Ambiguous(first, second) => Some(first.min(second).with_timezone(&Utc)),
        LocalResult::None => None,
    }
}

fn read_zoned(text: &str) -> Option<DateTime<chrono::FixedOffset>> {
    DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%#z"))
        .ok()
}

fn read_instant(text: &str) -> Option<DateTime<Utc>> {
    read_zoned(text).map(|t| t.with_timezone(&Utc))
}

fn read_naive(text: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f"))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::SecondsFormat;
    use rstest::rstest;

    #[rstest]
    #[case::rfc3339_utc("2026-12-02T10:03:00Z", Dating::Instant, "UTC", "2026-12-02T10:03:00Z")]
    #[case::rfc3339_offset(
        "2026-12-02T12:03:00.5+02:00",
        Dating::Instant,
        "UTC",
        "2026-12-02T10:03:00.500Z"
    )]
    #[case::postgres_timestamptz(
        "2026-12-02 10:03:00+00",
        Dating::Instant,
        "UTC",
        "2026-12-02T10:03:00Z"
    )]
    #[case::postgres_offset(
        "2026-12-02 04:03:00.123456-06",
        Dating::Instant,
        "UTC",
        "2026-12-02T10:03:00.123456Z"
    )]
    #[case::naive_utc(
        "2026-12-02T10:03:00",
        Dating::WallClock,
        "UTC",
        "2026-12-02T10:03:00Z"
    )]
    #[case::naive_space(
        "2026-12-02 10:03:00.25",
        Dating::WallClock,
        "UTC",
        "2026-12-02T10:03:00.250Z"
    )]
    #[case::naive_chicago_winter(
        "2026-12-02 04:03:00",
        Dating::WallClock,
        "America/Chicago",
        "2026-12-02T10:03:00Z"
    )]
    #[case::naive_chicago_summer(
        "2026-07-02 05:03:00",
        Dating::WallClock,
        "America/Chicago",
        "2026-07-02T10:03:00Z"
    )]
    #[case::date_midnight_utc("2026-12-02", Dating::Day, "UTC", "2026-12-02T00:00:00Z")]
    #[case::date_midnight_tokyo("2026-12-02", Dating::Day, "Asia/Tokyo", "2026-12-01T15:00:00Z")]
    // Clocks turned back: 01:30 happens twice; the first (older) is taken.
    #[case::ambiguous(
        "2026-11-01 01:30:00",
        Dating::WallClock,
        "America/Chicago",
        "2026-11-01T06:30:00Z"
    )]
    fn values_are_read_as_instants(
        #[case] text: &str,
        #[case] dating: Dating,
        #[case] zone: &str,
        #[case] expected: &str,
    ) {
        let zone: Tz = zone.parse().unwrap();
        assert_eq!(
            read_time(text, dating, zone).map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
            Ok(expected.into())
        );
    }

    #[rstest]
    #[case::gap(
        "2026-03-08 02:30:00",
        Dating::WallClock,
        "never occurs in America/Chicago"
    )]
    #[case::zone_less_instant(
        "2026-12-02 10:03:00",
        Dating::Instant,
        "is not a timestamp with a zone"
    )]
    #[case::not_a_date("12/02/2026", Dating::Day, "is not a date")]
    #[case::infinity("infinity", Dating::WallClock, "is not a timestamp")]
    fn values_that_date_nothing_are_errors(
        #[case] text: &str,
        #[case] dating: Dating,
        #[case] message: &str,
    ) {
        let error = read_time(text, dating, chrono_tz::America::Chicago).unwrap_err();
        assert!(error.contains(message), "{error}");
    }

    /// What engines answer for `date_trunc` of each kind of column, as the wall-clock start.
    #[rstest]
    #[case::datafusion_instant("2026-11-20T00:00:00Z", Dating::Instant)]
    #[case::postgres_instant("2026-11-20 00:00:00+00", Dating::Instant)]
    #[case::instant_offset("2026-11-20 01:00:00+01", Dating::Instant)]
    #[case::datafusion_naive("2026-11-20T00:00:00", Dating::WallClock)]
    #[case::postgres_naive("2026-11-20 00:00:00", Dating::WallClock)]
    #[case::trino_date("2026-11-20", Dating::Day)]
    #[case::datafusion_date("2026-11-20T00:00:00", Dating::Day)]
    // PostgreSQL's date_trunc of a date: a timestamptz in the session's zone.
    #[case::postgres_date("2026-11-20 00:00:00+00", Dating::Day)]
    #[case::postgres_date_other_session("2026-11-20 00:00:00-06", Dating::Day)]
    fn truncated_values_read_as_wall_clock(#[case] text: &str, #[case] dating: Dating) {
        assert_eq!(
            read_wall_clock(text, dating),
            Ok(NaiveDate::from_ymd_opt(2026, 11, 20)
                .unwrap()
                .and_time(chrono::NaiveTime::MIN))
        );
    }

    #[rstest]
    #[case::zone_less_instant(
        "2026-11-20 00:00:00",
        Dating::Instant,
        "not a timestamp with a zone"
    )]
    #[case::text("yesterday", Dating::Day, "`yesterday` is not a timestamp or a date")]
    fn truncated_values_that_are_no_time_are_errors(
        #[case] text: &str,
        #[case] dating: Dating,
        #[case] message: &str,
    ) {
        let error = read_wall_clock(text, dating).unwrap_err();
        assert!(error.contains(message), "{error}");
    }
}
