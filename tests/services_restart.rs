//! The stack's durability, as the Confluent wire format needs it: after the
//! registry restarts, every schema id in the topic's records still resolves
//! (`GET /schemas/ids/{id}`) to the same schema and the same schema registers
//! under the same id (Apicurio's kafkasql storage keeps schemas in a Kafka
//! topic); after the broker restarts, the topic holds every record it held.
//! A rebuild then still verifies, and the connector carries on. A test binary
//! of its own: cargo runs binaries one at a time, so no other test sees the
//! services go away.

mod common;

use common::RunsKappa;
use common::{registry_get, registry_url, topic_end_offsets, Pipeline};
use kappa_schemas::Registry;
use std::collections::BTreeMap;

/// `dev/services restart SERVICE`, with this run's environment (ports, state dir).
fn restart(service: &str) {
    common::dev_services(&["restart", service]);
}

/// The schema id of every key and value in the topic (Confluent framing:
/// magic byte 0, then the id big-endian), with the text the registry gives
/// for it now.
fn schemas_in_records(topic: &str) -> BTreeMap<u32, String> {
    let kafka = kappa_sink::KafkaConfig::new(common::brokers());
    let mut ids = std::collections::BTreeSet::new();
    kappa_sink::replay::replay(&kafka, topic, |record| {
        for bytes in [record.key, record.value].into_iter().flatten() {
            let id: [u8; 4] = bytes
                .get(1..5)
                .and_then(|b| b.try_into().ok())
                .ok_or("record shorter than the Confluent framing")?;
            ids.insert(u32::from_be_bytes(id));
        }
        Ok::<_, String>(())
    })
    .expect("replay");
    ids.into_iter()
        .map(|id| {
            let schema = registry_get(&format!("/schemas/ids/{id}"))["schema"]
                .as_str()
                .expect("schema text")
                .to_string();
            (id, schema)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn topics_and_schema_ids_survive_registry_and_broker_restarts() {
    let mut p = Pipeline::new(
        "kappa_svcrestart",
        "id int PRIMARY KEY, amount numeric(10,2), at timestamptz",
    )
    .await;
    let table = p.table.clone();
    p.commit(&format!(
        "INSERT INTO {table} SELECT g, g * 0.5, now() FROM generate_series(1, 100) g"
    ))
    .await;
    p.start();
    p.commit(&format!("ALTER TABLE {table} ADD COLUMN note text"))
        .await;
    let lsn = p
        .commit(&format!(
            "UPDATE {table} SET note = 'n' || id WHERE id % 4 = 0; DELETE FROM {table} WHERE id % 10 = 0"
        ))
        .await;
    p.wait_confirmed(&lsn).await;
    p.stop();
    let before = schemas_in_records(&p.topic);
    assert!(
        before.len() >= 3,
        "a key schema and two value schemas: {before:?}"
    );
    let end_offsets = topic_end_offsets(&p.topic);

    restart("registry");
    assert_eq!(
        schemas_in_records(&p.topic),
        before,
        "every id in the records resolves to the same schema after a registry restart"
    );
    // A client with an empty cache registers the same schema: the same id.
    let latest = registry_get(&format!("/subjects/{}-value/versions/latest", p.topic));
    let id = latest["id"].as_u64().expect("id");
    let again = Registry::new(&registry_url())
        .register(
            &format!("{}-value", p.topic),
            latest["schema"].as_str().expect("schema"),
        )
        .await
        .expect("register");
    assert_eq!(u64::from(again), id);

    restart("kafka");
    assert_eq!(
        topic_end_offsets(&p.topic),
        end_offsets,
        "the broker kept every record"
    );
    p.assert_verified(90);

    // The connector carries on against the restarted services.
    p.start();
    let lsn = p
        .commit(&format!(
            "INSERT INTO {table} VALUES (1000, 1.25, now(), 'after the restarts')"
        ))
        .await;
    p.wait_confirmed(&lsn).await;
    p.stop();
    p.assert_verified(91);
    p.cleanup().await;
}
