//! Local text inputs: file-type sniffing by magic bytes, streaming gzip/zstd
//! decompression with a byte counter, and a buffered line source with bounded memory.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::{ConnectorError, Result};

/// Size of the decoded-text buffer (it grows only for longer lines).
pub(crate) const BUF_SIZE: usize = 1 << 20;

/// What the first bytes of a file say it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Magic {
    /// Apache Parquet (`PAR1`).
    Parquet,
    /// gzip (`1f 8b`).
    Gzip,
    /// Zstandard (`28 b5 2f fd`).
    Zstd,
    /// Anything else: plain text.
    Plain,
}

/// Reads the first bytes of `path` and classifies the file.
pub(crate) fn sniff(path: &Path, display: &str) -> Result<Magic> {
    let mut file = File::open(path).map_err(|e| ConnectorError::io(display, e))?;
    let mut head = [0u8; 4];
    let mut n = 0;
    while n < head.len() {
        match file.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ConnectorError::io(display, e)),
        }
    }
    let head = &head[..n];
    Ok(if head == b"PAR1" {
        Magic::Parquet
    } else if head.starts_with(&[0x1f, 0x8b]) {
        Magic::Gzip
    } else if head == [0x28, 0xb5, 0x2f, 0xfd] {
        Magic::Zstd
    } else {
        Magic::Plain
    })
}

/// A reader that counts the bytes it hands out.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Opens `path` as decompressed text; returns the line source and the counter of
/// compressed bytes consumed.
pub(crate) fn open_text(
    path: &Path,
    display: &str,
    magic: Magic,
) -> Result<(LineSource, Arc<AtomicU64>)> {
    let file = File::open(path).map_err(|e| ConnectorError::io(display, e))?;
    let count = Arc::new(AtomicU64::new(0));
    let counted = Counting {
        inner: file,
        count: Arc::clone(&count),
    };
    let inner: Box<dyn Read + Send> = match magic {
        Magic::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(
            1 << 16,
            counted,
        ))),
        Magic::Zstd => Box::new(
            zstd::stream::read::Decoder::new(counted)
                .map_err(|e| ConnectorError::io(display, e))?,
        ),
        Magic::Plain => Box::new(counted),
        Magic::Parquet => {
            return Err(ConnectorError::format(
                display,
                "a Parquet file is not text",
            ))
        }
    };
    Ok((LineSource::new(inner, BUF_SIZE), count))
}

/// Splits a byte stream into lines without allocating per line. Memory is bounded by
/// the buffer size or the longest line.
pub(crate) struct LineSource {
    inner: Box<dyn Read + Send>,
    buf: Vec<u8>,
    /// Start of unconsumed data.
    start: usize,
    /// End of valid data.
    end: usize,
    /// Bytes of `buf[start..end]` known to hold no newline.
    scanned: usize,
    /// Start of the line returned last (for `unread`).
    last: usize,
    eof: bool,
    line_no: u64,
}

impl LineSource {
    /// A line source over `inner` with a `capacity`-byte buffer.
    pub fn new(inner: Box<dyn Read + Send>, capacity: usize) -> LineSource {
        LineSource {
            inner,
            buf: vec![0; capacity.max(16)],
            start: 0,
            end: 0,
            scanned: 0,
            last: 0,
            eof: false,
            line_no: 0,
        }
    }

    /// The next line (1-based line number, content without `\n` or `\r\n`), or None at
    /// the end of the input.
    #[inline]
    pub fn next_line(&mut self) -> io::Result<Option<(u64, &[u8])>> {
        loop {
            let from = self.start + self.scanned;
            if let Some(i) = memchr::memchr(b'\n', &self.buf[from..self.end]) {
                let s = self.start;
                let e = from + i;
                self.last = s;
                self.start = e + 1;
                self.scanned = 0;
                self.line_no += 1;
                return Ok(Some((self.line_no, trim_cr(&self.buf[s..e]))));
            }
            self.scanned = self.end - self.start;
            if self.eof {
                if self.start == self.end {
                    return Ok(None);
                }
                let s = self.start;
                self.last = s;
                self.start = self.end;
                self.scanned = 0;
                self.line_no += 1;
                return Ok(Some((self.line_no, trim_cr(&self.buf[s..self.end]))));
            }
            self.fill()?;
        }
    }

