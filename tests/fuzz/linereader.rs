//! The line reader: any bytes, any buffer size; the in-place and the copying paths agree,
//! every byte is accounted for, and no line keeps more than the cap.

use std::io::{BufReader, Cursor};

use logwarden::source::linereader::{for_each_line, next_line, Line, MAX_LINE};
use proptest::prelude::*;

use crate::{config, CASES};

/// Runs of bytes; now and then a run of about the cap's length.
fn input() -> impl Strategy<Value = Vec<u8>> {
    let run = prop_oneof![
        100 => (prop::sample::select(&b"a\n\r\xff "[..]), 1usize..4),
        50 => (any::<u8>(), 1usize..24),
        1 => (prop::sample::select(&b"x\r\n"[..]), (MAX_LINE - 3)..(MAX_LINE + 3)),
    ];
    prop::collection::vec(run, 0..12).prop_map(|runs| {
        runs.into_iter()
            .flat_map(|(b, n)| std::iter::repeat_n(b, n))
            .collect()
    })
}

type Seen = (Vec<u8>, u64, u64, bool);

fn copied(input: &[u8], cap: usize) -> Vec<Seen> {
    let mut r = BufReader::with_capacity(cap, Cursor::new(input));
    let mut l = Line::default();
    let mut out = Vec::new();
    while next_line(&mut r, &mut l).unwrap() {
        out.push((l.bytes.clone(), l.dropped, l.len, l.complete));
    }
    out
}

fn in_place(input: &[u8], cap: usize) -> Vec<Seen> {
    let mut r = BufReader::with_capacity(cap, Cursor::new(input));
    let mut scratch = Line::default();
    let mut out = Vec::new();
    for_each_line(&mut r, &mut scratch, |l| {
        out.push((l.bytes.to_vec(), l.dropped, l.len, l.complete));
        true
    })
    .unwrap();
    out
}

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn both_paths_agree_and_account_for_every_byte(
        input in input(),
        cap1 in prop_oneof![1usize..64, Just(4096), Just(8192)],
        cap2 in prop_oneof![1usize..64, Just(MAX_LINE), Just(MAX_LINE + 1)],
    ) {
        let a = copied(&input, cap1);
        let b = in_place(&input, cap2);
        prop_assert_eq!(&a, &b);
        let mut at = 0usize;
        for (i, (bytes, dropped, len, complete)) in a.iter().enumerate() {
            let (len, dropped) = (*len as usize, *dropped as usize);
            prop_assert!(bytes.len() <= MAX_LINE);
            let line = &input[at..at + len];
            if *complete {
                prop_assert_eq!(line.last(), Some(&b'\n'));
                let ending = len - bytes.len() - dropped;
                prop_assert!(ending == 1 || ending == 2, "ending of {} bytes", ending);
            } else {
                prop_assert_eq!(i, a.len() - 1, "only the last line may be unfinished");
                prop_assert_eq!(len, bytes.len() + dropped);
            }
            prop_assert_eq!(&line[..bytes.len()], &bytes[..]);
            at += len;
        }
        prop_assert_eq!(at, input.len());
    }
}
