//! [`Upload`]: a file written in pieces below a [`Location`] and made visible once, at
//! [`Upload::commit`]: a hidden temporary file renamed into place locally, a single PUT or
//! a multipart upload (completed at commit) on an object store. Readers never see a
//! partial file, and memory holds at most one upload chunk per open file.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use sha2::{Digest, Sha256};

use crate::store::{join, runtime, Location};
use crate::{ConnectorError, Result};

/// Bytes buffered before an object-store file turns into a multipart upload, and the
/// size of each part: a file smaller than this is one PUT.
const CHUNK: usize = 8 << 20;
/// Parts of one upload in flight at once; writing waits beyond it (back-pressure).
const IN_FLIGHT: usize = 4;

/// A committed file: its size and SHA-256 (hex).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committed {
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256 of the bytes, lower-case hex.
    pub sha256: String,
}

enum Target {
    Local {
        file: BufWriter<std::fs::File>,
        tmp: PathBuf,
        dir: PathBuf,
    },
    Remote {
        store: Arc<dyn ObjectStore>,
        prefix: ObjectPath,
        path: ObjectPath,
        buf: Vec<u8>,
        upload: Option<WriteMultipart>,
    },
}

/// A file being written; dropped without [`Upload::commit`], it leaves nothing behind.
pub struct Upload {
    target: Option<Target>,
    bytes: u64,
    hash: Sha256,
}

fn store_error(path: &ObjectPath, source: object_store::Error) -> ConnectorError {
    ConnectorError::Store {
        path: path.to_string(),
        source,
    }
}

impl Location {
    /// Starts writing a file below this location, under the working name `rel`
    /// hidden as `.<name>.inprogress` (readers skip hidden files) until
    /// [`Upload::commit_as`] gives it its name.
    pub fn create(&self, rel: &str) -> Result<Upload> {
        let (parent, name) = rel.rsplit_once('/').unwrap_or(("", rel));
        let hidden = format!("{parent}/.{name}.inprogress");
        let target = match self {
            Location::Local(dir) => {
                let tmp = dir.join(&hidden);
                let parent = dir.join(parent);
                std::fs::create_dir_all(&parent)
                    .map_err(|e| ConnectorError::io(parent.display().to_string(), e))?;
                let file = std::fs::File::create(&tmp)
                    .map_err(|e| ConnectorError::io(tmp.display().to_string(), e))?;
                Target::Local {
                    file: BufWriter::with_capacity(1 << 20, file),
                    tmp,
                    dir: dir.clone(),
                }
            }
            Location::Remote { store, prefix, .. } => Target::Remote {
                store: store.clone(),
                prefix: prefix.clone(),
                path: join(prefix, &hidden),
                buf: Vec::new(),
                upload: None,
            },
        };
        Ok(Upload {
            target: Some(target),
            bytes: 0,
            hash: Sha256::new(),
        })
    }

    /// Makes every file written below this location so far durable: one `syncfs` of
    /// its file system locally (instead of one `fsync` per file); object stores are
    /// durable at each PUT.
    pub fn sync(&self) -> Result<()> {
        match self {
            Location::Local(dir) => {
                let d = std::fs::File::open(dir)
                    .map_err(|e| ConnectorError::io(dir.display().to_string(), e))?;
                rustix::fs::syncfs(&d)
                    .map_err(|e| ConnectorError::io(dir.display().to_string(), e.into()))
            }
            Location::Remote { .. } => Ok(()),
        }
    }

    /// Deletes the file `rel` (a missing file is not an error).
    pub fn delete(&self, rel: &str) -> Result<()> {
        match self {
            Location::Local(dir) => match std::fs::remove_file(dir.join(rel)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(ConnectorError::io(dir.join(rel).display().to_string(), e))
                }
                _ => Ok(()),
            },
            Location::Remote { store, prefix, .. } => {
                let target = join(prefix, rel);
                match runtime().block_on(store.delete(&target)) {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(source) => Err(store_error(&target, source)),
                }
            }
        }
    }
}

