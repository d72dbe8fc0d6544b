//! A small Confluent Schema Registry client: register a schema under a
//! subject, fetch a schema by id. Both are cached, so the hot path (encoding a
//! change whose table shape is already registered) does no I/O.

use crate::error::{ErrorKind, SchemaError};
use apache_avro::Schema;
use schema_registry_converter::async_impl::schema_registry::{
    get_schema_by_id, get_schema_by_subject_and_version, post_schema, SrSettings,
};
use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::{SchemaType, SuppliedSchema};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The HTTP status the registry answered a failed request with, read from
/// the client's error: schema_registry_converter words every non-2xx answer
/// "HTTP request to schema registry failed with status {code} {reason}"
/// (`send_with_auth`). `None` when the registry was not reached, or answered
/// 2xx with a body that could not be used.
fn http_status(error: &SRCError) -> Option<u16> {
    const PREFIX: &str = "failed with status ";
    let at = error.error.find(PREFIX)? + PREFIX.len();
    let digits = error.error.get(at..at + 3)?;
    digits
        .parse()
        .ok()
        .filter(|code| (100..=599).contains(code))
}

/// The Confluent error code a registry put in its answer's body
/// (`{"error_code": 40403, …}`, which the client keeps as
/// `error_code: 40403, message: …`).
fn registry_error_code(error: &SRCError) -> Option<u32> {
    const PREFIX: &str = "error_code: ";
    let cause = error.cause.as_deref()?;
    let at = cause.find(PREFIX)? + PREFIX.len();
    let digits: String = cause[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Confluent's "schema not found" (Apicurio's ccompat API answers it too).
const SCHEMA_NOT_FOUND: u32 = 40403;

/// Why a registration failed, with the fix when the registry refused the
/// schema as incompatible (HTTP 409, as Confluent's API and Apicurio's
/// ccompat API answer). Added columns are nullable with a null default
/// (BACKWARD compatible), so a refusal means the table changed in a way old
/// records cannot be read under (a column's type changed, say), or the
/// subject's rule is stricter than BACKWARD (FULL, FORWARD_TRANSITIVE, …).
fn registration_failure(url: &str, subject: &str, error: &SRCError) -> String {
    if http_status(error) == Some(409) {
        format!(
            "the registry refused a new schema for subject {subject} as incompatible ({error}). \
             Columns kappa adds are nullable with a null default, which BACKWARD compatibility \
             allows; a refusal means the table changed in a way older records cannot be read \
             under (a column's type changed, say), or the subject's rule is stricter than BACKWARD \
             (see it with curl {url}/config/{subject}?defaultToGlobal=true). If consumers of the \
             topic can cope with the change, allow it for this subject: curl -X PUT -H \
             'Content-Type: application/vnd.schemaregistry.v1+json' --data '{{\"compatibility\": \"NONE\"}}' \
             {url}/config/{subject} — then restart kappa (it resumes where it stopped)"
        )
    } else {
        format!("registering a schema under subject {subject}: {error}")
    }
}

/// How long one registry request may go unanswered.
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// How long a request that failed for a passing reason (no connection, a
/// timeout, HTTP 5xx: a registry restarting) is tried again before the error
/// stands. Outlasts a registry restart, so a snapshot need not start over
/// for one; a registry down for longer makes kappa stop with the error.
const RETRY_FOR: std::time::Duration = std::time::Duration::from_secs(90);

/// What a failed registry request means for retrying ([`ErrorKind`]).
/// Transient: the registry was not reached or did not answer in time
/// (`retriable` in the client's error), or answered with a server error (a
/// registry restarting). Configuration: it refused who asks (401, 403), has
/// no such subject or is not a registry's API at that URL (404), or refused
/// the schema as incompatible (409; [`registration_failure`] names the fix).
/// Definite: any other answer (400, 422: a schema it calls invalid), or a 2xx
/// answer whose body could not be used.
pub(crate) fn request_kind(error: &SRCError) -> ErrorKind {
    let status = http_status(error);
    if error.retriable || status.is_some_and(|code| code >= 500) {
        return ErrorKind::Transient;
    }
    match status {
        Some(401 | 403 | 404 | 409) => ErrorKind::Configuration,
        _ => ErrorKind::Definite,
    }
}

/// Whether a failed registry request may succeed when tried again (its kind
/// is Transient). A 4xx answer (an incompatible schema, an unknown id)
/// stands.
fn passing(error: &SRCError) -> bool {
    request_kind(error) == ErrorKind::Transient
}

/// Runs `call` until it succeeds, fails for good ([`passing`] is false), or
/// `retry_for` has passed since the first attempt (then its last error).
async fn with_retries<T, F, Fut>(
    what: &str,
    retry_for: std::time::Duration,
    mut call: F,
) -> Result<T, SRCError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, SRCError>>,
{
    let started = std::time::Instant::now();
    let mut backoff = std::time::Duration::from_millis(500);
    loop {
        match call().await {
            Ok(value) => return Ok(value),
            Err(e) if passing(&e) && started.elapsed() + backoff < retry_for => {
                tracing::warn!(error = %e, retry_in = ?backoff, "schema registry: {what} failed; trying again");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(std::time::Duration::from_secs(5));
            }
            Err(e) => return Err(e),
        }
    }
}

/// A schema fetched by id: parsed, and as the registry's JSON text.
pub type FetchedSchema = (Arc<Schema>, Arc<str>);

/// A handle on one Schema Registry, cheap to clone.
#[derive(Clone)]
pub struct Registry {
    url: String,
    settings: Arc<SrSettings>,
    retry_for: std::time::Duration,
    ids: Arc<Mutex<HashMap<(String, String), u32>>>,
    schemas: Arc<Mutex<HashMap<u32, FetchedSchema>>>,
}

impl Registry {
    pub fn new(url: &str) -> Self {
        Self::with_timeout(url, REQUEST_TIMEOUT)
    }

    /// A registry whose every request fails after `timeout` without an
    /// answer. (`SrSettings::new` has none: a registry that accepts the
    /// connection and never answers — Apicurio while its Kafka storage is
    /// down or mid-restart, seen with `kappa-chaos --seed 3 --database
    /// postgres` — held kappa's snapshot, and its locks, forever.)
    pub fn with_timeout(url: &str, timeout: std::time::Duration) -> Self {
        let base = url.trim_end_matches('/').to_string();
        let settings = SrSettings::new_builder(base.clone())
            .set_timeout(timeout)
            .build()
            // Building fails only where a plain reqwest client cannot be made
            // at all, and SrSettings::new would fail the same way.
            .unwrap_or_else(|_| SrSettings::new(base));
        Self {
            url: url.to_string(),
            settings: Arc::new(settings),
            retry_for: RETRY_FOR,
            ids: Arc::default(),
            schemas: Arc::default(),
        }
    }

    /// How long requests failing for a passing reason are tried again
    /// (tests shorten it).
    pub fn with_retry_for(mut self, retry_for: std::time::Duration) -> Self {
        self.retry_for = retry_for;
        self
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The cache lock was poisoned (a thread panicked holding it): no
    /// request was made.
    fn poisoned(&self, reason: impl ToString) -> SchemaError {
        SchemaError::Registry {
            url: self.url.clone(),
            reason: reason.to_string(),
            cause: None,
        }
    }

    /// A request failed with `source`, which decides the kind.
    fn failed(&self, reason: String, source: SRCError) -> SchemaError {
        SchemaError::Registry {
            url: self.url.clone(),
            reason,
            cause: Some(Box::new(source)),
        }
    }

    /// Registers `schema` (Avro JSON) under `subject` and returns its id; the
    /// registry returns the existing id for a schema it already has.
    pub async fn register(&self, subject: &str, schema: &str) -> Result<u32, SchemaError> {
        let cache_key = (subject.to_string(), schema.to_string());
        if let Some(id) = self
            .ids
            .lock()
            .map_err(|e| self.poisoned(e))?
            .get(&cache_key)
        {
            return Ok(*id);
        }
        let registered = with_retries(
            &format!("registering a schema under {subject}"),
            self.retry_for,
            || {
                let supplied = SuppliedSchema::new(None, SchemaType::Avro, schema.to_string());
                post_schema(&self.settings, subject.to_string(), supplied)
            },
        )
        .await
        .map_err(|e| self.failed(registration_failure(&self.url, subject, &e), e))?;
        self.ids
            .lock()
            .map_err(|e| self.poisoned(e))?
            .insert(cache_key, registered.id);
        Ok(registered.id)
    }

    /// The id and JSON text of the newest schema registered under
    /// `subject`, asked with the same timeout and retries as every request
    /// (never cached: a rebuild wants the newest).
    pub async fn latest(&self, subject: &str) -> Result<(u32, String), SchemaError> {
        let registered = with_retries(
            &format!("fetching the latest schema of {subject}"),
            self.retry_for,
            || get_schema_by_subject_and_version(&self.settings, subject, None),
        )
        .await
        .map_err(|e| self.failed(format!("no latest schema for subject {subject}: {e}"), e))?;
        Ok((registered.id, registered.schema))
    }

    /// The parsed schema with `id`, and its JSON text.
    pub async fn schema(&self, id: u32) -> Result<FetchedSchema, SchemaError> {
        if let Some(found) = self.schemas.lock().map_err(|e| self.poisoned(e))?.get(&id) {
            return Ok(found.clone());
        }
        let fetched = with_retries(&format!("fetching schema id {id}"), self.retry_for, || {
            get_schema_by_id(id, &self.settings)
        })
        .await
        .map_err(|e| match (http_status(&e), registry_error_code(&e)) {
            (Some(404), Some(SCHEMA_NOT_FOUND)) => SchemaError::UnknownSchemaId {
                url: self.url.clone(),
                id,
                reason: e.to_string(),
                cause: Box::new(e),
            },
            // Not the registry saying it lacks the id: no such API there.
            (Some(404), _) => self.failed(
                format!(
                    "fetching schema id {id}: 404 without the registry's \"schema not found\" \
                     (error_code {SCHEMA_NOT_FOUND}), so the URL is not a Confluent-compatible \
                     API (Apicurio: …/apis/ccompat/v7): {e}"
                ),
                e,
            ),
            _ => self.failed(format!("fetching schema id {id}: {e}"), e),
        })?;
        let parsed =
            Schema::parse_str(&fetched.schema).map_err(|e| SchemaError::InvalidSchema {
                subject: format!("schema id {id}"),
                reason: e.to_string(),
            })?;
        let entry = (Arc::new(parsed), Arc::<str>::from(fetched.schema.as_str()));
        self.schemas
            .lock()
            .map_err(|e| self.poisoned(e))?
            .insert(id, entry.clone());
        Ok(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(status: &str) -> SRCError {
        SRCError::new(
            &format!("HTTP request to schema registry failed with status {status}"),
            Some("error code 0: any text, even 503 or 409".into()),
            false,
        )
    }

    #[test]
    fn the_status_is_read_from_the_clients_wording_only() {
        assert_eq!(http_status(&answered("409 Conflict")), Some(409));
        assert_eq!(
            http_status(&answered("500 Internal Server Error")),
            Some(500)
        );
        // Numbers elsewhere in the text (the cause, a subject name) are no status.
        let unreached = SRCError::new("error sending request: 409 subject-503", None, true);
        assert_eq!(http_status(&unreached), None);
        assert!(passing(&unreached), "the client marked it retriable");
        assert!(passing(&answered("500 Internal Server Error")));
        assert!(!passing(&answered("404 Not Found")));
    }

    #[test]
    fn an_incompatible_schema_names_the_subject_and_the_fix() {
        let text = registration_failure("http://r:8081", "t-value", &answered("409 Conflict"));
        assert!(text.contains("t-value"), "{text}");
        assert!(text.contains("http://r:8081/config/t-value"), "{text}");
        // A cause that merely mentions 409 is not a refusal.
        let other = registration_failure(
            "http://r:8081",
            "t-value",
            &answered("422 Unprocessable Entity"),
        );
        assert!(!other.contains("/config/"), "{other}");
    }

    /// A registry that accepts connections and never answers: registering
    /// fails at the timeout instead of waiting forever.
    #[tokio::test]
    async fn a_registry_that_never_answers_fails_at_the_timeout() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming().flatten() {
                held.push(stream);
            }
        });
        let registry = Registry::with_timeout(
            &format!("http://{addr}"),
            std::time::Duration::from_millis(500),
        )
        .with_retry_for(std::time::Duration::ZERO);
        let started = std::time::Instant::now();
        let result = tokio::time::timeout(
            std::time::Duration::from_secs(20),
            registry.register("t-value", "\"string\""),
        )
        .await
        .expect("register returned instead of hanging");
        let err = result.expect_err("no answer");
        assert_eq!(err.kind(), ErrorKind::Transient, "{err:?}");
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
    }

    /// A registry on a plain listener: answers the n-th request (from 0)
    /// with `answer(n)` (status line and body); returns its URL and the
    /// count of requests it got.
    fn scripted_registry(
        answer: fn(usize) -> (&'static str, &'static str),
    ) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
        let addr = listener.local_addr().expect("addr");
        let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = count.clone();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let n = counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                // Read the request head and its body (small: one schema).
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while let Ok(read) = stream.read(&mut buf) {
                    if read == 0 {
                        break;
                    }
                    request.extend_from_slice(&buf[..read]);
                    let text = String::from_utf8_lossy(&request);
                    if let Some(head_end) = text.find("\r\n\r\n") {
                        let length = text[..head_end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if request.len() >= head_end + 4 + length {
                            break;
                        }
                    }
                }
                let (status, body) = answer(n);
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        (format!("http://{addr}"), count)
    }

    /// A registry restarting (HTTP 503 twice) is tried again until it answers.
    #[tokio::test]
    async fn a_restarting_registry_is_tried_again() {
        let (url, count) = scripted_registry(|n| {
            if n < 2 {
                (
                    "503 Service Unavailable",
                    "{\"error_code\":50301,\"message\":\"starting\"}",
                )
            } else {
                ("200 OK", "{\"id\":7}")
            }
        });
        let registry = Registry::new(&url);
        let id = tokio::time::timeout(
            std::time::Duration::from_secs(20),
            registry.register("t-value", "\"string\""),
        )
        .await
        .expect("answered")
        .expect("registered once the registry was back");
        assert_eq!(id, 7);
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    /// A registry that is not there at all (connection refused) is tried
    /// again until the retry window closes, then the error stands.
    #[tokio::test]
    async fn an_absent_registry_fails_when_the_retry_window_closes() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
            listener.local_addr().expect("addr").port()
        };
        let registry = Registry::new(&format!("http://127.0.0.1:{port}"))
            .with_retry_for(std::time::Duration::from_secs(2));
        let started = std::time::Instant::now();
        let result = registry.register("t-value", "\"string\"").await;
        let err = result.expect_err("nothing listens");
        assert_eq!(err.kind(), ErrorKind::Transient, "{err:?}");
        let took = started.elapsed();
        assert!(
            took >= std::time::Duration::from_millis(1000)
                && took < std::time::Duration::from_secs(10),
            "{took:?}"
        );
    }

    /// A refusal (HTTP 409, incompatible) stands at once: no retries.
    #[tokio::test]
    async fn a_refused_schema_is_not_tried_again() {
        let (url, count) = scripted_registry(|_| {
            (
                "409 Conflict",
                "{\"error_code\":409,\"message\":\"incompatible\"}",
            )
        });
        let registry = Registry::new(&url);
        let err = registry
            .register("t-value", "\"string\"")
            .await
            .expect_err("refused");
        assert!(err.to_string().contains("incompatible"), "{err}");
        assert_eq!(err.kind(), ErrorKind::Configuration, "{err:?}");
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    /// HTTP 500 is a passing failure too (the client marks only 502 and 503
    /// retriable).
    #[tokio::test]
    async fn an_internal_error_is_tried_again() {
        let (url, count) = scripted_registry(|n| {
            if n == 0 {
                (
                    "500 Internal Server Error",
                    "{\"error_code\":50001,\"message\":\"storage not ready\"}",
                )
            } else {
                ("200 OK", "{\"id\":3}")
            }
        });
        let id = tokio::time::timeout(
            std::time::Duration::from_secs(20),
            Registry::new(&url).register("t-value", "\"string\""),
        )
        .await
        .expect("answered")
        .expect("registered after the retry");
        assert_eq!(id, 3);
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    /// An id the registry answers 404 for is an unknown schema id (what the
    /// materializer reports per record), not a registry failure.
    #[tokio::test]
    async fn an_id_answered_404_is_an_unknown_schema_id() {
        let (url, count) = scripted_registry(|_| {
            (
                "404 Not Found",
                "{\"error_code\":40403,\"message\":\"Schema not found\"}",
            )
        });
        let err = Registry::new(&url).schema(41).await.expect_err("unknown");
        assert!(
            matches!(err, SchemaError::UnknownSchemaId { id: 41, .. }),
            "{err:?}"
        );
        assert_eq!(err.kind(), ErrorKind::Configuration, "{err:?}");
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    /// A 404 without Confluent's "schema not found" code is a URL that is
    /// not a registry's API (a wrong path, another server), not an id the
    /// registry lacks: every record would otherwise be called undecodable.
    #[tokio::test]
    async fn a_404_without_the_registrys_code_is_a_wrong_url_not_an_unknown_id() {
        let (url, _) = scripted_registry(|_| ("404 Not Found", "<html>Not Found</html>"));
        let err = Registry::new(&url)
            .schema(41)
            .await
            .expect_err("no such API");
        assert!(matches!(err, SchemaError::Registry { .. }), "{err:?}");
        assert!(
            err.to_string().contains("not a Confluent-compatible"),
            "{err}"
        );
        assert_eq!(err.kind(), ErrorKind::Configuration, "{err:?}");
    }
}
