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
    /// The physical line goes on after these bytes: a long line was ended early where a
    /// record may start inside it (see [`LineSink::cut_ahead`]), so that the cap applies
    /// to each piece and not to the record after the cut.
    pub more: bool,
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
    /// See [`Line::more`].
    pub more: bool,
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
    /// How many bytes ahead of the reading position a line that is too long for the
    /// buffer may be cut ([`Self::cuts_at`] decides). A record appended to a torn line
    /// past the cap would otherwise be among the dropped bytes.
    fn cut_ahead(&self) -> Option<u64> {
        None
    }
    /// Whether a long line is cut at the point [`Self::cut_ahead`] named, given the
    /// buffered bytes from there (few, when the buffer ends soon after it).
    fn cuts_at(&mut self, _rest: &[u8]) -> bool {
        false
    }
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
                    more: false,
                });
                reader.consume(i + 1);
                if !go_on {
                    return Ok(());
                }
                continue;
            }
        }
        // The line goes past the buffer (or the cap): the copying path.
        if !next_piece(reader, scratch, max, &mut sink)? {
            return Ok(());
        }
        let go_on = sink.line(LineRef {
            bytes: &scratch.bytes,
            dropped: scratch.dropped,
            len: scratch.len,
            complete: scratch.complete,
            more: scratch.more,
        });
        if !go_on {
            return Ok(());
        }
    }
}

/// [`next_line_capped`] for lines past the buffer, which it may end early (`more`) where
/// a record can start after bytes the cap would drop:
/// - after a run of NULs (at least [`HOLE`]) that went past the cap: copytruncate under
///   a writer that keeps its offset leaves a hole of MBs of NULs, then the writer's next
///   record, all on one "line";
/// - at the point [`LineSink::cut_ahead`] names, when the sink takes what follows for
///   the start of a record.
fn next_piece<R: BufRead, S: LineSink>(
    reader: &mut R,
    line: &mut Line,
    max: usize,
    sink: &mut S,
) -> Result<bool> {
    line.bytes.clear();
    line.dropped = 0;
    line.len = 0;
    line.complete = false;
    line.more = false;
    let cut = sink.cut_ahead().filter(|&c| c > 0);
    // The NUL run the bytes end with: its length, and whether part of it was past the cap.
    let (mut nuls, mut nuls_over) = (0u64, false);
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        if cut == Some(line.len) && sink.cuts_at(buf) {
            line.more = true;
            break;
        }
        let limit = match cut {
            Some(c) if c > line.len => buf.len().min((c - line.len) as usize),
            _ => buf.len(),
        };
        let (text, found) = match memchr(&buf[..limit]) {
            Some(i) => (&buf[..i], true),
            None => (&buf[..limit], false),
        };
        let mut i = 0;
        while i < text.len() {
            if text[i] == 0 {
                let z = text[i..].iter().take_while(|&&c| c == 0).count();
                let keep = max.saturating_sub(line.bytes.len()).min(z);
                line.bytes.resize(line.bytes.len() + keep, 0);
                line.dropped += (z - keep) as u64;
                nuls += z as u64;
                nuls_over |= keep < z;
                i += z;
                continue;
            }
            if nuls_over && nuls >= HOLE {
                // The text after a hole past the cap: a piece of its own.
                line.len += i as u64;
                reader.consume(i);
                line.more = true;
                return Ok(true);
            }
            (nuls, nuls_over) = (0, false);
            let j = memchr::memchr(0, &text[i..]).map_or(text.len(), |z| i + z);
            let keep = max.saturating_sub(line.bytes.len()).min(j - i);
            line.bytes.extend_from_slice(&text[i..i + keep]);
            line.dropped += (j - i - keep) as u64;
            i = j;
        }
        let n = text.len() + found as usize;
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
    if line.complete && line.bytes.last() == Some(&b'\r') {
        line.bytes.pop();
    }
    Ok(true)
}

/// The shortest run of NULs past the cap after which a long line is cut: a hole, not a
/// few NULs in a message.
const HOLE: u64 = 1024;

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

/// [`line_ends`], also giving with each newline the end of the last `|` before it in
/// `bytes` (its index plus one; 0: none), found in the same pass over the bytes: the
/// default loguru format's skip test refuses a line with a bar past its header, and a
/// search of its own per line costs a tenth of the reading speed.
pub fn line_ends_and_bars(bytes: &[u8], f: impl FnMut(usize, usize) -> bool) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2.
        return unsafe { line_ends_and_bars_avx2(bytes, f) };
    }
    line_ends_and_bars_sse2(bytes, f)
}

