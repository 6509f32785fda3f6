//! A large backlog read on several cores: helper threads read it in blocks ahead of
//! the parser and find in each block the lines where a skipping parser would stop
//! (a line its [`SkipTest`] refuses, or one over the line cap). The parser's thread
//! takes the blocks in order, as a [`BufRead`], and passes over the lines between
//! two such stops in one step instead of testing each (see `file::Lines`). What the
//! parser sees, and the records and checkpoints it makes, are those of reading the
//! file alone: the helpers only answer, ahead of time, the question the parser would
//! ask of each line.
//!
//! Blocks start and end at line starts (a block ends after a newline), so no line
//! spans two. Only whole lines before the file's length at the start of the run are
//! taken in blocks; the rest (a half-written last line, what is written meanwhile)
//! is read after them as usual.

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::rc::Rc;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use super::SkipTest;

/// Backlogs smaller than this are read on one thread: the helpers are not worth
/// starting.
pub const MIN_BACKLOG: u64 = 16 << 20;
/// Bytes per block.
pub const BLOCK: usize = 512 << 10;
/// Most helper threads: one keeps up with the parser on short lines, a second with a
/// parser that skips long ones.
const MAX_HELPERS: usize = 2;
/// Blocks a helper may have ready before the parser takes them.
const AHEAD: usize = 2;

/// How many helpers a backlog is read with: one per core beside the parser's, at most
/// [`MAX_HELPERS`]; none where the process may use one core only (under the shipped
/// unit's `CPUQuota=50%`, which the standard library reads from the cgroup, helpers
/// would only add their own cost to the same half core). More threads than cores
/// cost CPU for nothing: each takes the others' caches when they trade places.
pub fn helpers() -> usize {
    static HELPERS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *HELPERS.get_or_init(|| {
        std::thread::available_parallelism().map_or(0, |n| (n.get() - 1).min(MAX_HELPERS))
    })
}

/// The block the parser is in, as [`Reader`] shares it with the line sink.
#[derive(Debug, Default)]
pub struct Current {
    /// File offsets of the block: `[start, end)`; empty outside blocks.
    pub start: u64,
    pub end: u64,
    /// The lines where a skip stops: offset in the block, and lines before it in the
    /// block.
    pub stops: Vec<(u32, u32)>,
    /// Lines in the block.
    pub lines: u32,
    /// The line number the block starts at, as the sink counts: noted when the sink
    /// first sees the block (at its start).
    pub first_line_no: Option<u64>,
}

impl Current {
    /// Where a skip from `offset` (a line start in the block, `line_no` lines read
    /// so far) ends: the bytes and lines up to the next stop or the block's end.
    /// `None` outside the block.
    pub fn skip_from(&mut self, offset: u64, line_no: u64) -> Option<(u64, u64)> {
        if offset < self.start || offset >= self.end {
            return None;
        }
        let first = *self.first_line_no.get_or_insert(line_no);
        let at = (offset - self.start) as u32;
        let line = line_no.checked_sub(first)? as u32;
        let i = self.stops.partition_point(|s| s.0 < at);
        let (to, to_line) = match self.stops.get(i) {
            Some(&(to, to_line)) => (to as u64, to_line),
            None => (self.end - self.start, self.lines),
        };
        Some((to - at as u64, to_line.checked_sub(line)? as u64))
    }
}

struct Block {
    start: u64,
    bytes: Vec<u8>,
    stops: Vec<(u32, u32)>,
    lines: u32,
}

/// The line starts that cut `[begin, len)` into blocks of about `block` bytes: the
/// first is `begin`, the last the end of the last whole line found. `None` when the
/// backlog is too small to be worth it.
pub fn plan(
    file: &File,
    begin: u64,
    len: u64,
    block: usize,
    min: u64,
) -> io::Result<Option<Vec<u64>>> {
    if len.saturating_sub(begin) < min.max(1) {
        return Ok(None);
    }
    let mut bounds = vec![begin];
    let mut buf = vec![0u8; 64 * 1024];
    let mut nominal = begin + block as u64;
    'blocks: while nominal < len {
        // The first line start at or after `nominal`: after the first newline at or
        // after `nominal - 1`. Looked for in a small read first (lines are short), then
        // in larger ones.
        let mut at = nominal - 1;
        let mut probe = 512;
        loop {
            let want = probe.min(buf.len()).min((len - at) as usize);
            probe *= 4;
            if want == 0 {
                break 'blocks;
            }
            file.read_exact_at(&mut buf[..want], at)?;
            if let Some(i) = memchr::memchr(b'\n', &buf[..want]) {
                let start = at + i as u64 + 1;
                if start >= len {
                    break 'blocks;
                }
                bounds.push(start);
                nominal = start.max(nominal) + block as u64;
                break;
            }
            at += want as u64;
        }
    }
    // The tail after the last bound is left to the ordinary reader: it may end in a
    // half-written line. A plan of a single bound has no block.
    Ok((bounds.len() > 1).then_some(bounds))
}

