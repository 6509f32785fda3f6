//! Inputs written to be slow: does a stranger's line cost what its size says? Each case
//! times the same work on hostile text (many secret names in a row, thousands of
//! JWT-like pieces, a client value holding thousands of fake headers, a message holding
//! thousands of loguru headers) at 256 KiB and at 1 MiB, and on ordinary log text of
//! 1 MiB. Linear work grows about 4x from one size to the other; a walk that rereads the
//! rest of the line once per piece grows 16x (and takes minutes at 1 MiB). The growth is
//! gated; the cost against ordinary text of the same size is reported.
//!
//!     cargo bench --bench hostile
//!     LW_HOSTILE_MAX_GROWTH=8 cargo bench --bench hostile   # exit 1 above it (CI)
//!
//! Ratios, never absolute times: the machine may be busy. Each side is the fastest of
//! several turns, taken in alternation so a busy spell hits both.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use logwarden::redact::Redactor;
use logwarden::source::format::LineFormat;
use logwarden::source::loguru::RecordAssembler;
use logwarden::source::zone::Zone;
use logwarden::source::RecordParser;

/// Ordinary log text: what an app's messages look like, about `size` bytes.
fn ordinary(size: usize, sep: &str) -> String {
    let shapes = [
        "GET /api/v1/orders/{n} returned 200 in {n} ms for user {n}",
        "payment provider timeout for order {n} after {n} retries",
        "cache miss for key product:{n}:price, loading from db",
        "worker {n} picked job {n} from queue emails (depth {n})",
        "slow query took {n} ms: SELECT * FROM items WHERE id = {n}",
    ];
    let mut out = String::with_capacity(size + 100);
    let mut n = 7u64;
    let mut i = 0;
    while out.len() < size {
        n = n
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let line = shapes[i % shapes.len()].replace("{n}", &(n >> 44).to_string());
        out.push_str(&line);
        out.push_str(sep);
        i += 1;
    }
    out.truncate(size);
    out
}

/// The fastest of `reps` turns of each, in alternation: (hostile, ordinary).
fn compare(
    reps: usize,
    hostile: &mut dyn FnMut(),
    ordinary: &mut dyn FnMut(),
) -> (Duration, Duration) {
    let time = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        t.elapsed()
    };
    let (mut h, mut o) = (Duration::MAX, Duration::MAX);
    for _ in 0..reps {
        h = h.min(time(hostile));
        o = o.min(time(ordinary));
    }
    (h, o)
}

/// A case: the work timed, and hostile text of about a given size.
struct Case<'a> {
    name: &'a str,
    hostile: Box<dyn Fn(usize) -> String + 'a>,
    /// Ordinary text of about a given size, for the same work.
    ordinary: Box<dyn Fn(usize) -> String + 'a>,
    work: Box<dyn Fn(&str) + 'a>,
}