/// [`line_ends_and_bars`] on any CPU.
fn line_ends_and_bars_sse2(bytes: &[u8], f: impl FnMut(usize, usize) -> bool) {
    ends_and_bars!(bytes, f, newlines_and_bars)
}

/// [`line_ends_and_bars`] with 32-byte compares: the bar mask costs no more than the
/// newline mask alone did with 16-byte ones.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn line_ends_and_bars_avx2(bytes: &[u8], f: impl FnMut(usize, usize) -> bool) {
    ends_and_bars!(bytes, f, newlines_and_bars_avx2)
}

/// The loop of [`line_ends_and_bars`] with `$masks` giving a 64-byte chunk's newline
/// and bar masks: a macro, so that the AVX2 version is compiled whole with AVX2.
macro_rules! ends_and_bars {
    ($bytes:expr, $f:expr, $masks:ident) => {{
        let (bytes, mut f) = ($bytes, $f);
        let chunks = bytes.chunks_exact(64);
        let rest = chunks.remainder();
        let mut base = 0;
        let mut bar_end = 0;
        for chunk in chunks {
            #[allow(unused_unsafe)]
            // SAFETY: called only where the masks' instructions are available.
            let (mut mask, bars) = unsafe { $masks(chunk.try_into().expect("64 bytes")) };
            while mask != 0 {
                let i = mask.trailing_zeros();
                let before = bars & ((1u64 << i) - 1);
                let end = if before != 0 {
                    base + 64 - before.leading_zeros() as usize
                } else {
                    bar_end
                };
                if !f(base + i as usize, end) {
                    return;
                }
                mask &= mask - 1;
            }
            if bars != 0 {
                bar_end = base + 64 - bars.leading_zeros() as usize;
            }
            base += 64;
        }
        for i in memchr::memchr2_iter(b'\n', b'|', rest) {
            if rest[i] == b'|' {
                bar_end = base + i + 1;
            } else if !f(base + i, bar_end) {
                return;
            }
        }
    }};
}
use ends_and_bars;

/// Bits set where `chunk`'s bytes are newlines, and where they are `|`, with AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn newlines_and_bars_avx2(chunk: &[u8; 64]) -> (u64, u64) {
    use std::arch::x86_64::{
        __m256i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_movemask_epi8, _mm256_set1_epi8,
    };
    let p = chunk.as_ptr().cast::<__m256i>();
    // SAFETY: the two unaligned 32-byte loads stay inside the 64-byte array.
    let (a, b) = unsafe { (_mm256_loadu_si256(p), _mm256_loadu_si256(p.add(1))) };
    let (nl, bar) = (_mm256_set1_epi8(b'\n' as i8), _mm256_set1_epi8(b'|' as i8));
    let lines = _mm256_movemask_epi8(_mm256_cmpeq_epi8(a, nl)) as u32 as u64
        | (_mm256_movemask_epi8(_mm256_cmpeq_epi8(b, nl)) as u32 as u64) << 32;
    let bars = _mm256_movemask_epi8(_mm256_cmpeq_epi8(a, bar)) as u32 as u64
        | (_mm256_movemask_epi8(_mm256_cmpeq_epi8(b, bar)) as u32 as u64) << 32;
    (lines, bars)
}

