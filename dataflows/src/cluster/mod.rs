//! Cluster start-up from timely's `-w -n -p -h -z` flags: clear errors for a malformed
//! hostfile or inconsistent flags, and [`execute`], which replaces `timely::execute`:
//! for several processes it connects them itself ([`peers`]), installs the
//! [`watchdog`] and hands the sockets to timely.

mod error;
pub mod peers;
pub mod watchdog;

use std::path::{Path, PathBuf};

use timely::communication::allocator::zero_copy::initialize::initialize_networking_from_sockets;
use timely::communication::allocator::ProcessBuilder;
use timely::communication::{AllocatorBuilder, Hooks, WorkerGuards};
use timely::worker::Worker;
use timely::{CommunicationConfig, WorkerConfig};

pub use error::ClusterError;
use peers::Greeting;

/// timely's cluster flags, as given on the command line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterSpec {
    /// Worker threads per process (`-w`).
    pub threads: usize,
    /// Number of processes (`-n`).
    pub processes: usize,
    /// Index of this process, 0-based (`-p`).
    pub process: usize,
    /// Hostfile: one host:port a line, in process order (`-h`).
    pub hostfile: Option<PathBuf>,
    /// Serialize data between local workers too (`-z`).
    pub zerocopy: bool,
}

impl ClusterSpec {
    /// Workers of the whole cluster.
    pub fn workers(&self) -> usize {
        self.threads * self.processes
    }

    /// Checks the flags alone.
    fn check_flags(&self) -> Result<(), ClusterError> {
        if self.threads == 0 || self.processes == 0 {
            return Err(ClusterError::Flags("-w and -n must be at least 1".into()));
        }
        if self.process >= self.processes {
            return Err(ClusterError::Flags(format!(
                "-p {} is out of range for -n {}",
                self.process, self.processes
            )));
        }
        Ok(())
    }

    /// The hostfile's addresses (or `localhost:2101...` without `-h`).
    pub fn addresses(&self) -> Result<Vec<String>, ClusterError> {
        match &self.hostfile {
            Some(path) => read_hostfile(path, self.processes),
            None => Ok((0..self.processes)
                .map(|i| format!("localhost:{}", 2101 + i))
                .collect()),
        }
    }

    /// Validates the flags and, for several processes, the hostfile, before any work.
    pub fn validate(&self) -> Result<(), ClusterError> {
        self.check_flags()?;
        if self.processes > 1 {
            self.addresses()?;
        }
        Ok(())
    }
}

/// Runs `func` on every worker of this process, like `timely::execute`. With several
/// processes it first connects to every peer (errors name the peer; see
/// [`peers::connect`]), checking that all run the same `-n`, `-w`, hostfile and job
/// (`job` is a hash of the job's arguments), and installs the watchdog that turns a
/// lost connection into a clear error and exit code 1.
pub fn execute<T, F>(spec: &ClusterSpec, job: u64, func: F) -> Result<WorkerGuards<T>, ClusterError>
where
    T: Send + 'static,
    F: Fn(&mut Worker) -> T + Send + Sync + 'static,
{
    spec.check_flags()?;
    if spec.processes == 1 {
        let communication = if spec.zerocopy {
            CommunicationConfig::ProcessBinary(spec.threads)
        } else if spec.threads > 1 {
            CommunicationConfig::Process(spec.threads)
        } else {
            CommunicationConfig::Thread
        };
        let config = timely::Config {
            communication,
            worker: WorkerConfig::default(),
        };
        return timely::execute(config, func)
            .map_err(|e| ClusterError::Start(format!("cannot start the workers: {e}")));
    }
    let addresses = spec.addresses()?;
    let timeout = peers::timeout_from_env()?;
    let me = Greeting {
        process: spec.process as u64,
        processes: spec.processes as u64,
        threads: spec.threads as u64,
        hosts: peers::hosts_hash(&addresses),
        job,
    };
    watchdog::install(addresses.clone());
    let sockets = peers::connect(&addresses, me, timeout)?;
    let hooks = Hooks::default();
    let local = if spec.zerocopy {
        ProcessBuilder::new_bytes_vector(spec.threads, hooks.refill.clone(), hooks.spill.clone())
    } else {
        ProcessBuilder::new_typed_vector(spec.threads, hooks.refill.clone(), hooks.spill.clone())
    };
    let (builders, guard) =
        initialize_networking_from_sockets(local, sockets, spec.process, spec.threads, hooks)
            .map_err(|e| ClusterError::Start(format!("cannot start the network threads: {e}")))?;
    let builders = builders.into_iter().map(AllocatorBuilder::Tcp).collect();
    timely::execute::execute_from(builders, Box::new(guard), WorkerConfig::default(), func)
        .map_err(|e| ClusterError::Start(format!("cannot start the workers: {e}")))
}

