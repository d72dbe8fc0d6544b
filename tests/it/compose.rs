//! docker-compose.yml, checked statically: no Docker engine runs where the
//! tests do, so this is what keeps the compose stack from drifting away from
//! the stack the tests run on (dev/services) and from kappa.docker.toml.

use serde_yaml::Value;
use std::path::Path;

fn read(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("reading {}: {e}", full.display()))
}

/// `NAME=value` from a shell script's top level (dev/services, .ci/run).
fn shell_var(script: &str, name: &str) -> String {
    let text = read(script);
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("{script} sets no {name}="))
        .trim_matches('"')
        .to_string()
}

fn compose() -> Value {
    serde_yaml::from_str(&read("docker-compose.yml")).expect("docker-compose.yml is YAML")
}

fn service<'a>(compose: &'a Value, name: &str) -> &'a Value {
    let service = &compose["services"][name];
    assert!(
        service.is_mapping(),
        "docker-compose.yml has no service {name}"
    );
    service
}

fn str_of<'a>(value: &'a Value, what: &str) -> &'a str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {value:?}"))
}

/// The `host:container` port mappings of a service.
fn ports(service: &Value) -> Vec<(u16, u16)> {
    service["ports"]
        .as_sequence()
        .map(|ports| {
            ports
                .iter()
                .map(|p| {
                    let text = str_of(p, "a port mapping");
                    let (host, container) = text.split_once(':').expect("host:container");
                    (
                        host.parse().expect("host port"),
                        container.parse().expect("container port"),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn docker_config() -> toml::Value {
    toml::from_str(&read("kappa.docker.toml")).expect("kappa.docker.toml is TOML")
}

#[test]
fn images_are_the_versions_dev_services_runs() {
    let compose = compose();
    let kafka = shell_var("dev/services", "KAFKA_VERSION");
    let registry = shell_var("dev/services", "REGISTRY_VERSION");
    assert_eq!(
        str_of(&service(&compose, "kafka")["image"], "kafka image"),
        format!("apache/kafka:{kafka}")
    );
    assert_eq!(
        str_of(
            &service(&compose, "schema-registry")["image"],
            "registry image"
        ),
        format!("apicurio/apicurio-registry:{registry}")
    );
    // The Dockerfile builds with the toolchain CI tests with.
    let tested = shell_var(".ci/run", "TESTED_RUSTC");
    assert!(
        read("Dockerfile").contains(&format!("ARG RUST_VERSION={tested}\n")),
        "Dockerfile's RUST_VERSION is not {tested}, the rustc .ci/run tests with"
    );
}

#[test]
fn host_ports_are_the_ones_the_tests_default_to() {
    let compose = compose();
    // README: export KAFKA_BROKERS=127.0.0.1:29092; the other defaults match.
    let kafka = service(&compose, "kafka");
    assert!(ports(kafka).contains(&(29092, 29092)));
    let advertised = str_of(
        &kafka["environment"]["KAFKA_ADVERTISED_LISTENERS"],
        "advertised listeners",
    );
    assert!(advertised.contains("localhost:29092"), "{advertised}");
    let registry = service(&compose, "schema-registry");
    assert!(ports(registry).contains(&(8081, 8080)), "{registry:?}");
    assert!(ports(service(&compose, "postgres")).contains(&(5432, 5432)));
    assert!(ports(service(&compose, "mysql")).contains(&(3306, 3306)));
    let default_registry = "http://127.0.0.1:8081/apis/ccompat/v7";
    assert!(read("tests/common/mod.rs").contains(default_registry));
    assert!(read("dev/test").contains("/apis/ccompat/v7"));
}

#[test]
fn the_broker_is_configured_as_dev_services_configures_it() {
    let compose = compose();
    let env = &service(&compose, "kafka")["environment"];
    assert_eq!(
        str_of(&env["KAFKA_PROCESS_ROLES"], "process roles"),
        "broker,controller"
    );
    assert_eq!(
        str_of(
            &env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"],
            "auto create topics"
        ),
        "false"
    );
    assert!(read("dev/services").contains("auto.create.topics.enable=false"));
    let registry_env = &service(&compose, "schema-registry")["environment"];
    assert_eq!(
        str_of(&registry_env["APICURIO_STORAGE_KIND"], "storage kind"),
        "kafkasql"
    );
    assert_eq!(
        str_of(
            &registry_env["APICURIO_RULES_GLOBAL_COMPATIBILITY"],
            "global compatibility"
        ),
        "BACKWARD"
    );
    let bootstrap = str_of(
        &registry_env["APICURIO_KAFKASQL_BOOTSTRAP_SERVERS"],
        "kafkasql bootstrap",
    );
    assert!(
        str_of(&env["KAFKA_ADVERTISED_LISTENERS"], "advertised listeners")
            .contains(&format!("PLAINTEXT://{bootstrap}")),
        "the registry's bootstrap {bootstrap} is not an advertised listener"
    );
}

#[test]
fn kappa_docker_toml_points_at_the_compose_services() {
    let compose = compose();
    let config = docker_config();
    let brokers = config["kafka"]["brokers"].as_str().expect("brokers");
    let advertised = str_of(
        &service(&compose, "kafka")["environment"]["KAFKA_ADVERTISED_LISTENERS"],
        "advertised listeners",
    );
    assert!(
        advertised.contains(&format!("PLAINTEXT://{brokers}")),
        "kappa.docker.toml brokers {brokers} is not advertised: {advertised}"
    );
    let registry = config["schema_registry"]["url"].as_str().expect("url");
    let container_port = ports(service(&compose, "schema-registry"))[0].1;
    assert_eq!(
        registry,
        format!("http://schema-registry:{container_port}/apis/ccompat/v7")
    );
    let pg = config["source"]["postgres"]["url"].as_str().expect("url");
    assert!(pg.contains("@postgres:5432/"), "{pg}");
    // The table it captures is the one the compose file creates.
    let tables = config["source"]["postgres"]["tables"]
        .as_array()
        .expect("tables");
    let demo = compose["configs"]["demo-table"]["content"]
        .as_str()
        .expect("demo-table content");
    for table in tables {
        let table = table.as_str().expect("table name");
        assert!(
            demo.contains(&format!("CREATE TABLE IF NOT EXISTS {table} ")),
            "{table} is not created by the compose file"
        );
    }
    let depends = &service(&compose, "kappa")["depends_on"];
    for needed in ["kafka", "schema-registry", "postgres"] {
        assert!(
            depends[needed].is_mapping(),
            "kappa does not depend on {needed}"
        );
    }
}

/// `docker build` needs every workspace member in the image's build
/// context: cargo refuses a workspace with a member missing (chaos/ was,
/// until it was copied).
#[test]
fn the_dockerfile_copies_every_workspace_member() {
    let manifest: toml::Value = toml::from_str(&read("Cargo.toml")).expect("Cargo.toml");
    let members = manifest["workspace"]["members"]
        .as_array()
        .expect("workspace.members");
    let dockerfile = read("Dockerfile");
    for member in members {
        let member = member.as_str().expect("a member path");
        if member == "." {
            continue;
        }
        assert!(
            dockerfile.contains(&format!("COPY {member} ./{member}\n")),
            "the Dockerfile does not copy workspace member {member}"
        );
    }
}
