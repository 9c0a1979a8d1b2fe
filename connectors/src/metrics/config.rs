//! `[metrics]`: where a job serves its Prometheus endpoint, and how long a finished
//! backfill keeps serving it.

use std::net::SocketAddr;
use std::time::Duration;

use operators::duration::DurationMs;
use serde::Deserialize;

/// The endpoint of `run` when `metrics.listen` is not set.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9464";

/// Which command serves the metrics (they differ in the default).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobKind {
    /// `marketflow run`: served at [`DEFAULT_LISTEN`] unless set.
    Live,
    /// `marketflow backfill`: off unless set.
    Backfill,
}

/// `[metrics]`
///
/// ```
/// use connectors::metrics::{JobKind, MetricsConfig};
/// let c: MetricsConfig = toml::from_str("").unwrap();
/// assert_eq!(c.address(JobKind::Live, 1).unwrap().unwrap().to_string(), "127.0.0.1:9465");
/// assert_eq!(c.address(JobKind::Backfill, 0).unwrap(), None);
/// let off: MetricsConfig = toml::from_str("listen = \"\"").unwrap();
/// assert_eq!(off.address(JobKind::Live, 0).unwrap(), None);
/// ```
#[derive(Clone, Debug, Deserialize)]
pub struct MetricsConfig {
    /// `host:port` of `http://<listen>/metrics`; process p of a cluster listens on
    /// port + p. `""` turns the endpoint off. Unset: [`DEFAULT_LISTEN`] for `run`, off
    /// for `backfill`.
    #[serde(default)]
    pub listen: Option<String>,
    /// How long a finished backfill keeps serving its final values before it exits, so
    /// that a scraper sees them (default `0s`).
    #[serde(default = "default_linger")]
    pub linger: DurationMs,
}

fn default_linger() -> DurationMs {
    DurationMs::from_ms(0)
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            listen: None,
            linger: default_linger(),
        }
    }
}

impl MetricsConfig {
    /// Every problem of the section, each with its key.
    pub fn check(&self) -> Vec<(String, String)> {
        match self.address(JobKind::Live, 0) {
            Ok(_) => Vec::new(),
            Err(e) => vec![("metrics.listen".into(), e)],
        }
    }

    /// The address process `process` of a `job` serves on, if any.
    pub fn address(&self, job: JobKind, process: usize) -> Result<Option<SocketAddr>, String> {
        let text = match (&self.listen, job) {
            (Some(t), _) => t.trim(),
            (None, JobKind::Live) => DEFAULT_LISTEN,
            (None, JobKind::Backfill) => return Ok(None),
        };
        if text.is_empty() {
            return Ok(None);
        }
        let mut addr: SocketAddr = text.parse().map_err(|_| {
            format!("`{text}` is not host:port with a numeric host (e.g. 127.0.0.1:9464)")
        })?;
        let port = u16::try_from(addr.port() as usize + process)
            .map_err(|_| format!("port {} + process {process} is above 65535", addr.port()))?;
        addr.set_port(port);
        Ok(Some(addr))
    }

    /// How long a finished backfill keeps serving.
    pub fn linger(&self) -> Duration {
        Duration::from_millis(self.linger.as_ms().max(0) as u64)
    }
}
