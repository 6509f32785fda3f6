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
        let room = MAX_LINE.saturating_sub(line.bytes.len());
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

fn memchr(buf: &[u8]) -> Option<usize> {
    buf.iter().position(|&b| b == b'\n')
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
