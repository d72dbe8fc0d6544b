//! Verify's verdict for a person (text) and for the shell (exit code):
//! verify's own counts, the SQL oracle's beside them, and one verdict that
//! is OK only when both found nothing.

use super::{oracle, VerifyReport};

/// Prints the report for a person.
pub fn print_report(report: &VerifyReport, topic: &str) {
    println!("verify {} against topic {topic}", report.table);
    if let Some(c) = &report.connector {
        println!(
            "connector: source snapshot at {}, {} {} ({}, waited {:.1}s)",
            c.snapshot,
            c.confirmed_by,
            c.confirmed.as_deref().unwrap_or("nothing"),
            if c.caught_up {
                "caught up"
            } else if c.idle {
                "idle: nothing pending"
            } else {
                "LAGGING"
            },
            c.waited_seconds
        );
    }
    if report.masked {
        println!(
            "source rows masked as the connector masks them (exclude, hash, constant columns)"
        );
    }
    println!(
        "source rows: {}  rebuilt rows: {}  missing: {}  extra: {}  different: {}",
        report.source_rows, report.rebuilt_rows, report.missing, report.extra, report.different
    );
    if report.lag > 0 || report.in_flight > 0 {
        println!(
            "not judged: lag: {}  in flight: {} (changed after the snapshot)",
            report.lag, report.in_flight
        );
    }
    if !report.first_differences.is_empty() {
        println!("first differences:");
        for d in &report.first_differences {
            println!("  {:<9} {}", d.kind, d.key);
            for c in &d.columns {
                println!(
                    "            {}: source {} / rebuilt {}",
                    c.column, c.source, c.rebuilt
                );
            }
        }
    }
    if !report.ranges.is_empty() {
        println!("key ranges with differences ({}):", report.differing_ranges);
        for r in report.ranges.iter().take(5) {
            println!(
                "  {} … {} ({} source rows, {} rebuilt rows)",
                r.first_key, r.last_key, r.source_rows, r.rebuilt_rows
            );
        }
    }
    if let Some(oracle) = &report.oracle {
        oracle::print_report(oracle);
    }
    let oracle_differences = report.oracle.as_ref().map_or(0, |o| o.differences());
    if report.differences() > 0 {
        println!("verdict: DIFFERENT, {} differences", report.differences());
    } else if oracle_differences > 0 {
        println!(
            "verdict: DIFFERENT, the oracle found {oracle_differences} rows that differ (verify found 0)"
        );
    } else if report.lag > 0 {
        println!(
            "verdict: LAGGING, {} keys differ while the connector has not confirmed the snapshot point",
            report.lag
        );
    } else {
        println!("verdict: OK, 0 differences");
    }
}

/// Exit code: 0 equal, 1 different (by verify or the oracle) or not
/// provably equal (lag).
pub fn exit_code(report: &VerifyReport) -> u8 {
    let oracle = report.oracle.as_ref().map_or(0, |o| o.differences());
    u8::from(report.differences() > 0 || report.lag > 0 || oracle > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oracle_alone_finding_a_difference_fails_verify() {
        let mut report = VerifyReport::default();
        assert_eq!(exit_code(&report), 0);
        report.oracle = Some(oracle::OracleReport::default());
        assert_eq!(exit_code(&report), 0);
        report.oracle = Some(oracle::OracleReport {
            only_in_rebuilt: 1,
            ..oracle::OracleReport::default()
        });
        assert_eq!(exit_code(&report), 1);
    }
}
