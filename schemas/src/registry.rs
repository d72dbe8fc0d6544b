//! A small Confluent Schema Registry client: register a schema under a
//! subject, fetch a schema by id. Both are cached, so the hot path (encoding a
//! change whose table shape is already registered) does no I/O.

use crate::error::SchemaError;
use apache_avro::Schema;
use schema_registry_converter::async_impl::schema_registry::{
    get_schema_by_id, post_schema, SrSettings,
};
use schema_registry_converter::schema_registry_common::{SchemaType, SuppliedSchema};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Why a registration failed, with the fix when the registry refused the
/// schema as incompatible. Added columns are nullable with a null default
/// (BACKWARD compatible), so a refusal means the table changed in a way old
/// records cannot be read under (a column's type changed, say), or the
/// subject's rule is stricter than BACKWARD (FULL, FORWARD_TRANSITIVE, …).
fn registration_failure(url: &str, subject: &str, error: &str) -> String {
    let lower = error.to_ascii_lowercase();
    if lower.contains("409") || lower.contains("incompatible") {
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

/// A schema fetched by id: parsed, and as the registry's JSON text.
pub type FetchedSchema = (Arc<Schema>, Arc<str>);

/// A handle on one Schema Registry, cheap to clone.
#[derive(Clone)]
pub struct Registry {
    url: String,
    settings: Arc<SrSettings>,
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
            ids: Arc::default(),
            schemas: Arc::default(),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    fn error(&self, reason: impl ToString) -> SchemaError {
        SchemaError::Registry {
            url: self.url.clone(),
            reason: reason.to_string(),
        }
    }

    /// Registers `schema` (Avro JSON) under `subject` and returns its id; the
    /// registry returns the existing id for a schema it already has.
    pub async fn register(&self, subject: &str, schema: &str) -> Result<u32, SchemaError> {
        let cache_key = (subject.to_string(), schema.to_string());
        if let Some(id) = self.ids.lock().map_err(|e| self.error(e))?.get(&cache_key) {
            return Ok(*id);
        }
        let supplied = SuppliedSchema::new(None, SchemaType::Avro, schema.to_string());
        let registered = post_schema(&self.settings, subject.to_string(), supplied)
            .await
            .map_err(|e| self.error(registration_failure(&self.url, subject, &e.to_string())))?;
        self.ids
            .lock()
            .map_err(|e| self.error(e))?
            .insert(cache_key, registered.id);
        Ok(registered.id)
    }

    /// The parsed schema with `id`, and its JSON text.
    pub async fn schema(&self, id: u32) -> Result<FetchedSchema, SchemaError> {
        if let Some(found) = self.schemas.lock().map_err(|e| self.error(e))?.get(&id) {
            return Ok(found.clone());
        }
        let fetched = get_schema_by_id(id, &self.settings).await.map_err(|e| {
            self.error(format!(
                "schema id {id} is unknown to the registry ({e}); if the registry was restarted \
                 without its data, the topic's records refer to schemas it no longer has"
            ))
        })?;
        let parsed =
            Schema::parse_str(&fetched.schema).map_err(|e| SchemaError::InvalidSchema {
                subject: format!("schema id {id}"),
                reason: e.to_string(),
            })?;
        let entry = (Arc::new(parsed), Arc::<str>::from(fetched.schema.as_str()));
        self.schemas
            .lock()
            .map_err(|e| self.error(e))?
            .insert(id, entry.clone());
        Ok(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_incompatible_schema_names_the_subject_and_the_fix() {
        let text = registration_failure(
            "http://r:8081",
            "t-value",
            "HTTP 409 Conflict: incompatible",
        );
        assert!(text.contains("t-value"), "{text}");
        assert!(text.contains("http://r:8081/config/t-value"), "{text}");
        let other = registration_failure("http://r:8081", "t-value", "connection refused");
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
        );
        let started = std::time::Instant::now();
        let result = tokio::time::timeout(
            std::time::Duration::from_secs(20),
            registry.register("t-value", "\"string\""),
        )
        .await
        .expect("register returned instead of hanging");
        assert!(result.is_err(), "{result:?}");
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
    }
}
