//! SIGINT/SIGTERM handling for long-running commands: the first signal asks for a clean
//! stop, a second one exits at once (code 130).

/// Calls `stop` on the first SIGINT or SIGTERM; exits the process on the second.
pub fn stop_on_signal(stop: impl Fn() + Send + 'static) {
    let runtime = connectors::store::runtime();
    runtime.spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::warn!("cannot install signal handlers");
            return;
        };
        for n in 0.. {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            if n == 0 {
                tracing::info!(
                    "stop requested: finishing in-flight work (signal again to exit now)"
                );
                dataflows::cluster::watchdog::stopping();
                stop();
            } else {
                eprintln!("error: stopped by a second signal before the job finished");
                std::process::exit(130);
            }
        }
    });
}
