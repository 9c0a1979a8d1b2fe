//! Cluster start-up from timely's `-w -n -p -h -z` flags: clear errors for a malformed
//! hostfile or inconsistent flags, and [`execute`], which replaces `timely::execute`:
//! for several processes it connects them itself ([`crate::peers`]), installs the
//! [`crate::watchdog`] and hands the sockets to timely.

use timely::communication::allocator::zero_copy::initialize::initialize_networking_from_sockets;
use timely::communication::allocator::ProcessBuilder;
use timely::communication::{AllocatorBuilder, Hooks, WorkerGuards};
use timely::worker::Worker;
use timely::{CommunicationConfig, WorkerConfig};

use crate::cli::TimelyArgs;
use crate::peers::{self, Greeting};
use crate::UsageError;

/// Checks the flags; errors are usage errors (exit code 2).
fn check_flags(args: &TimelyArgs) -> Result<(), UsageError> {
    if args.threads == 0 || args.processes == 0 {
        return Err(UsageError("-w and -n must be at least 1".into()));
    }
    if args.process >= args.processes {
        return Err(UsageError(format!(
            "-p {} is out of range for -n {}",
            args.process, args.processes
        )));
    }
    Ok(())
}

/// The hostfile's addresses (or `localhost:2101...` without `-h`).
pub fn addresses(args: &TimelyArgs) -> Result<Vec<String>, UsageError> {
    match &args.hostfile {
        Some(path) => read_hostfile(path, args.processes),
        None => Ok((0..args.processes)
            .map(|i| format!("localhost:{}", 2101 + i))
            .collect()),
    }
}

/// Validates the flags and, for several processes, the hostfile, before any work.
pub fn validate(args: &TimelyArgs) -> Result<(), UsageError> {
    check_flags(args)?;
    if args.processes > 1 {
        addresses(args)?;
    }
    Ok(())
}

/// Runs `func` on every worker of this process, like `timely::execute`. With several
/// processes it first connects to every peer (errors name the peer; see
/// [`peers::connect`]), checking that all run the same `-n`, `-w`, hostfile and job
/// (`job` is a hash of the job's arguments), and installs the watchdog that turns a
/// lost connection into a clear error and exit code 1.
pub fn execute<T, F>(args: &TimelyArgs, job: u64, func: F) -> anyhow::Result<WorkerGuards<T>>
where
    T: Send + 'static,
    F: Fn(&mut Worker) -> T + Send + Sync + 'static,
{
    check_flags(args)?;
    if args.processes == 1 {
        let communication = if args.zerocopy {
            CommunicationConfig::ProcessBinary(args.threads)
        } else if args.threads > 1 {
            CommunicationConfig::Process(args.threads)
        } else {
            CommunicationConfig::Thread
        };
        let config = timely::Config {
            communication,
            worker: WorkerConfig::default(),
        };
        return timely::execute(config, func)
            .map_err(|e| anyhow::anyhow!("cannot start the workers: {e}"));
    }
    let addresses = addresses(args)?;
    let timeout = peers::timeout_from_env()?;
    let me = Greeting {
        process: args.process as u64,
        processes: args.processes as u64,
        threads: args.threads as u64,
        hosts: peers::hosts_hash(&addresses),
        job,
    };
    crate::watchdog::install(addresses.clone());
    let sockets = peers::connect(&addresses, me, timeout)?;
    let hooks = Hooks::default();
    let local = if args.zerocopy {
        ProcessBuilder::new_bytes_vector(args.threads, hooks.refill.clone(), hooks.spill.clone())
    } else {
        ProcessBuilder::new_typed_vector(args.threads, hooks.refill.clone(), hooks.spill.clone())
    };
    let (builders, guard) =
        initialize_networking_from_sockets(local, sockets, args.process, args.threads, hooks)
            .map_err(|e| anyhow::anyhow!("cannot start the network threads: {e}"))?;
    let builders = builders.into_iter().map(AllocatorBuilder::Tcp).collect();
    timely::execute::execute_from(builders, Box::new(guard), WorkerConfig::default(), func)
        .map_err(|e| anyhow::anyhow!("cannot start the workers: {e}"))
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
        if let Some(first) = out.iter().position(|a: &String| a == line) {
            return Err(UsageError(format!(
                "hostfile {} line {}: `{line}` is already the address of process {first}",
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
