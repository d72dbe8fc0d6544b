//! What can go wrong on the Kafka side, and what it means for retrying:
//! decided from librdkafka's error codes ([`RDKafkaErrorCode`]) and the
//! client's error variants ([`KafkaError`]), never from message text.
//!
//! Transient: the brokers are unreachable, slow or moving leadership (a
//! transport failure, all brokers down, a timeout, a full local queue, no
//! leader or coordinator yet, too few in-sync replicas). Configuration:
//! something only the user changes (authentication, authorization, TLS, a
//! topic that does not exist, a config the broker refuses, a record larger
//! than it accepts, a client property librdkafka refuses). Definite:
//! everything else, the same answer next time.

pub use kappa_schemas::ErrorKind;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// What can go wrong on the Kafka side. Variants name the topic, partition
/// and offset where one is involved. Where librdkafka reported the failure,
/// its error is kept as `cause` (boxed, so that SinkError stays small) and
/// its code decides the [`kind`](SinkError::kind). The message already says
/// the cause's text (`reason`), so `cause` is not also the error's
/// `source()`: chain printers (`{:#}`) would repeat it.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// A client or a request to the brokers failed. `cause` is `None` only
    /// when kappa gave up waiting for the brokers itself (a replay that
    /// stalled): Transient.
    #[error("Kafka at {brokers}: {reason} (is the broker running? `dev/services status`)")]
    Broker {
        brokers: String,
        reason: String,
        cause: Option<Box<KafkaError>>,
    },
    /// A topic is unusable. `code` is the broker's answer for this topic
    /// (creating or describing it); `None` when kappa's own check found it (a
    /// name Kafka refuses, a topic that is missing or not compacted, offsets
    /// it does not have, no room to spill its keys): Configuration.
    #[error("topic {topic}: {reason}")]
    Topic {
        topic: String,
        reason: String,
        code: Option<RDKafkaErrorCode>,
    },
    /// A replay of `topic` stopped on kappa's side: a worker panicked, or
    /// what its records were handed to failed (its error is known only as
    /// text). Definite. Worded as [`SinkError::Topic`].
    #[error("topic {topic}: {reason}")]
    Replay { topic: String, reason: String },
    /// A record was not delivered. `cause` is `None` only when the
    /// producer answered neither way within its limit (a broker that went
    /// away mid-request): Transient.
    #[error("delivery to topic {topic} failed: {reason}")]
    Delivery {
        topic: String,
        reason: String,
        cause: Option<Box<KafkaError>>,
    },
    /// A replayed record was refused by what it was handed to (its error is
    /// known only as text): the same record fails the same way. Definite.
    #[error("topic {topic} partition {partition} offset {offset}: {reason}")]
    Record {
        topic: String,
        partition: i32,
        offset: i64,
        reason: String,
    },
    /// Reading the offsets record stopped: its task panicked or was
    /// cancelled (what went wrong inside it is returned as itself). Definite.
    #[error("offsets record in topic {topic} for connector {connector}: {reason}")]
    Offsets {
        topic: String,
        connector: String,
        reason: String,
    },
}

impl SinkError {
    /// Whether waiting and retrying can help (see [`ErrorKind`]).
    pub fn kind(&self) -> ErrorKind {
        use SinkError as E;
        match self {
            E::Broker { cause, .. } | E::Delivery { cause, .. } => {
                cause.as_deref().map_or(ErrorKind::Transient, kafka_kind)
            }
            E::Topic { code, .. } => code.map_or(ErrorKind::Configuration, code_kind),
            E::Replay { .. } | E::Record { .. } | E::Offsets { .. } => ErrorKind::Definite,
        }
    }
}

/// The kind of a librdkafka client error: its code where it has one,
/// otherwise its variant.
pub(crate) fn kafka_kind(error: &KafkaError) -> ErrorKind {
    match error {
        // librdkafka refused a client property, or could not build a client
        // from them (an unreadable CA file, a SASL mechanism it lacks).
        KafkaError::ClientConfig(..) | KafkaError::ClientCreation(_) => ErrorKind::Configuration,
        // An admin request's own code (`rdkafka_error_code` leaves it out).
        KafkaError::AdminOp(code) => code_kind(*code),
        // Nothing arrived within the poll interval.
        KafkaError::NoMessageReceived => ErrorKind::Transient,
        // Everything else with a code goes by it; without one (the client
        // dropped before answering, an admin request that could not be
        // built, an end of partition) the same call fails the same way.
        _ => error
            .rdkafka_error_code()
            .map_or(ErrorKind::Definite, code_kind),
    }
}

