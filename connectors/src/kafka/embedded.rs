//! The embedded broker: librdkafka's in-process mock cluster, a real Kafka-protocol
//! broker on 127.0.0.1, so `marketflow run` works with no setup.

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

use crate::{ConnectorError, Result};

/// An in-process Kafka-protocol broker; lives as long as this value (it is not `Send`:
/// keep it on the thread that made it).
///
/// ```
/// let broker = connectors::kafka::EmbeddedBroker::start(&[("raw.trades", 2)]).unwrap();
/// assert!(broker.bootstrap_servers().starts_with("127.0.0.1:"));
/// ```
pub struct EmbeddedBroker {
    cluster: MockCluster<'static, DefaultProducerContext>,
}

impl EmbeddedBroker {
    /// Starts a one-broker cluster and creates `topics` (name, partitions).
    pub fn start(topics: &[(&str, i32)]) -> Result<EmbeddedBroker> {
        let cluster = MockCluster::new(1)
            .map_err(|e| ConnectorError::Kafka(format!("starting the embedded broker: {e}")))?;
        let broker = EmbeddedBroker { cluster };
        for (name, partitions) in topics {
            broker.create_topic(name, *partitions)?;
        }
        Ok(broker)
    }

    /// Creates a topic.
    pub fn create_topic(&self, name: &str, partitions: i32) -> Result<()> {
        self.cluster
            .create_topic(name, partitions, 1)
            .map_err(|e| ConnectorError::Kafka(format!("creating topic {name}: {e}")))
    }

    /// The broker's address, for `bootstrap.servers`.
    pub fn bootstrap_servers(&self) -> String {
        self.cluster.bootstrap_servers()
    }
}