/// Blocks of `bounds` read and scanned by helper threads, taken in order as a
/// [`BufRead`]; then the rest of the file from the last bound. Helpers stop when the
/// reader is dropped.
pub struct Reader<'f> {
    blocks: Vec<Receiver<io::Result<Block>>>,
    spare: Vec<SyncSender<Vec<u8>>>,
    next: usize,
    count: usize,
    bytes: Vec<u8>,
    pos: usize,
    current: Rc<RefCell<Current>>,
    rest: BufReader<&'f File>,
}

impl<'f> Reader<'f> {
    /// Starts the helpers in `scope`; `rest` continues at the last bound.
    pub fn start<'scope>(
        scope: &'scope std::thread::Scope<'scope, '_>,
        file: &'f File,
        bounds: Vec<u64>,
        test: SkipTest,
        max_line: usize,
    ) -> io::Result<Reader<'f>>
    where
        'f: 'scope,
    {
        let end = *bounds.last().expect("a plan has bounds");
        let mut rest_file = file;
        rest_file.seek(SeekFrom::Start(end))?;
        let count = bounds.len() - 1;
        let mut blocks = Vec::new();
        let mut spare = Vec::new();
        let bounds = std::sync::Arc::new(bounds);
        let helpers = helpers().clamp(1, count.max(1));
        for h in 0..helpers {
            let (tx, rx) = sync_channel::<io::Result<Block>>(AHEAD);
            let (back, free) = sync_channel::<Vec<u8>>(AHEAD + 1);
            let (bounds, test) = (bounds.clone(), test.clone());
            scope.spawn(move || {
                for k in (h..count).step_by(helpers) {
                    let mut bytes = free.try_recv().unwrap_or_default();
                    let block = read_block(file, bounds[k], bounds[k + 1], &mut bytes)
                        .map(|()| scan(bounds[k], bytes, &test, max_line));
                    let failed = block.is_err();
                    if tx.send(block).is_err() || failed {
                        return;
                    }
                }
            });
            blocks.push(rx);
            spare.push(back);
        }
        Ok(Reader {
            blocks,
            spare,
            next: 0,
            count,
            bytes: Vec::new(),
            pos: 0,
            current: Rc::default(),
            rest: BufReader::with_capacity(256 * 1024, rest_file),
        })
    }

    /// The block the reader is in, for the line sink.
    pub fn current(&self) -> Rc<RefCell<Current>> {
        self.current.clone()
    }
}

fn read_block(file: &File, start: u64, end: u64, bytes: &mut Vec<u8>) -> io::Result<()> {
    // A recycled buffer keeps its bytes: zeroing a megabyte per block costs more
    // than reading into it.
    let n = (end - start) as usize;
    if bytes.len() < n {
        bytes.resize(n, 0);
    }
    bytes.truncate(n);
    file.read_exact_at(bytes, start)
        .map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => io::Error::new(
                e.kind(),
                "the file became shorter while it was read (truncated in place?)",
            ),
            _ => e,
        })
}

fn scan(start: u64, bytes: Vec<u8>, test: &SkipTest, max_line: usize) -> Block {
    let mut stops = Vec::new();
    let lines = test.stops(&bytes, max_line, &mut stops);
    Block {
        start,
        bytes,
        stops,
        lines,
    }
}