fn main() {
    let reps: usize = std::env::var("LW_HOSTILE_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let gate: Option<f64> = std::env::var("LW_HOSTILE_MAX_GROWTH")
        .ok()
        .and_then(|v| v.parse().ok());
    let redactor = Redactor::default();
    let repeat = |unit: &'static str| move |size: usize| unit.repeat(size / unit.len());
    let clean = |t: &str| {
        black_box(redactor.clean(black_box(t)));
    };

    // A custom format with a client value before the level: a line that can be read
    // at thousands of places.
    let format = LineFormat::from_loguru(
        "{time:YYYY-MM-DD HH:mm:ss.SSS} | {extra[client]} | {level: <8} | {name}:{function}:{line} - {message}",
    )
    .unwrap();
    let levels = BTreeMap::new();
    let rank = |l: &str| logwarden::source::Level::number_of(l.trim(), &levels);
    let zone = Zone::UTC;
    let head = "2026-11-22 10:00:00.000 | ";
    let fake = " | DEBUG    | x:y:1 - hi";
    let many_fakes = move |size: usize| {
        let n = size / fake.len();
        format!(
            "{head}evil{} | ERROR    | app:f:1 - boom{}",
            fake.repeat(n / 2),
            fake.repeat(n / 2)
        )
    };
    // The default format: an ERROR whose message holds thousands of INFO headers.
    let inner = "2026-11-22 10:00:00.000 | INFO     | x:y:1 - hi ";
    let many_headers = move |size: usize| {
        format!(
            "2026-11-22 10:00:00.000 | ERROR    | app:f:1 - user {}",
            inner.repeat(size / inner.len())
        )
    };
    let read = |line: &str| {
        let mut p = RecordAssembler::new("app", "app.log", &BTreeMap::new(), 30);
        let mut l = line.as_bytes();
        let mut n = 0;
        while let Some(k) = p.embedded_record(l) {
            n += p.push_bytes(1, &l[..k]).is_some() as usize;
            l = &l[k..];
        }
        n += p.push_bytes(1, l).is_some() as usize;
        black_box(n + p.finish().is_some() as usize);
    };
    // The same format over lines: INFO records whose message lines all hold the
    // separator, each line a chance that the header went on over it.
    let arc = std::sync::Arc::new(format.clone());
    let over_lines = |size: usize| {
        let record = format!(
            "{head}10.0.0.1 | INFO     | app:f:1 - start{}",
            "\nx | DEBUG | y:z:1 - more | and more".repeat(8)
        );
        let mut out = String::new();
        while out.len() < size {
            out.push_str(&record);
            out.push('\n');
        }
        out
    };
    let read_lines = |text: &str| {
        let mut p = RecordAssembler::with_header(
            "app",
            "app.log",
            &BTreeMap::new(),
            30,
            logwarden::source::loguru::HeaderParser::Line {
                format: arc.clone(),
                default_level: None,
            },
        );
        let mut n = 0;
        for (i, l) in text.lines().enumerate() {
            n += p.push(i as u64, l).is_some() as usize;
        }
        black_box(n + p.finish().is_some() as usize);
    };
    let cases = [
        Case {
            name: "redact: `authorization:a,` repeated",
            hostile: Box::new(repeat("authorization:a,")),
            ordinary: Box::new(|n| ordinary(n, " ")),
            work: Box::new(clean),
        },
        Case {
            name: "redact: lines of JWT-like pieces",
            hostile: Box::new(repeat("eyJhbGciOi.eyJzdWIiOi\n")),
            ordinary: Box::new(|n| ordinary(n, "\n")),
            work: Box::new(clean),
        },
        Case {
            name: "redact: `password=` with no value, repeated",
            hostile: Box::new(repeat("password=&")),
            ordinary: Box::new(|n| ordinary(n, " ")),
            work: Box::new(clean),
        },
        Case {
            name: "redact: `Bearer ` repeated",
            hostile: Box::new(repeat("Bearer Bearer ")),
            ordinary: Box::new(|n| ordinary(n, " ")),
            work: Box::new(clean),
        },
        Case {
            name: "custom format: a client value holding fake headers",
            hostile: Box::new(many_fakes),
            ordinary: Box::new(move |n| {
                format!(
                    "{head}203.0.113.9 | ERROR    | app:f:1 - {}",
                    ordinary(n, " ")
                )
            }),
            work: Box::new(|t: &str| {
                black_box(format.parse_ranked(black_box(t), &zone, &rank));
            }),
        },
        Case {
            name: "custom format: records whose lines may carry the header on",
            hostile: Box::new(over_lines),
            ordinary: Box::new(move |n| {
                let mut out = String::new();
                while out.len() < n {
                    out.push_str(&format!(
                        "{head}10.0.0.1 | INFO     | app:f:1 - {}\n",
                        ordinary(300, " ")
                    ));
                }
                out
            }),
            work: Box::new(read_lines),
        },
        Case {
            name: "loguru default: an ERROR message holding headers",
            hostile: Box::new(many_headers),
            ordinary: Box::new(|n| {
                format!(
                    "2026-11-22 10:00:00.000 | ERROR    | app:f:1 - user {}",
                    ordinary(n, " ")
                )
            }),
            work: Box::new(read),
        },
    ];

    // Each hostile input at a quarter of the size and at the full size: linear work
    // grows about 4x, a walk that rereads the rest of the line per piece 16x.
    const SMALL: usize = 256 << 10;
    const FULL: usize = 1 << 20;
    println!("| case | hostile, 256 KiB | hostile, 1 MiB | growth (linear: 4x) | ordinary, 1 MiB | hostile / ordinary |");
    println!("|---|---:|---:|---:|---:|---:|");
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut worst = 0f64;
    let mut over = Vec::new();
    for c in &cases {
        let small = (c.hostile)(SMALL);
        let full = (c.hostile)(FULL);
        let plain = (c.ordinary)(full.len());
        let (s, f) = compare(reps, &mut || (c.work)(&small), &mut || (c.work)(&full));
        let (_, o) = compare(reps, &mut || (c.work)(&full), &mut || (c.work)(&plain));
        let growth = f.as_secs_f64() / s.as_secs_f64().max(1e-9);
        worst = worst.max(growth);
        println!(
            "| {} | {:.2} ms | {:.2} ms | {growth:.1}x | {:.2} ms | {:.1}x |",
            c.name,
            ms(s),
            ms(f),
            ms(o),
            f.as_secs_f64() / o.as_secs_f64().max(1e-9)
        );
        if gate.is_some_and(|g| growth > g) {
            over.push(format!("{} ({growth:.1}x)", c.name));
        }
    }
    println!();
    match gate {
        Some(g) => println!("worst growth from 256 KiB to 1 MiB: {worst:.1}x (gate {g}x)"),
        None => println!("worst growth from 256 KiB to 1 MiB: {worst:.1}x (not gated)"),
    }
    if !over.is_empty() {
        eprintln!(
            "hostile input costs more than linear in its size: {}",
            over.join(", ")
        );
        std::process::exit(1);
    }
}
