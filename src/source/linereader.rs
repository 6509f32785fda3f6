//! Reading whole lines from a byte stream with a cap on what is kept of each line, so
//! a 10 MB line costs a capped buffer, and a half-written last line is left for later.

use std::io::{BufRead, Result};

/// At most this many bytes of one line are kept; the rest is counted and dropped.
pub const MAX_LINE: usize = 64 * 1024;

/// One physical line.
#[derive(Debug, Default)]
pub struct Line {
    /// The kept bytes, without the line ending (`\n` or `\r\n`).
    pub bytes: Vec<u8>,
    /// Bytes of the line dropped because of the cap.
    pub dropped: u64,
    /// Total bytes the line took in the file, ending included.
    pub len: u64,
    /// Whether the line ended with `\n` (false only for a last, unfinished line).
    pub complete: bool,
}

/// Reads the next line into `line`; returns false at end of input.
pub fn next_line<R: BufRead>(reader: &mut R, line: &mut Line) -> Result<bool> {
    next_line_capped(reader, line, MAX_LINE)
}

/// [`next_line`] keeping at most `max` bytes of the line.
pub fn next_line_capped<R: BufRead>(reader: &mut R, line: &mut Line, max: usize) -> Result<bool> {
    line.bytes.clear();
    line.dropped = 0;
    line.len = 0;
    line.complete = false;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        let (chunk, found) = match memchr(buf) {
            Some(i) => (&buf[..=i], true),
            None => (buf, false),
        };
        let n = chunk.len();
        let room = max.saturating_sub(line.bytes.len());
        let keep = room.min(n);
        line.bytes.extend_from_slice(&chunk[..keep]);
        line.dropped += (n - keep) as u64;
        line.len += n as u64;
        reader.consume(n);
        if found {
            line.complete = true;
            break;
        }
    }
    if line.len == 0 {
        return Ok(false);
    }
    if line.complete {
        if line.dropped > 0 {
            line.dropped -= 1; // the newline itself was among the dropped bytes
        } else {
            line.bytes.pop();
        }
        if line.bytes.last() == Some(&b'\r') {
            line.bytes.pop();
        }
    }
    Ok(true)
}

/// A line seen in place: `bytes` borrows the reader's buffer when the whole line is in
/// it (no copy), else the caller's scratch line.
pub struct LineRef<'a> {
    pub bytes: &'a [u8],
    pub dropped: u64,
    pub len: u64,
    pub complete: bool,
}