impl Read for Reader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = {
            let buf = self.fill_buf()?;
            let n = buf.len().min(out.len());
            out[..n].copy_from_slice(&buf[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Reader<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos == self.bytes.len() && self.next < self.count {
            let h = self.next % self.blocks.len();
            let block = self.blocks[h]
                .recv()
                .map_err(|_| io::Error::other("a reading thread stopped"))??;
            let used = std::mem::replace(&mut self.bytes, block.bytes);
            let _ = self.spare[h].try_send(used);
            self.pos = 0;
            self.next += 1;
            *self.current.borrow_mut() = Current {
                start: block.start,
                end: block.start + self.bytes.len() as u64,
                stops: block.stops,
                lines: block.lines,
                first_line_no: None,
            };
        }
        if self.pos < self.bytes.len() {
            return Ok(&self.bytes[self.pos..]);
        }
        *self.current.borrow_mut() = Current::default();
        self.rest.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        if self.pos < self.bytes.len() {
            self.pos += n;
            debug_assert!(self.pos <= self.bytes.len());
        } else {
            self.rest.consume(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn blocks_are_whole_lines_read_in_order_then_the_rest() {
        let mut f = tempfile::tempfile().unwrap();
        let mut text = Vec::new();
        for i in 0..3000 {
            let n = (i * 7919) % 300;
            text.extend(std::iter::repeat_n(b'a' + (i % 26) as u8, n));
            text.push(b'\n');
        }
        text.extend_from_slice(b"half a line");
        f.write_all(&text).unwrap();
        let len = text.len() as u64;
        assert!(plan(&f, 0, len, 1000, len + 1).unwrap().is_none());
        for (begin, block) in [(0u64, 1000usize), (301, 97), (0, 4096), (0, 1)] {
            let bounds = plan(&f, begin, len, block, 1).unwrap().unwrap();
            assert_eq!(bounds[0], begin);
            for b in &bounds[1..] {
                assert_eq!(text[*b as usize - 1], b'\n');
            }
            assert!(bounds.windows(2).all(|w| w[0] < w[1]));
            let test: SkipTest = std::sync::Arc::new(|l: &[u8]| !l.len().is_multiple_of(5));
            let got = std::thread::scope(|scope| {
                let mut r = Reader::start(scope, &f, bounds.clone(), test, 200).unwrap();
                let cur = r.current();
                let mut out = Vec::new();
                let mut stops = 0;
                loop {
                    let buf = r.fill_buf().unwrap();
                    if buf.is_empty() {
                        break;
                    }
                    let n = buf.len().min(333);
                    out.extend_from_slice(&buf[..n]);
                    let c = cur.borrow();
                    if c.start < c.end && r.pos == 0 {
                        stops += c.stops.len();
                        // Each stop is a line the test refuses or one over the cap.
                        for &(at, _) in &c.stops {
                            let line = &text[c.start as usize + at as usize..];
                            let line = &line[..line.iter().position(|&b| b == b'\n').unwrap()];
                            assert!(line.len().is_multiple_of(5) || line.len() >= 200);
                        }
                    }
                    drop(c);
                    r.consume(n);
                }
                (out, stops)
            });
            assert_eq!(got.0, text[begin as usize..], "begin {begin} block {block}");
            assert!(got.1 > 0);
        }
    }

    /// A file cut short after the plan (copytruncate in the middle of a run) is a read
    /// error, not blocks of zeros: the reader stops there and the rest waits.
    #[test]
    fn a_file_cut_after_the_plan_is_an_error() {
        let mut f = tempfile::tempfile().unwrap();
        let line = [b'x'; 99];
        for _ in 0..2000 {
            f.write_all(&line).unwrap();
            f.write_all(b"\n").unwrap();
        }
        let bounds = plan(&f, 0, 200_000, 4096, 1).unwrap().unwrap();
        f.set_len(50_000).unwrap();
        let test: SkipTest = std::sync::Arc::new(|_: &[u8]| true);
        let (read, err) = std::thread::scope(|scope| {
            let mut r = Reader::start(scope, &f, bounds, test, 1000).unwrap();
            let mut read = 0;
            loop {
                match r.fill_buf() {
                    Ok([]) => return (read, None),
                    Ok(buf) => {
                        let n = buf.len();
                        assert!(buf.iter().all(|&b| b == b'x' || b == b'\n'));
                        read += n;
                        r.consume(n);
                    }
                    Err(e) => return (read, Some(e)),
                }
            }
        });
        let err = err.unwrap_or_else(|| panic!("read {read} bytes without an error"));
        assert!(err.to_string().contains("shorter"), "{err}");
        assert!(read <= 50_000);
    }
}
