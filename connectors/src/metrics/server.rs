//! The HTTP endpoint: `GET /metrics` answers the process's metrics in the Prometheus
//! text format (hyper on the shared I/O runtime); other paths are 404.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

use super::Metrics;
use crate::{ConnectorError, Result};

/// A running endpoint; it stops when dropped.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl MetricsServer {
    /// Binds `addr` (a port in use is an error naming it) and serves `metrics` there.
    pub fn start(addr: SocketAddr, metrics: Arc<Metrics>) -> Result<MetricsServer> {
        let fail = |e: std::io::Error| ConnectorError::Metrics {
            addr: addr.to_string(),
            reason: e.to_string(),
        };
        let listener = std::net::TcpListener::bind(addr).map_err(fail)?;
        listener.set_nonblocking(true).map_err(fail)?;
        let addr = listener.local_addr().map_err(fail)?;
        let runtime = crate::store::runtime();
        let listener = {
            let _guard = runtime.enter();
            tokio::net::TcpListener::from_std(listener).map_err(fail)?
        };
        let task = runtime.spawn(async move {
            loop {
                let stream = match listener.accept().await {
                    Ok((s, _)) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "metrics endpoint: accept failed");
                        continue;
                    }
                };
                let metrics = metrics.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let metrics = metrics.clone();
                        async move { Ok::<_, Infallible>(respond(&metrics, &req)) }
                    });
                    if let Err(e) = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await
                    {
                        tracing::debug!(error = %e, "metrics endpoint: connection ended");
                    }
                });
            }
        });
        tracing::info!(address = %addr, "serving Prometheus metrics at /metrics");
        Ok(MetricsServer { addr, task })
    }

    /// The bound address (the real port when 0 was asked).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn respond(metrics: &Metrics, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let (status, kind, body) = if req.uri().path() == "/metrics" {
        (
            StatusCode::OK,
            prometheus::TEXT_FORMAT,
            Bytes::from(metrics.encode()),
        )
    } else {
        (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            Bytes::from_static(b"marketflow serves /metrics\n"),
        )
    };
    Response::builder()
        .status(status)
        .header("content-type", kind)
        .body(Full::new(body))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}