/// Where [`for_each_line`] hands its lines.
pub trait LineSink {
    /// Whole lines at the start of `ahead` (buffered bytes, at least one line long when
    /// they hold a newline) that the sink takes without seeing them one by one: the bytes
    /// they span, ending included (0: none). A parser skipping a run of records below its
    /// threshold passes over them in a tight loop instead of a call per line.
    fn skip(&mut self, _ahead: &[u8]) -> usize {
        0
    }
    /// One line; false stops the reading.
    fn line(&mut self, line: LineRef<'_>) -> bool;
}

impl<F: FnMut(LineRef<'_>) -> bool> LineSink for F {
    fn line(&mut self, line: LineRef<'_>) -> bool {
        self(line)
    }
}

/// Calls `f` for each line; `f` returns false to stop. Lines that fit in the buffer are not
/// copied (the hot path); longer ones go through `scratch` with the cap.
pub fn for_each_line<R: BufRead>(
    reader: &mut R,
    scratch: &mut Line,
    f: impl FnMut(LineRef<'_>) -> bool,
) -> Result<()> {
    for_each_line_capped(reader, scratch, MAX_LINE, f)
}

/// [`for_each_line`] keeping at most `max` bytes of each line, into any [`LineSink`].
pub fn for_each_line_capped<R: BufRead>(
    reader: &mut R,
    scratch: &mut Line,
    max: usize,
    mut sink: impl LineSink,
) -> Result<()> {
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        let skipped = sink.skip(buf);
        if skipped > 0 {
            debug_assert!(skipped <= buf.len() && buf[skipped - 1] == b'\n');
            reader.consume(skipped);
            continue;
        }
        if let Some(i) = memchr(buf) {
            if i < max {
                let mut bytes = &buf[..i];
                if bytes.last() == Some(&b'\r') {
                    bytes = &bytes[..bytes.len() - 1];
                }
                let go_on = sink.line(LineRef {
                    bytes,
                    dropped: 0,
                    len: i as u64 + 1,
                    complete: true,
                });
                reader.consume(i + 1);
                if !go_on {
                    return Ok(());
                }
                continue;
            }
        }
        // The line goes past the buffer (or the cap): the copying path.
        if !next_line_capped(reader, scratch, max)? {
            return Ok(());
        }
        let go_on = sink.line(LineRef {
            bytes: &scratch.bytes,
            dropped: scratch.dropped,
            len: scratch.len,
            complete: scratch.complete,
        });
        if !go_on {
            return Ok(());
        }
    }
}

fn memchr(buf: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', buf)
}

/// Calls `f` with the index of each `\n` in `bytes`, in order, until `f` returns false.
/// For many short lines: a search per line (memchr) pays its setup on every line, so
/// the newlines of each 64 bytes are found at once, as a bit mask.
pub fn line_ends(bytes: &[u8], mut f: impl FnMut(usize) -> bool) {
    let chunks = bytes.chunks_exact(64);
    let rest = chunks.remainder();
    let mut base = 0;
    for chunk in chunks {
        let mut mask = newlines(chunk.try_into().expect("64 bytes"));
        while mask != 0 {
            if !f(base + mask.trailing_zeros() as usize) {
                return;
            }
            mask &= mask - 1;
        }
        base += 64;
    }
    for i in memchr::memchr_iter(b'\n', rest) {
        if !f(base + i) {
            return;
        }
    }
}

/// Bit `i` set where `chunk[i]` is a newline.
#[cfg(target_arch = "x86_64")]
fn newlines(chunk: &[u8; 64]) -> u64 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
    };
    // SAFETY: SSE2 is part of x86_64; the four unaligned 16-byte loads stay inside
    // the 64-byte array.
    unsafe {
        let nl = _mm_set1_epi8(b'\n' as i8);
        let p = chunk.as_ptr().cast::<__m128i>();
        let part = |k: usize| {
            _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128(p.add(k)), nl)) as u16 as u64
        };
        part(0) | part(1) << 16 | part(2) << 32 | part(3) << 48
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn newlines(chunk: &[u8; 64]) -> u64 {
    memchr::memchr_iter(b'\n', chunk).fold(0, |m, i| m | 1 << i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn lines(input: &[u8]) -> Vec<(String, u64, bool)> {
        let mut r = Cursor::new(input.to_vec());
        let mut l = Line::default();
        let mut out = vec![];
        while next_line(&mut r, &mut l).unwrap() {
            out.push((
                String::from_utf8_lossy(&l.bytes).into_owned(),
                l.len,
                l.complete,
            ));
        }
        out
    }

    #[test]
    fn splits_lines_and_keeps_partial_last() {
        let got = lines(b"a\r\nbb\nccc");
        assert_eq!(
            got,
            vec![
                ("a".into(), 3, true),
                ("bb".into(), 3, true),
                ("ccc".into(), 3, false)
            ]
        );
    }

    #[test]
    fn in_place_lines_match_copied_lines() {
        let mut input = b"a\r\nbb\n".to_vec();
        input.extend(vec![b'x'; MAX_LINE + 10]);
        input.extend_from_slice(b"\nlast");
        let mut r = std::io::BufReader::with_capacity(16, Cursor::new(input));
        let mut scratch = Line::default();
        let mut got = vec![];
        for_each_line(&mut r, &mut scratch, |l| {
            got.push((l.bytes.len(), l.dropped, l.len, l.complete));
            true
        })
        .unwrap();
        assert_eq!(
            got,
            vec![
                (1, 0, 3, true),
                (2, 0, 3, true),
                (MAX_LINE, 10, (MAX_LINE + 11) as u64, true),
                (4, 0, 4, false)
            ]
        );
    }

    /// The newlines found by masks are those a byte-by-byte search finds, at every
    /// alignment and length, and an early stop stops.
    #[test]
    fn line_ends_are_every_newline() {
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        let bytes: Vec<u8> = (0..1000)
            .map(|_| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                if rng.is_multiple_of(7) {
                    b'\n'
                } else {
                    (rng >> 8) as u8 | 0x80
                }
            })
            .collect();
        for from in [0, 1, 13, 63, 64, 65, 500] {
            for to in [from, from + 1, from + 64, from + 130, 1000] {
                let slice = &bytes[from..to.min(1000)];
                let want: Vec<usize> = (0..slice.len()).filter(|&i| slice[i] == b'\n').collect();
                let mut got = Vec::new();
                line_ends(slice, |i| {
                    got.push(i);
                    true
                });
                assert_eq!(got, want, "{from}..{to}");
                let mut first = Vec::new();
                line_ends(slice, |i| {
                    first.push(i);
                    false
                });
                assert_eq!(first, want.iter().copied().take(1).collect::<Vec<_>>());
            }
        }
    }

    #[test]
    fn caps_huge_lines() {
        let mut input = vec![b'x'; MAX_LINE * 3];
        input.push(b'\n');
        input.extend_from_slice(b"next\n");
        let mut r = Cursor::new(input);
        let mut l = Line::default();
        assert!(next_line(&mut r, &mut l).unwrap());
        assert_eq!(l.bytes.len(), MAX_LINE);
        assert_eq!(l.dropped, (MAX_LINE * 2) as u64);
        assert_eq!(l.len, (MAX_LINE * 3 + 1) as u64);
        assert!(next_line(&mut r, &mut l).unwrap());
        assert_eq!(l.bytes, b"next");
    }
}