impl Write for Upload {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        match self.target.as_mut() {
            Some(Target::Local { file, .. }) => file.write_all(data)?,
            Some(Target::Remote { buf, .. }) if buf.len() + data.len() < CHUNK => {
                buf.extend_from_slice(data)
            }
            Some(Target::Remote {
                store,
                path,
                buf,
                upload,
                ..
            }) => {
                buf.extend_from_slice(data);
                let _guard = runtime().enter();
                if upload.is_none() {
                    let started = runtime()
                        .block_on(store.put_multipart(path))
                        .map_err(std::io::Error::other)?;
                    *upload = Some(WriteMultipart::new_with_chunk_size(started, CHUNK));
                }
                if let Some(u) = upload.as_mut() {
                    runtime()
                        .block_on(u.wait_for_capacity(IN_FLIGHT))
                        .map_err(std::io::Error::other)?;
                    u.put(std::mem::take(buf).into());
                }
            }
            None => return Err(std::io::Error::other("upload already finished")),
        }
        self.hash.update(data);
        self.bytes += data.len() as u64;
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Upload {
    /// Makes the file visible as `rel` (below its location), replacing any file of that
    /// name. A local file is renamed into place without an `fsync`: durability comes
    /// from a later [`Location::sync`]. A small object-store file is one PUT; a large
    /// one completes its multipart upload and is moved into place.
    pub fn commit_as(mut self, rel: &str) -> Result<Committed> {
        let committed = Committed {
            bytes: self.bytes,
            sha256: crate::parquet::hex_digest(&self.hash.clone().finalize()),
        };
        match self.target.take() {
            Some(Target::Local { file, tmp, dir }) => {
                let path = dir.join(rel);
                let finish = || -> std::io::Result<()> {
                    file.into_inner().map_err(|e| e.into_error())?;
                    if rel.ends_with(".parquet") {
                        crate::failpoint::reach("parquet");
                    }
                    std::fs::rename(&tmp, &path)
                };
                finish().map_err(|e| {
                    let _ = std::fs::remove_file(&tmp);
                    ConnectorError::io(path.display().to_string(), e)
                })?;
            }
            Some(Target::Remote {
                store,
                prefix,
                path,
                buf,
                upload,
            }) => {
                let target = join(&prefix, rel);
                let done = match upload {
                    None => runtime()
                        .block_on(store.put(&target, buf.into()))
                        .map(|_| ()),
                    Some(mut u) => {
                        let _guard = runtime().enter();
                        u.put(buf.into());
                        runtime().block_on(async {
                            u.finish().await?;
                            store.rename(&path, &target).await
                        })
                    }
                };
                done.map_err(|source| store_error(&target, source))?;
            }
            None => {}
        }
        Ok(committed)
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        match self.target.take() {
            Some(Target::Local { tmp, .. }) => {
                let _ = std::fs::remove_file(tmp);
            }
            Some(Target::Remote {
                upload: Some(u), ..
            }) => {
                let _guard = runtime().enter();
                let _ = runtime().block_on(u.abort());
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_file_appears_only_at_commit() {
        let dir = tempfile::tempdir().unwrap();
        let loc = Location::Local(dir.path().to_path_buf());
        let mut up = loc.create("a/work.parquet").unwrap();
        up.write_all(b"hello ").unwrap();
        up.write_all(b"world").unwrap();
        assert!(
            loc.list_files("a").unwrap().is_empty(),
            "hidden until commit"
        );
        let c = up.commit_as("a/b.parquet").unwrap();
        loc.sync().unwrap();
        assert_eq!(c.bytes, 11);
        assert_eq!(
            c.sha256,
            crate::parquet::hex_digest(&Sha256::digest(b"hello world"))
        );
        assert_eq!(loc.get("a/b.parquet").unwrap().unwrap(), b"hello world");
        drop(loc.create("a/c.parquet").unwrap());
        assert_eq!(loc.list_files("a").unwrap(), ["a/b.parquet"]);
        assert_eq!(std::fs::read_dir(dir.path().join("a")).unwrap().count(), 1);
        loc.delete("a/b.parquet").unwrap();
        loc.delete("a/b.parquet").unwrap();
        assert!(loc.list_files("a").unwrap().is_empty());
    }

    #[test]
    fn a_large_remote_file_is_a_multipart_upload() {
        let loc = Location::parse("memory:///lake").unwrap();
        let mut up = loc.create("x/big.parquet").unwrap();
        let piece = vec![7u8; 3 << 20];
        for _ in 0..7 {
            up.write_all(&piece).unwrap();
        }
        assert!(
            loc.list_files("x").unwrap().is_empty(),
            "hidden until commit"
        );
        assert!(!loc
            .list_files("")
            .unwrap()
            .iter()
            .any(|f| f.ends_with("big.parquet")));
        let c = up.commit_as("x/big.parquet").unwrap();
        assert_eq!(c.bytes, 21 << 20);
        assert_eq!(loc.get("x/big.parquet").unwrap().unwrap().len(), 21 << 20);
        let mut small = loc.create("x/small.parquet").unwrap();
        small.write_all(b"tiny").unwrap();
        small.commit_as("x/small.parquet").unwrap();
        assert_eq!(loc.get("x/small.parquet").unwrap().unwrap(), b"tiny");
        drop(loc.create("x/dropped.parquet").unwrap());
        assert_eq!(
            loc.list_files("x").unwrap(),
            ["x/big.parquet", "x/small.parquet"]
        );
    }
}