/// The kind of a librdkafka error code (local codes are negative, the
/// broker's own are Kafka's protocol error codes).
pub(crate) fn code_kind(code: RDKafkaErrorCode) -> ErrorKind {
    use RDKafkaErrorCode as C;
    match code {
        // No connection, or no answer in time. A broker name that does not
        // resolve counts too: librdkafka keeps trying it, and a broker's
        // container that is being restarted has no address for a while.
        C::BrokerTransportFailure
        | C::AllBrokersDown
        | C::Resolve
        | C::NetworkException
        | C::OperationTimedOut
        | C::MessageTimedOut
        | C::TimedOutQueue
        | C::RequestTimedOut
        // The local queue is full until the brokers answer.
        | C::QueueFull
        // Leadership or coordination is moving (a broker restarting, a
        // topic just created), or too few replicas are in sync yet.
        | C::LeaderNotAvailable
        | C::NotLeaderForPartition
        | C::BrokerNotAvailable
        | C::ReplicaNotAvailable
        | C::PreferredLeaderNotAvailable
        | C::NotController
        | C::NotCoordinator
        | C::CoordinatorNotAvailable
        | C::CoordinatorLoadInProgress
        | C::WaitingForCoordinator
        | C::NotEnoughReplicas
        | C::NotEnoughReplicasAfterAppend
        | C::ISRInsufficient
        | C::FencedLeaderEpoch
        | C::UnknownLeaderEpoch
        | C::OffsetNotAvailable
        | C::KafkaStorageError
        | C::ThrottlingQuotaExceeded
        | C::Retry => ErrorKind::Transient,
        // Who the client is, or what it may do.
        C::Authentication
        | C::SaslAuthenticationFailed
        | C::UnsupportedSASLMechanism
        | C::IllegalSASLState
        | C::SSL
        | C::TopicAuthorizationFailed
        | C::GroupAuthorizationFailed
        | C::ClusterAuthorizationFailed
        | C::TransactionalIdAuthorizationFailed
        // A topic or partition the cluster does not have, or a name it refuses.
        | C::UnknownTopicOrPartition
        | C::UnknownTopic
        | C::UnknownPartition
        | C::InvalidTopic
        // A setting the broker or librdkafka refuses.
        | C::InvalidConfig
        | C::InvalidArgument
        | C::InvalidPartitions
        | C::InvalidReplicationFactor
        | C::InvalidReplicaAssignment
        | C::InvalidRequiredAcks
        | C::PolicyViolation
        | C::UnsupportedCompressionType
        | C::UnsupportedVersion
        | C::UnsupportedFeature
        // A record (or batch) larger than the broker or the producer accepts:
        // [kafka] max_record_bytes, the topic's max.message.bytes.
        | C::MessageSizeTooLarge
        | C::MessageBatchTooLarge
        | C::InvalidMessageSize => ErrorKind::Configuration,
        _ => ErrorKind::Definite,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::types::RDKafkaConfRes;

    #[test]
    fn codes_are_kinded() {
        use RDKafkaErrorCode as C;
        let cases = [
            (C::BrokerTransportFailure, ErrorKind::Transient),
            (C::AllBrokersDown, ErrorKind::Transient),
            (C::OperationTimedOut, ErrorKind::Transient),
            (C::MessageTimedOut, ErrorKind::Transient),
            (C::RequestTimedOut, ErrorKind::Transient),
            (C::QueueFull, ErrorKind::Transient),
            (C::LeaderNotAvailable, ErrorKind::Transient),
            (C::NotLeaderForPartition, ErrorKind::Transient),
            (C::NotEnoughReplicas, ErrorKind::Transient),
            (C::Authentication, ErrorKind::Configuration),
            (C::SaslAuthenticationFailed, ErrorKind::Configuration),
            (C::TopicAuthorizationFailed, ErrorKind::Configuration),
            (C::ClusterAuthorizationFailed, ErrorKind::Configuration),
            (C::SSL, ErrorKind::Configuration),
            (C::UnknownTopicOrPartition, ErrorKind::Configuration),
            (C::UnknownTopic, ErrorKind::Configuration),
            (C::InvalidConfig, ErrorKind::Configuration),
            (C::InvalidReplicationFactor, ErrorKind::Configuration),
            (C::MessageSizeTooLarge, ErrorKind::Configuration),
            (C::PolicyViolation, ErrorKind::Configuration),
            (C::InvalidRecord, ErrorKind::Definite),
            (C::OutOfOrderSequenceNumber, ErrorKind::Definite),
            (C::Fatal, ErrorKind::Definite),
            (C::Fail, ErrorKind::Definite),
            (C::Unknown, ErrorKind::Definite),
        ];
        for (code, expected) in cases {
            assert_eq!(code_kind(code), expected, "{code:?}");
        }
    }

    fn broker(source: Option<KafkaError>) -> SinkError {
        SinkError::Broker {
            brokers: "k:9092".into(),
            reason: "reading metadata of topic t".into(),
            cause: source.map(Box::new),
        }
    }

    fn delivery(source: Option<KafkaError>) -> SinkError {
        SinkError::Delivery {
            topic: "t".into(),
            reason: "any".into(),
            cause: source.map(Box::new),
        }
    }

    fn topic(code: Option<RDKafkaErrorCode>) -> SinkError {
        SinkError::Topic {
            topic: "t".into(),
            reason: "any".into(),
            code,
        }
    }

    #[test]
    fn errors_are_kinded_by_their_kafka_cause() {
        use RDKafkaErrorCode as C;
        let cases = [
            (
                broker(Some(KafkaError::MetadataFetch(C::AllBrokersDown))),
                ErrorKind::Transient,
            ),
            (
                broker(Some(KafkaError::Flush(C::OperationTimedOut))),
                ErrorKind::Transient,
            ),
            (
                broker(Some(KafkaError::AdminOp(C::ClusterAuthorizationFailed))),
                ErrorKind::Configuration,
            ),
            (
                broker(Some(KafkaError::ClientConfig(
                    RDKafkaConfRes::RD_KAFKA_CONF_UNKNOWN,
                    "No such configuration property".into(),
                    "bootstrap.server".into(),
                    "k:9092".into(),
                ))),
                ErrorKind::Configuration,
            ),
            (
                broker(Some(KafkaError::ClientCreation(
                    "ssl.ca.location failed".into(),
                ))),
                ErrorKind::Configuration,
            ),
            (
                broker(Some(KafkaError::MessageConsumption(
                    C::TopicAuthorizationFailed,
                ))),
                ErrorKind::Configuration,
            ),
            (
                broker(Some(KafkaError::AdminOpCreation("bad option".into()))),
                ErrorKind::Definite,
            ),
            // The replay stalled: the brokers delivered nothing for a minute.
            (broker(None), ErrorKind::Transient),
            (
                delivery(Some(KafkaError::MessageProduction(C::QueueFull))),
                ErrorKind::Transient,
            ),
            (
                delivery(Some(KafkaError::MessageProduction(C::MessageTimedOut))),
                ErrorKind::Transient,
            ),
            (
                delivery(Some(KafkaError::MessageProduction(C::MessageSizeTooLarge))),
                ErrorKind::Configuration,
            ),
            (
                delivery(Some(KafkaError::MessageProduction(C::UnknownTopic))),
                ErrorKind::Configuration,
            ),
            (
                delivery(Some(KafkaError::MessageProduction(C::InvalidRecord))),
                ErrorKind::Definite,
            ),
            // The producer was dropped before the broker answered.
            (delivery(Some(KafkaError::Canceled)), ErrorKind::Definite),
            // Neither delivered nor failed within the limit.
            (delivery(None), ErrorKind::Transient),
            (topic(Some(C::InvalidConfig)), ErrorKind::Configuration),
            (
                topic(Some(C::TopicAuthorizationFailed)),
                ErrorKind::Configuration,
            ),
            (topic(Some(C::RequestTimedOut)), ErrorKind::Transient),
            (topic(Some(C::NotController)), ErrorKind::Transient),
            (topic(Some(C::InvalidRequest)), ErrorKind::Definite),
            // kappa's own check: a name Kafka refuses, a topic not compacted.
            (topic(None), ErrorKind::Configuration),
        ];
        for (err, expected) in cases {
            assert_eq!(err.kind(), expected, "{err:?}");
        }
    }

    #[test]
    fn failures_on_kappas_side_are_definite() {
        let cases = [
            SinkError::Replay {
                topic: "t".into(),
                reason: "a replay worker panicked".into(),
            },
            SinkError::Record {
                topic: "t".into(),
                partition: 0,
                offset: 7,
                reason: "not Confluent-framed".into(),
            },
            SinkError::Offsets {
                topic: "o".into(),
                connector: "c".into(),
                reason: "task panicked".into(),
            },
        ];
        for err in cases {
            assert_eq!(err.kind(), ErrorKind::Definite, "{err:?}");
        }
    }

    #[test]
    fn the_kafka_error_decides_the_kind_and_its_text_is_said_once() {
        let err = delivery(Some(KafkaError::MessageProduction(
            RDKafkaErrorCode::QueueFull,
        )));
        assert_eq!(err.to_string(), "delivery to topic t failed: any");
        assert_eq!(err.kind(), ErrorKind::Transient);
        // The message already carries the cause's text (`reason`): as a
        // `source` too, `{:#}` chains (kappa's error output) would say it
        // twice.
        assert!(std::error::Error::source(&err).is_none());
        let err = topic(Some(RDKafkaErrorCode::InvalidConfig));
        assert_eq!(err.to_string(), "topic t: any");
        assert_eq!(err.kind(), ErrorKind::Configuration);
        assert!(std::error::Error::source(&err).is_none());
    }
}
