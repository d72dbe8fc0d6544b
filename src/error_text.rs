//! How kappa prints an error and its causes: each said once.
//!
//! kappa's error types put their cause's text into their own message (so a
//! log line with only `%error` is complete) and keep the cause as
//! `source()` as well (for code that inspects it). A plain `{:#}` chain would
//! then say the cause twice or three times; this skips a cause whose text
//! the message already holds.

/// `error` and its causes, outermost first, separated by `: `, each text
/// once.
pub fn error_text(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let part = cause.to_string();
        if part.is_empty() || text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::error_text;

    #[derive(Debug, thiserror::Error)]
    #[error("reading x failed: {source}")]
    struct Wrapping {
        #[source]
        source: std::io::Error,
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let io = std::io::Error::other("disk on fire");
        let error = anyhow::Error::new(Wrapping { source: io }).context("rebuilding t");
        assert_eq!(
            format!("{error:#}"),
            "rebuilding t: reading x failed: disk on fire: disk on fire"
        );
        assert_eq!(
            error_text(&error),
            "rebuilding t: reading x failed: disk on fire"
        );
    }

    #[test]
    fn causes_not_in_the_message_are_all_said() {
        let error = anyhow::anyhow!("inner").context("middle").context("outer");
        assert_eq!(error_text(&error), "outer: middle: inner");
    }
}