/// Reads `host:port` lines (blank lines and `#` comments skipped); needs `n` of them.
pub fn read_hostfile(path: &Path, n: usize) -> Result<Vec<String>, ClusterError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ClusterError::Hostfile(format!("hostfile {}: cannot read: {e}", path.display()))
    })?;
    parse_hostfile(&text, &path.display().to_string(), n)
}

/// The addresses of a hostfile's text (`name` is its path, for messages).
pub fn parse_hostfile(text: &str, name: &str, n: usize) -> Result<Vec<String>, ClusterError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if !is_host_port(line) {
            return Err(ClusterError::Hostfile(format!(
                "hostfile {name} line {}: `{line}` is not host:port",
                i + 1
            )));
        }
        if let Some(first) = out.iter().position(|a: &String| a == line) {
            return Err(ClusterError::Hostfile(format!(
                "hostfile {name} line {}: `{line}` is already the address of process {first}",
                i + 1
            )));
        }
        out.push(line.to_string());
    }
    if out.len() < n {
        return Err(ClusterError::Hostfile(format!(
            "hostfile {name} lists {} address(es) but -n is {n}",
            out.len()
        )));
    }
    out.truncate(n);
    Ok(out)
}

/// True for `host:port` with a non-empty host and a port in 1..=65535.
pub fn is_host_port(address: &str) -> bool {
    address
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(threads: usize, processes: usize, process: usize) -> ClusterSpec {
        ClusterSpec {
            threads,
            processes,
            process,
            ..ClusterSpec::default()
        }
    }

    #[test]
    fn flags_are_checked() {
        assert!(spec(1, 1, 0).validate().is_ok());
        let e = spec(0, 1, 0).validate().unwrap_err();
        assert!(e.is_usage() && e.to_string().contains("-w and -n"), "{e}");
        let e = spec(1, 2, 2).validate().unwrap_err();
        assert_eq!(e.to_string(), "-p 2 is out of range for -n 2");
        assert_eq!(spec(2, 3, 0).workers(), 6);
        assert_eq!(
            spec(1, 2, 0).addresses().unwrap(),
            ["localhost:2101", "localhost:2102"]
        );
    }

    #[test]
    fn host_port_checks() {
        assert!(is_host_port("localhost:2101"));
        assert!(is_host_port("[::1]:80"));
        assert!(!is_host_port("localhost"));
        assert!(!is_host_port(":2101"));
        assert!(!is_host_port("h:0"));
        assert!(!is_host_port("h:70000"));
        assert!(!is_host_port("h:port"));
    }

    #[test]
    fn hostfiles_parse_with_line_numbers() {
        let text = "# cluster\nh1:2101\n\nh2:2102 # second\nh3:2103\n";
        assert_eq!(
            parse_hostfile(text, "f", 2).unwrap(),
            ["h1:2101", "h2:2102"]
        );
        let e = parse_hostfile("h1:1\nnot-an-address\n", "f", 2).unwrap_err();
        assert!(e.is_usage());
        assert_eq!(
            e.to_string(),
            "hostfile f line 2: `not-an-address` is not host:port"
        );
        let e = parse_hostfile("h1:1\nh1:1\n", "f", 2).unwrap_err();
        assert!(
            e.to_string().contains("already the address of process 0"),
            "{e}"
        );
        let e = parse_hostfile("h1:1\n", "f", 2).unwrap_err();
        assert!(
            e.to_string().contains("lists 1 address(es) but -n is 2"),
            "{e}"
        );
        let e = read_hostfile(Path::new("/nonexistent/hosts"), 2).unwrap_err();
        assert!(e.to_string().contains("cannot read"), "{e}");
    }
}
