//! timely's cluster configuration from the `-w -n -p -h -z` flags, with clear errors
//! for a malformed hostfile or inconsistent flags.

use timely::{CommunicationConfig, WorkerConfig};

use crate::cli::TimelyArgs;
use crate::UsageError;

/// Builds the timely config; errors are usage errors (exit code 2).
pub fn timely_config(args: &TimelyArgs) -> Result<timely::Config, UsageError> {
    if args.threads == 0 || args.processes == 0 {
        return Err(UsageError("-w and -n must be at least 1".into()));
    }
    if args.process >= args.processes {
        return Err(UsageError(format!(
            "-p {} is out of range for -n {}",
            args.process, args.processes
        )));
    }
    let communication = if args.processes > 1 {
        let addresses = match &args.hostfile {
            Some(path) => read_hostfile(path, args.processes)?,
            None => (0..args.processes)
                .map(|i| format!("localhost:{}", 2101 + i))
                .collect(),
        };
        CommunicationConfig::Cluster {
            threads: args.threads,
            process: args.process,
            addresses,
            report: false,
            zerocopy: args.zerocopy,
        }
    } else if args.zerocopy {
        CommunicationConfig::ProcessBinary(args.threads)
    } else if args.threads > 1 {
        CommunicationConfig::Process(args.threads)
    } else {
        CommunicationConfig::Thread
    };
    Ok(timely::Config {
        communication,
        worker: WorkerConfig::default(),
    })
}

/// Reads `host:port` lines (blank lines and `#` comments skipped); needs `n` of them.
pub fn read_hostfile(path: &std::path::Path, n: usize) -> Result<Vec<String>, UsageError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| UsageError(format!("hostfile {}: cannot read: {e}", path.display())))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let valid = line.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
        });
        if !valid {
            return Err(UsageError(format!(
                "hostfile {} line {}: `{line}` is not host:port",
                path.display(),
                i + 1
            )));
        }
        out.push(line.to_string());
    }
    if out.len() < n {
        return Err(UsageError(format!(
            "hostfile {} lists {} address(es) but -n is {n}",
            path.display(),
            out.len()
        )));
    }
    out.truncate(n);
    Ok(out)
}
