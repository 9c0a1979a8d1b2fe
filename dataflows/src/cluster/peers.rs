//! Connection set-up between the processes of a cluster: every process listens on its
//! hostfile address, connects to the lower-indexed processes and accepts the higher
//! ones, retrying until a deadline, and checks with a greeting that all agree on
//! `-n`, `-w`, the hostfile and the job before handing the sockets to timely.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use operators::duration::DurationMs;

use super::ClusterError;

/// First bytes of every greeting: "marketflow cluster, protocol 1".
const MAGIC: [u8; 8] = *b"MFLOWCL1";
/// Greeting length: magic plus five big-endian u64 fields.
const GREETING_LEN: usize = 8 + 5 * 8;
/// Pause between connection attempts.
const RETRY: Duration = Duration::from_millis(100);
/// Environment variable: how long to wait for every peer (a duration: `500ms`, `30s`).
pub const TIMEOUT_VAR: &str = "MARKETFLOW_CONNECT_TIMEOUT";
/// Default of [`TIMEOUT_VAR`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// TCP keepalive on established connections: first probe after this much silence...
const KEEPALIVE_TIME: Duration = Duration::from_secs(10);
/// ...then one probe per interval, the connection dropped after this many unanswered.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(2);
const KEEPALIVE_RETRIES: u32 = 5;
/// Sent data unacknowledged this long drops the connection (Linux `TCP_USER_TIMEOUT`).
#[cfg(target_os = "linux")]
const USER_TIMEOUT: Duration = Duration::from_secs(30);

/// What a process tells its peers about itself; every field but `process` must agree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Greeting {
    /// Index of the process (`-p`).
    pub process: u64,
    /// Number of processes (`-n`).
    pub processes: u64,
    /// Worker threads per process (`-w`).
    pub threads: u64,
    /// Hash of the hostfile's addresses, in order.
    pub hosts: u64,
    /// Hash of the job (inputs, range, features): processes must run the same one.
    pub job: u64,
}

impl Greeting {
    fn encode(&self) -> [u8; GREETING_LEN] {
        let mut out = [0u8; GREETING_LEN];
        out[..8].copy_from_slice(&MAGIC);
        let fields = [
            self.process,
            self.processes,
            self.threads,
            self.hosts,
            self.job,
        ];
        for (i, f) in fields.iter().enumerate() {
            out[8 + 8 * i..16 + 8 * i].copy_from_slice(&f.to_be_bytes());
        }
        out
    }

    fn decode(bytes: &[u8; GREETING_LEN]) -> Option<Greeting> {
        if bytes[..8] != MAGIC {
            return None;
        }
        let f = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[8 + 8 * i..16 + 8 * i]);
            u64::from_be_bytes(b)
        };
        Some(Greeting {
            process: f(0),
            processes: f(1),
            threads: f(2),
            hosts: f(3),
            job: f(4),
        })
    }

    /// The first disagreement between this process (`self`) and a peer, as a message.
    fn mismatch(&self, peer: &Greeting, who: &str) -> Option<String> {
        if peer.processes != self.processes {
            Some(format!(
                "{who} runs with -n {} but this process with -n {}: every process needs the same -n",
                peer.processes, self.processes
            ))
        } else if peer.threads != self.threads {
            Some(format!(
                "{who} runs with -w {} but this process with -w {}: every process needs the same -w",
                peer.threads, self.threads
            ))
        } else if peer.hosts != self.hosts {
            Some(format!(
                "{who} uses a different hostfile: every process needs the same addresses in the same order"
            ))
        } else if peer.job != self.job {
            Some(format!(
                "{who} runs a different job (other command, inputs, range or feature settings): every process needs the same arguments"
            ))
        } else {
            None
        }
    }
}

/// The hash of a hostfile's addresses, for [`Greeting::hosts`].
pub fn hosts_hash(addresses: &[String]) -> u64 {
    operators::route::stable_hash(addresses.join("\n").as_bytes())
}

/// The connect timeout from [`TIMEOUT_VAR`] (default 30 s).
pub fn timeout_from_env() -> Result<Duration, ClusterError> {
    match std::env::var(TIMEOUT_VAR) {
        Err(_) => Ok(DEFAULT_TIMEOUT),
        Ok(v) => {
            parse_timeout(&v).map_err(|e| ClusterError::Timeout(format!("{TIMEOUT_VAR}={v}: {e}")))
        }
    }
}

/// A positive duration such as `500ms` or `30s` ([`DurationMs`]; a bare number is
/// rejected).
pub fn parse_timeout(v: &str) -> Result<Duration, String> {
    let d = DurationMs::parse(v).map_err(|e| e.to_string())?;
    if d.as_ms() == 0 {
        return Err("must be positive (like 500ms or 30s)".into());
    }
    Ok(d.as_std())
}