    /// Makes the line returned last come again from `next_line`.
    pub fn unread(&mut self) {
        if self.last < self.start {
            self.start = self.last;
            self.scanned = 0;
            self.line_no -= 1;
        }
    }

    /// Skips leading blanks (and a UTF-8 byte-order mark) and returns the first other
    /// byte without consuming it; None for an empty input.
    pub fn first_byte(&mut self) -> io::Result<Option<u8>> {
        let mut at_start = true;
        loop {
            if at_start && (self.end - self.start >= 3 || self.eof) {
                if self.buf[self.start..self.end].starts_with(&[0xef, 0xbb, 0xbf]) {
                    self.start += 3;
                }
                at_start = false;
            }
            if !at_start {
                while self.start < self.end {
                    let b = self.buf[self.start];
                    if !b.is_ascii_whitespace() {
                        self.scanned = 0;
                        return Ok(Some(b));
                    }
                    if b == b'\n' {
                        self.line_no += 1;
                    }
                    self.start += 1;
                }
                if self.eof {
                    self.scanned = 0;
                    return Ok(None);
                }
            }
            self.fill()?;
        }
    }

    /// Moves unconsumed data to the front and reads more (growing the buffer when a
    /// single line fills it).
    fn fill(&mut self) -> io::Result<()> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            self.last = 0;
        }
        if self.end == self.buf.len() {
            let grown = self.buf.len() * 2;
            self.buf.resize(grown, 0);
        }
        loop {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// `line` without a trailing `\r`.
#[inline]
fn trim_cr(line: &[u8]) -> &[u8] {
    match line.last() {
        Some(b'\r') => &line[..line.len() - 1],
        _ => line,
    }
}

/// True for a line holding only blanks (not a row).
#[inline]
pub(crate) fn is_blank(line: &[u8]) -> bool {
    match line.first() {
        None => true,
        Some(b) if b.is_ascii_whitespace() => line.iter().all(u8::is_ascii_whitespace),
        Some(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(data: &'static [u8], cap: usize) -> Vec<(u64, String)> {
        let mut src = LineSource::new(Box::new(data), cap);
        let mut out = Vec::new();
        while let Some((n, l)) = src.next_line().expect("in-memory read") {
            out.push((n, String::from_utf8_lossy(l).into_owned()));
        }
        out
    }

    #[test]
    fn decode_text_lines_across_small_buffers() {
        let want = vec![
            (1, "a,b".to_string()),
            (2, String::new()),
            (3, "ccccccccccccccccccccccc".to_string()),
            (4, "d".to_string()),
        ];
        for cap in [16, 17, 64, 1024] {
            assert_eq!(lines(b"a,b\r\n\nccccccccccccccccccccccc\nd", cap), want);
        }
        assert!(lines(b"", 16).is_empty());
    }

    #[test]
    fn decode_text_first_byte_and_unread() {
        let mut src = LineSource::new(Box::new(&b"\xef\xbb\xbf\n  \nx,y\nz\n"[..]), 16);
        assert_eq!(src.first_byte().expect("read"), Some(b'x'));
        let (n, l) = src.next_line().expect("read").expect("line");
        assert_eq!((n, l), (3, &b"x,y"[..]));
        src.unread();
        let (n, l) = src.next_line().expect("read").expect("line");
        assert_eq!((n, l), (3, &b"x,y"[..]));
        assert_eq!(src.next_line().expect("read").map(|(n, _)| n), Some(4));
        assert!(src.next_line().expect("read").is_none());
        let mut empty = LineSource::new(Box::new(&b" \n\t"[..]), 16);
        assert_eq!(empty.first_byte().expect("read"), None);
    }
}
