//! Locations on local disk or in an object store (`file://`, `s3://`, `gs://`, `az://`):
//! parsing URLs, listing inputs with globs, downloading inputs, writing outputs atomically.
//!
//! Local paths use `std::fs` directly (fast, streaming); remote stores go through
//! `object_store` on a shared tokio runtime. Credentials come from the usual
//! environment variables (`AWS_*`, `GOOGLE_*`, `AZURE_*`) and are never logged.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use futures::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::{ConnectorError, Result};

/// The shared runtime that drives object-store requests.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("marketflow-io")
            .enable_all()
            .build()
            .expect("cannot start the I/O runtime")
    })
}

/// A directory-like location: a local directory or a prefix in an object store.
#[derive(Clone, Debug)]
pub enum Location {
    /// A local directory.
    Local(PathBuf),
    /// A prefix inside an object store.
    Remote {
        /// The store.
        store: Arc<dyn ObjectStore>,
        /// The prefix inside the store.
        prefix: ObjectPath,
        /// The URL as given, for messages.
        url: String,
    },
}

fn has_scheme(url: &str) -> bool {
    url.find("://")
        .is_some_and(|i| i > 1 && url[..i].chars().all(|c| c.is_ascii_alphanumeric()))
}

fn store_options() -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(k, _)| {
            let k = k.to_ascii_lowercase();
            k.starts_with("aws_") || k.starts_with("google_") || k.starts_with("azure_")
        })
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect()
}