/// Connects this process (`me.process`) to every other process of `addresses`.
/// Returns one stream per process, `None` at this process's own index, each past
/// its greeting. Errors name the peer (index and address).
pub fn connect(
    addresses: &[String],
    me: Greeting,
    timeout: Duration,
) -> Result<Vec<Option<TcpStream>>, ClusterError> {
    let index = me.process as usize;
    let deadline = Instant::now() + timeout;
    let listener = listen(&addresses[index], index)?;
    let mut streams: Vec<Option<TcpStream>> = (0..addresses.len()).map(|_| None).collect();
    for (peer, address) in addresses.iter().enumerate().take(index) {
        streams[peer] = Some(connect_to(peer, address, me, deadline, timeout)?);
    }
    accept_from(&listener, addresses, me, deadline, timeout, &mut streams)?;
    for s in streams.iter().flatten() {
        s.set_read_timeout(None)?;
        s.set_write_timeout(None)?;
        detect_silent_loss(s)?;
    }
    tracing::info!(
        process = index,
        peers = addresses.len() - 1,
        "cluster connected"
    );
    Ok(streams)
}

/// Keepalive probes and a user timeout, so that a peer whose machine or network
/// vanishes without closing the connection is noticed within about half a minute
/// (a killed or crashed process closes its connections and is noticed at once).
fn detect_silent_loss(stream: &TcpStream) -> std::io::Result<()> {
    let socket = socket2::SockRef::from(stream);
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(KEEPALIVE_TIME)
        .with_interval(KEEPALIVE_INTERVAL)
        .with_retries(KEEPALIVE_RETRIES);
    socket.set_tcp_keepalive(&keepalive)?;
    #[cfg(target_os = "linux")]
    socket.set_tcp_user_timeout(Some(USER_TIMEOUT))?;
    Ok(())
}