/// Bits set where `chunk`'s bytes are newlines, and where they are `|`.
#[cfg(target_arch = "x86_64")]
fn newlines_and_bars(chunk: &[u8; 64]) -> (u64, u64) {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
    };
    // SAFETY: SSE2 is part of x86_64; the four unaligned 16-byte loads stay inside
    // the 64-byte array.
    unsafe {
        let (nl, bar) = (_mm_set1_epi8(b'\n' as i8), _mm_set1_epi8(b'|' as i8));
        let p = chunk.as_ptr().cast::<__m128i>();
        let (mut lines, mut bars) = (0u64, 0u64);
        for k in 0..4 {
            let v = _mm_loadu_si128(p.add(k));
            lines |= (_mm_movemask_epi8(_mm_cmpeq_epi8(v, nl)) as u16 as u64) << (16 * k);
            bars |= (_mm_movemask_epi8(_mm_cmpeq_epi8(v, bar)) as u16 as u64) << (16 * k);
        }
        (lines, bars)
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn newlines_and_bars(chunk: &[u8; 64]) -> (u64, u64) {
    (
        newlines(chunk),
        memchr::memchr_iter(b'|', chunk).fold(0, |m, i| m | 1 << i),
    )
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

    /// The newlines (and bars) found by masks are those a byte-by-byte search finds, at
    /// every alignment and length, and an early stop stops.
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
                } else if rng.is_multiple_of(11) {
                    b'|'
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
                // With the last bar before each newline.
                let want: Vec<(usize, usize)> = want
                    .iter()
                    .map(|&i| {
                        let bar = slice[..i].iter().rposition(|&c| c == b'|');
                        (i, bar.map_or(0, |b| b + 1))
                    })
                    .collect();
                type Ends = fn(&[u8], &mut dyn FnMut(usize, usize) -> bool);
                let both: [Ends; 2] = [
                    |b, f| line_ends_and_bars_sse2(b, f),
                    |b, f| line_ends_and_bars(b, f),
                ];
                for ends in both {
                    let mut got = Vec::new();
                    ends(slice, &mut |i, bar| {
                        got.push((i, bar));
                        true
                    });
                    assert_eq!(got, want, "{from}..{to}");
                }
                let mut first = Vec::new();
                line_ends_and_bars(slice, |i, bar| {
                    first.push((i, bar));
                    false
                });
                assert_eq!(first, want.iter().copied().take(1).collect::<Vec<_>>());
            }
        }
    }

    /// A sink that records the pieces it gets and cuts where told.
    struct Pieces {
        got: Vec<(Vec<u8>, u64, u64, bool, bool)>,
        at: u64,
        cuts: Vec<u64>,
    }

    impl LineSink for &mut Pieces {
        fn line(&mut self, l: LineRef<'_>) -> bool {
            self.got
                .push((l.bytes.to_vec(), l.dropped, l.len, l.complete, l.more));
            self.at += l.len;
            true
        }
        fn cut_ahead(&self) -> Option<u64> {
            self.cuts
                .iter()
                .filter(|&&c| c > self.at)
                .map(|&c| c - self.at)
                .min()
        }
        fn cuts_at(&mut self, rest: &[u8]) -> bool {
            rest.starts_with(b"REC")
        }
    }

    fn pieces(input: &[u8], cuts: Vec<u64>) -> Vec<(Vec<u8>, u64, u64, bool, bool)> {
        let mut r = std::io::BufReader::with_capacity(4096, Cursor::new(input.to_vec()));
        let mut sink = Pieces {
            got: vec![],
            at: 0,
            cuts,
        };
        for_each_line_capped(&mut r, &mut Line::default(), MAX_LINE, &mut sink).unwrap();
        sink.got
    }

    /// A hole of NULs past the cap ends a piece where it ends: what follows is read,
    /// not dropped with the hole; a short run of NULs in a long line does not.
    #[test]
    fn a_hole_past_the_cap_ends_a_piece() {
        let mut input = vec![0u8; MAX_LINE * 2 + 5];
        input.extend_from_slice(b"REC one\nREC two\n");
        let got = pieces(&input, vec![]);
        let hole = (MAX_LINE * 2 + 5) as u64;
        assert_eq!(
            got.len(),
            3,
            "{:?}",
            got.iter().map(|g| g.1).collect::<Vec<_>>()
        );
        assert_eq!(got[0].0.len(), MAX_LINE);
        assert_eq!(
            (got[0].1, got[0].2, got[0].4),
            (hole - MAX_LINE as u64, hole, true)
        );
        assert_eq!(got[1], (b"REC one".to_vec(), 0, 8, true, false));
        let mut input = vec![b'x'; MAX_LINE];
        input.extend_from_slice(&[0; 10]);
        input.extend_from_slice(b"REC\n");
        let got = pieces(&input, vec![]);
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].1, got[0].3, got[0].4), (13, true, false));
    }

    /// A long line is cut at a point the sink names when it takes what follows for a
    /// record, before the cap applies; not when it does not.
    #[test]
    fn a_long_line_is_cut_where_the_sink_says() {
        let mut input = vec![b'x'; MAX_LINE + 100];
        let at = input.len() as u64;
        input.extend_from_slice(b"REC after\n");
        let got = pieces(&input, vec![at]);
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].0.len() as u64, got[0].1, got[0].2),
            (MAX_LINE as u64, 100, at)
        );
        assert!(!got[0].3 && got[0].4);
        assert_eq!(got[1], (b"REC after".to_vec(), 0, 10, true, false));
        let got = pieces(&input, vec![at - 1]);
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].1, got[0].3), (109, true));
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