impl Location {
    /// Parses a local path, a `file://` URL or an object-store URL.
    ///
    /// ```
    /// use connectors::store::Location;
    /// let loc = Location::parse("file:///tmp/out").unwrap();
    /// assert_eq!(loc.child_url("bars/x.parquet"), "/tmp/out/bars/x.parquet");
    /// assert!(Location::parse("ftp://nope/x").is_err());
    /// ```
    pub fn parse(url: &str) -> Result<Location> {
        if let Some(path) = url.strip_prefix("file://") {
            return Ok(Location::Local(absolute(path)));
        }
        if !has_scheme(url) {
            return Ok(Location::Local(absolute(url)));
        }
        let parsed = url::Url::parse(url).map_err(|e| ConnectorError::InvalidUrl {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
        match parsed.scheme() {
            "s3" | "s3a" | "gs" | "az" | "azure" | "abfs" | "abfss" | "memory" => {}
            other => {
                return Err(ConnectorError::InvalidUrl {
                    url: url.to_string(),
                    reason: format!(
                        "unsupported scheme `{other}` (use a path, file://, s3://, gs:// or az://)"
                    ),
                })
            }
        }
        let (store, prefix) =
            object_store::parse_url_opts(&parsed, store_options()).map_err(|e| {
                ConnectorError::InvalidUrl {
                    url: url.to_string(),
                    reason: e.to_string(),
                }
            })?;
        Ok(Location::Remote {
            store: Arc::from(store),
            prefix,
            url: url.trim_end_matches('/').to_string(),
        })
    }

    /// The URL (or local path) of `rel` below this location.
    pub fn child_url(&self, rel: &str) -> String {
        match self {
            Location::Local(dir) => dir.join(rel).display().to_string(),
            Location::Remote { url, .. } => format!("{url}/{rel}"),
        }
    }

    /// Writes `bytes` to `rel` below this location, atomically: a local file is written
    /// under a temporary name and renamed; an object-store PUT is atomic by itself.
    pub fn put(&self, rel: &str, bytes: Vec<u8>) -> Result<()> {
        match self {
            Location::Local(dir) => {
                let path = dir.join(rel);
                let parent = path.parent().unwrap_or(dir);
                std::fs::create_dir_all(parent)
                    .map_err(|e| ConnectorError::io(parent.display().to_string(), e))?;
                let tmp = parent.join(format!(
                    ".{}.tmp-{}",
                    path.file_name().and_then(|n| n.to_str()).unwrap_or("part"),
                    std::process::id()
                ));
                let write = || -> std::io::Result<()> {
                    let mut f = std::fs::File::create(&tmp)?;
                    let (head, tail) = bytes.split_at(bytes.len() / 2);
                    f.write_all(head)?;
                    if rel.ends_with(".parquet") {
                        crate::failpoint::reach("parquet");
                    } else if rel.starts_with("_checkpoints/") {
                        crate::failpoint::reach("checkpoint");
                    }
                    f.write_all(tail)?;
                    f.sync_all()?;
                    std::fs::rename(&tmp, &path)
                };
                write().map_err(|e| ConnectorError::io(path.display().to_string(), e))
            }
            Location::Remote { store, prefix, .. } => {
                let target = join(prefix, rel);
                runtime()
                    .block_on(store.put(&target, bytes.into()))
                    .map(|_| ())
                    .map_err(|source| ConnectorError::Store {
                        path: target.to_string(),
                        source,
                    })
            }
        }
    }

    /// Reads `rel` below this location, or `None` when it does not exist.
    pub fn get(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        match self {
            Location::Local(dir) => match std::fs::read(dir.join(rel)) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(ConnectorError::io(dir.join(rel).display().to_string(), e)),
            },
            Location::Remote { store, prefix, .. } => {
                let target = join(prefix, rel);
                let got = runtime().block_on(async { store.get(&target).await?.bytes().await });
                match got {
                    Ok(b) => Ok(Some(b.to_vec())),
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(source) => Err(ConnectorError::Store {
                        path: target.to_string(),
                        source,
                    }),
                }
            }
        }
    }
}

impl Location {
    /// Paths (relative to this location) of every file below `rel`, sorted; empty when
    /// `rel` does not exist. Temporary files of unfinished local writes are left out.
    pub fn list_files(&self, rel: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        match self {
            Location::Local(dir) => {
                let mut stack = vec![dir.join(rel)];
                while let Some(d) = stack.pop() {
                    let entries = match std::fs::read_dir(&d) {
                        Ok(e) => e,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(ConnectorError::io(d.display().to_string(), e)),
                    };
                    for entry in entries {
                        let entry =
                            entry.map_err(|e| ConnectorError::io(d.display().to_string(), e))?;
                        let path = entry.path();
                        if path.is_dir() {
                            stack.push(path);
                        } else if !entry.file_name().to_string_lossy().starts_with('.') {
                            if let Ok(r) = path.strip_prefix(dir) {
                                out.push(r.to_string_lossy().replace('\\', "/"));
                            }
                        }
                    }
                }
            }
            Location::Remote { store, prefix, .. } => {
                let below = join(prefix, rel);
                let metas: Vec<_> =
                    runtime().block_on(store.list(Some(&below)).collect::<Vec<_>>());
                for meta in metas {
                    let meta = meta.map_err(|source| ConnectorError::Store {
                        path: below.to_string(),
                        source,
                    })?;
                    let r = meta
                        .location
                        .as_ref()
                        .strip_prefix(prefix.as_ref())
                        .unwrap_or(meta.location.as_ref());
                    out.push(r.trim_start_matches('/').to_string());
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Deletes every file below `rel` (a missing `rel` is not an error).
    pub fn remove_all(&self, rel: &str) -> Result<()> {
        match self {
            Location::Local(dir) => match std::fs::remove_dir_all(dir.join(rel)) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(ConnectorError::io(dir.join(rel).display().to_string(), e)),
            },
            Location::Remote { store, prefix, .. } => {
                for file in self.list_files(rel)? {
                    let target = join(prefix, &file);
                    match runtime().block_on(store.delete(&target)) {
                        Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                        Err(source) => {
                            return Err(ConnectorError::Store {
                                path: target.to_string(),
                                source,
                            })
                        }
                    }
                }
                Ok(())
            }
        }
    }
}

pub(crate) fn join(prefix: &ObjectPath, rel: &str) -> ObjectPath {
    let mut p = prefix.clone();
    for part in rel.split('/').filter(|s| !s.is_empty()) {
        p = p.join(part);
    }
    p
}

fn absolute(path: &str) -> PathBuf {
    let p = Path::new(path);
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

fn is_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

fn hidden(name: &str) -> bool {
    name.starts_with('.') || name.starts_with('_')
}

/// Expands input arguments (paths, globs, directories, object-store URLs and prefixes)
/// into a sorted, de-duplicated list of file URLs. Hidden files (`.x`, `_x`) inside
/// listed directories are skipped. An argument that matches nothing is an error.
pub fn list_inputs(args: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for arg in args {
        let before = out.len();
        if has_scheme(arg) && !arg.starts_with("file://") {
            list_remote(arg, &mut out)?;
        } else {
            let local = arg.strip_prefix("file://").unwrap_or(arg);
            list_local(local, &mut out)?;
        }
        if out.len() == before {
            return Err(ConnectorError::NoInput(arg.clone()));
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn list_local(arg: &str, out: &mut Vec<String>) -> Result<()> {
    if is_glob(arg) {
        let paths = glob::glob(arg).map_err(|e| ConnectorError::InvalidUrl {
            url: arg.to_string(),
            reason: e.to_string(),
        })?;
        for p in paths.flatten() {
            if p.is_file() {
                out.push(absolute(&p.display().to_string()).display().to_string());
            }
        }
        return Ok(());
    }
    let path = absolute(arg);
    if path.is_dir() {
        walk(&path, out).map_err(|e| ConnectorError::io(arg, e))?;
    } else if path.is_file() {
        out.push(path.display().to_string());
    }
    Ok(())
}

fn walk(dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().to_string();
        if hidden(&name) {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else {
            out.push(path.display().to_string());
        }
    }
    Ok(())
}

fn list_remote(arg: &str, out: &mut Vec<String>) -> Result<()> {
    // Split at the first path segment holding a glob character.
    let (base, pattern) = match arg.find(['*', '?', '[']) {
        Some(i) => {
            let cut = arg[..i].rfind('/').map(|j| j + 1).unwrap_or(i);
            (&arg[..cut], Some(&arg[cut..]))
        }
        None => (arg, None),
    };
    let Location::Remote { store, prefix, url } = Location::parse(base.trim_end_matches('/'))?
    else {
        return Ok(());
    };
    let pattern = pattern
        .map(|p| {
            glob::Pattern::new(p).map_err(|e| ConnectorError::InvalidUrl {
                url: arg.into(),
                reason: e.to_string(),
            })
        })
        .transpose()?;
    if pattern.is_none() && runtime().block_on(store.head(&prefix)).is_ok() {
        out.push(url);
        return Ok(());
    }
    let metas: Vec<_> = runtime().block_on(store.list(Some(&prefix)).collect::<Vec<_>>());
    let base_url = url.trim_end_matches('/').to_string();
    for meta in metas {
        let meta = meta.map_err(|source| ConnectorError::Store {
            path: arg.to_string(),
            source,
        })?;
        let rel = meta
            .location
            .as_ref()
            .strip_prefix(prefix.as_ref())
            .unwrap_or(meta.location.as_ref());
        let rel = rel.trim_start_matches('/');
        if rel.split('/').any(hidden) {
            continue;
        }
        if pattern.as_ref().is_none_or(|p| p.matches(rel)) {
            out.push(format!("{base_url}/{rel}"));
        }
    }
    Ok(())
}

/// A local path to read `url` from: the file itself when local, otherwise a download
/// into `scratch` (streamed, so memory does not grow with the object's size).
pub fn fetch_local(url: &str, scratch: &Path) -> Result<PathBuf> {
    if !has_scheme(url) || url.starts_with("file://") {
        return Ok(PathBuf::from(url.strip_prefix("file://").unwrap_or(url)));
    }
    let parsed = url::Url::parse(url).map_err(|e| ConnectorError::InvalidUrl {
        url: url.into(),
        reason: e.to_string(),
    })?;
    let (store, path) = object_store::parse_url_opts(&parsed, store_options()).map_err(|e| {
        ConnectorError::InvalidUrl {
            url: url.into(),
            reason: e.to_string(),
        }
    })?;
    let name = path.filename().unwrap_or("object").to_string();
    let target = scratch.join(format!(
        "{:016x}-{name}",
        operators::route::stable_hash(url.as_bytes())
    ));
    let mut file = std::fs::File::create(&target)
        .map_err(|e| ConnectorError::io(target.display().to_string(), e))?;
    runtime()
        .block_on(async {
            let mut stream = store.get(&path).await?.into_stream();
            while let Some(bytes) = stream.next().await {
                let bytes = bytes?;
                file.write_all(&bytes)
                    .map_err(|e| object_store::Error::Generic {
                        store: "local",
                        source: Box::new(e),
                    })?;
            }
            Ok::<(), object_store::Error>(())
        })
        .map_err(|source| ConnectorError::Store {
            path: url.to_string(),
            source,
        })?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_globs_and_dirs_sorted_and_skips_hidden() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.csv", "a.csv", "_SUCCESS", ".hidden", "c.parquet"] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        let d = dir.path().display().to_string();
        let all = list_inputs(std::slice::from_ref(&d)).unwrap();
        assert_eq!(all.len(), 3);
        assert!(all[0].ends_with("a.csv") && all[2].ends_with("c.parquet"));
        let csv = list_inputs(&[format!("{d}/*.csv"), format!("file://{d}/a.csv")]).unwrap();
        assert_eq!(csv.len(), 2);
        assert!(matches!(
            list_inputs(&[format!("{d}/*.json")]),
            Err(ConnectorError::NoInput(_))
        ));
    }

    #[test]
    fn local_put_is_atomic_and_readable() {
        let dir = tempfile::tempdir().unwrap();
        let loc = Location::parse(&format!("file://{}", dir.path().display())).unwrap();
        loc.put("a/b/c.txt", b"hello".to_vec()).unwrap();
        assert_eq!(loc.get("a/b/c.txt").unwrap().unwrap(), b"hello");
        assert!(loc.get("missing").unwrap().is_none());
        let names: Vec<_> = std::fs::read_dir(dir.path().join("a/b"))
            .unwrap()
            .flatten()
            .collect();
        assert_eq!(names.len(), 1, "no temporary file left behind");
    }

    #[test]
    fn memory_store_round_trip() {
        let loc = Location::parse("memory:///x").unwrap();
        loc.put("k/v.json", b"{}".to_vec()).unwrap();
        assert_eq!(loc.get("k/v.json").unwrap().unwrap(), b"{}");
    }
}