/// Binds this process's address; a clash is a clear error naming the address.
fn listen(address: &str, index: usize) -> Result<TcpListener, ClusterError> {
    let listener = TcpListener::bind(address).map_err(|e| {
        if e.kind() == ErrorKind::AddrInUse {
            ClusterError::Connect(format!(
                "port clash: cannot listen on {address} (process {index} in the hostfile): \
                 address already in use by another program or an earlier run"
            ))
        } else {
            ClusterError::Connect(format!(
                "cannot listen on {address} (process {index} in the hostfile): {e}; \
                 is -p {index} the right index for this machine?"
            ))
        }
    })?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// One connection attempt to each address `address` resolves to, in turn.
fn try_connect(address: &str, deadline: Instant) -> std::io::Result<TcpStream> {
    let mut last = std::io::Error::new(ErrorKind::NotFound, "the name resolves to no address");
    for addr in address.to_socket_addrs()?.collect::<Vec<SocketAddr>>() {
        let left = deadline.saturating_duration_since(Instant::now());
        match TcpStream::connect_timeout(&addr, left.clamp(Duration::from_millis(10), RETRY * 10)) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Connects to lower-indexed `peer`, retrying until `deadline`, then greets it.
fn connect_to(
    peer: usize,
    address: &str,
    me: Greeting,
    deadline: Instant,
    timeout: Duration,
) -> Result<TcpStream, ClusterError> {
    let who = format!("process {peer} ({address})");
    let mut stream = loop {
        match try_connect(address, deadline) {
            Ok(s) => break s,
            Err(e) if Instant::now() + RETRY >= deadline => {
                return Err(ClusterError::Connect(format!(
                    "cannot reach {who} within {:.1}s ({TIMEOUT_VAR}): {e}",
                    timeout.as_secs_f64()
                )))
            }
            Err(_) => std::thread::sleep(RETRY),
        }
    };
    stream.set_nodelay(true)?;
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(RETRY);
    stream.set_read_timeout(Some(left))?;
    stream.set_write_timeout(Some(left))?;
    stream.write_all(&me.encode()).map_err(|e| {
        ClusterError::Connect(format!("lost connection to {who} while greeting it: {e}"))
    })?;
    let peer_greeting = read_greeting(&mut stream)
        .map_err(|e| ClusterError::Connect(format!("no greeting from {who}: {e}")))?
        .ok_or_else(|| {
            ClusterError::Connect(format!(
                "{who} is not a marketflow process of this cluster (wrong greeting)"
            ))
        })?;
    if let Some(m) = me.mismatch(&peer_greeting, &who) {
        return Err(ClusterError::Mismatch(m));
    }
    if peer_greeting.process != peer as u64 {
        return Err(ClusterError::Mismatch(format!(
            "{address} answered as process {} but the hostfile lists it as process {peer}",
            peer_greeting.process
        )));
    }
    Ok(stream)
}

/// Accepts every higher-indexed process, until `deadline`.
fn accept_from(
    listener: &TcpListener,
    addresses: &[String],
    me: Greeting,
    deadline: Instant,
    timeout: Duration,
    streams: &mut [Option<TcpStream>],
) -> Result<(), ClusterError> {
    let index = me.process as usize;
    while let Some(missing) = (index + 1..addresses.len()).find(|&p| streams[p].is_none()) {
        let (mut stream, from) = match listener.accept() {
            Ok(s) => s,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return Err(ClusterError::Connect(format!(
                        "process {missing} ({}) did not connect within {:.1}s ({TIMEOUT_VAR}); is it running?",
                        addresses[missing],
                        timeout.as_secs_f64()
                    )));
                }
                std::thread::sleep(RETRY / 4);
                continue;
            }
            Err(e) => {
                return Err(ClusterError::Connect(format!(
                    "accepting connections on {}: {e}",
                    addresses[index]
                )))
            }
        };
        stream.set_nonblocking(false)?;
        stream.set_nodelay(true)?;
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(RETRY);
        stream.set_read_timeout(Some(left.min(Duration::from_secs(5))))?;
        stream.set_write_timeout(Some(left))?;
        let greeting = match read_greeting(&mut stream) {
            Ok(Some(g)) => g,
            Ok(None) | Err(_) => {
                tracing::warn!(%from, "ignoring a connection without a marketflow greeting");
                continue;
            }
        };
        let peer = greeting.process as usize;
        let who = format!(
            "process {peer} ({})",
            addresses.get(peer).map_or("?", String::as_str)
        );
        // Answer first, so that the peer can report a mismatch too.
        let _ = stream.write_all(&me.encode());
        if let Some(m) = me.mismatch(&greeting, &who) {
            return Err(ClusterError::Mismatch(m));
        }
        if peer <= index || peer >= addresses.len() {
            return Err(ClusterError::Mismatch(format!(
                "a process from {from} connected as process {peer}; only processes {}..{} connect to process {index}",
                index + 1,
                addresses.len()
            )));
        }
        if streams[peer].is_some() {
            return Err(ClusterError::Mismatch(format!(
                "two processes connected as process {peer} (the second from {from}): check -p"
            )));
        }
        streams[peer] = Some(stream);
    }
    Ok(())
}

/// Reads a greeting: `Ok(None)` when the bytes are not one.
fn read_greeting(stream: &mut TcpStream) -> std::io::Result<Option<Greeting>> {
    let mut buf = [0u8; GREETING_LEN];
    stream.read_exact(&mut buf)?;
    Ok(Greeting::decode(&buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn greeting(process: u64, threads: u64) -> Greeting {
        Greeting {
            process,
            processes: 2,
            threads,
            hosts: 7,
            job: 9,
        }
    }

    #[test]
    fn greeting_round_trips_and_rejects_other_bytes() {
        let g = greeting(1, 2);
        assert_eq!(Greeting::decode(&g.encode()), Some(g));
        assert_eq!(Greeting::decode(&[0u8; GREETING_LEN]), None);
    }

    #[test]
    fn mismatch_names_the_flag() {
        let m = greeting(0, 1).mismatch(&greeting(1, 2), "process 1 (x:1)");
        assert!(m.unwrap().contains("-w 2"));
        assert_eq!(greeting(0, 2).mismatch(&greeting(1, 2), "p"), None);
    }

    #[test]
    fn timeouts_parse() {
        assert_eq!(parse_timeout("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_timeout("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_timeout("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_timeout("2").unwrap_err().contains("2s"));
        assert!(parse_timeout("0s").unwrap_err().contains("positive"));
        assert!(parse_timeout("soon").is_err());
    }

    #[test]
    fn mismatches_are_usage_errors_naming_the_difference() {
        let me = greeting(0, 2);
        let other_n = Greeting {
            processes: 3,
            ..greeting(1, 2)
        };
        assert!(me.mismatch(&other_n, "p").unwrap().contains("-n 3"));
        let other_hosts = Greeting {
            hosts: 1,
            ..greeting(1, 2)
        };
        assert!(me.mismatch(&other_hosts, "p").unwrap().contains("hostfile"));
        let other_job = Greeting {
            job: 1,
            ..greeting(1, 2)
        };
        assert!(me
            .mismatch(&other_job, "p")
            .unwrap()
            .contains("different job"));
        assert_ne!(hosts_hash(&["a:1".into()]), hosts_hash(&["b:1".into()]));
    }

    #[test]
    fn two_processes_connect_and_a_missing_one_times_out() {
        let ports: Vec<u16> = (0..2)
            .map(|_| {
                TcpListener::bind("127.0.0.1:0")
                    .unwrap()
                    .local_addr()
                    .unwrap()
                    .port()
            })
            .collect();
        let addresses: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let a2 = addresses.clone();
        let t = std::thread::spawn(move || connect(&a2, greeting(1, 2), Duration::from_secs(5)));
        let zero = connect(&addresses, greeting(0, 2), Duration::from_secs(5)).unwrap();
        let one = t.join().unwrap().unwrap();
        assert!(zero[0].is_none() && zero[1].is_some());
        assert!(one[0].is_some() && one[1].is_none());
        drop((zero, one));
        let err = connect(&addresses, greeting(0, 2), Duration::from_millis(300)).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("process 1") && msg.contains(&addresses[1]),
            "{msg}"
        );
    }
}
