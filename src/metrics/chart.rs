//! Pictures of a series, written by hand: a text sparkline for the markdown, and a small
//! SVG plot (axes with labels, the normal band, the threshold line, the series and its
//! last point) sized by its viewBox, so it scales to a phone and an editor's preview.

use chrono::{DateTime, Utc};

use super::checks::num;
use crate::redact::Redactor;

/// What to draw.
pub struct Plot<'a> {
    /// Often made of metric labels, which scripts read on the host: it may hold a
    /// secret or control characters (see [`Plot::text`]).
    pub title: &'a str,
    pub points: &'a [(i64, f64)],
    /// Time span shown, unix seconds.
    pub from: i64,
    pub to: i64,
    pub band: Option<(f64, f64)>,
    pub threshold: Option<f64>,
    /// The redactor of the page the chart sits beside; `None` where that page is not
    /// redacted either.
    pub redactor: Option<&'a Redactor>,
}

impl Plot<'_> {
    /// Any text drawn: redacted as the page is, made one safe line by the sanitiser
    /// shared with the terminal and the pages (a chart is opened in a browser, an
    /// editor, or `cat` to a terminal), then escaped for XML.
    fn text(&self, s: &str) -> String {
        let s = match self.redactor {
            Some(r) => r.redact(s),
            None => s.into(),
        };
        xml(&crate::sanitize::line(&s))
    }
}

const W: f64 = 640.0;
const H: f64 = 280.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 34.0;
const BOTTOM: f64 = 36.0;
/// The shortest time axis (seconds): a single sample still gets some room.
const MIN_SPAN: i64 = 15 * 60;
/// Round steps of the time axis, seconds.
const TIME_STEPS: [i64; 14] = [
    60, 300, 600, 900, 1800, 3600, 7200, 10_800, 14_400, 21_600, 43_200, 86_400, 172_800, 604_800,
];

/// Sanitised text escaped for XML 1.0 text and quoted attributes. The sanitiser left
/// no control characters (XML 1.0 forbids most of them even as `&#x1b;`); the two
/// noncharacters XML also forbids, harmless on a terminal, get a `⟨U+XXXX⟩` stand-in
/// like the sanitiser's.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\u{fffe}' | '\u{ffff}' => out.push_str(&format!("⟨U+{:04X}⟩", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// "Nice" tick values covering `lo..hi`, about `n` of them.
fn ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    let span = (hi - lo).max(f64::EPSILON);
    let raw = span / n as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| span / s <= n as f64)
        .unwrap_or(10.0 * mag);
    let mut t = (lo / step).ceil() * step;
    let mut out = Vec::new();
    while t <= hi + step * 1e-9 {
        out.push(t);
        t += step;
    }
    out
}

/// The SVG document.
pub fn svg(p: &Plot) -> String {
    let pts: Vec<(i64, f64)> = p
        .points
        .iter()
        .copied()
        .filter(|(t, v)| v.is_finite() && *t >= p.from && *t <= p.to)
        .collect();
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for v in pts
        .iter()
        .map(|x| x.1)
        .chain(p.threshold)
        .chain(p.band.map(|b| b.0))
        .chain(p.band.map(|b| b.1))
    {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        lo = 0.0;
        hi = 1.0;
    }
    if hi - lo < 1e-9 {
        lo -= 1.0;
        hi += 1.0;
    }
    let pad = (hi - lo) * 0.06;
    let (lo, hi) = (lo - pad, hi + pad);
    // The time axis starts at the first sample, not at the start of the period: two
    // hours of data fill the chart instead of its last twelfth.
    let from = match pts.first() {
        Some(&(t0, _)) => t0.max(p.from).min(p.to - MIN_SPAN).max(p.from),
        None => p.from,
    };
    let span_t = (p.to - from).max(1) as f64;
    let x = |t: i64| LEFT + (t - from) as f64 / span_t * (W - LEFT - RIGHT);
    let y = |v: f64| TOP + (hi - v) / (hi - lo) * (H - TOP - BOTTOM);
    let mut s = String::new();
    s.push_str(&format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {H}\" width=\"100%\" style=\"max-width:{W}px\" font-family=\"sans-serif\" font-size=\"12\">\n"
    ));
    s.push_str(&format!("<title>{}</title>\n", p.text(p.title)));
    s.push_str(&format!(
        "<rect x=\"0\" y=\"0\" width=\"{W}\" height=\"{H}\" fill=\"#ffffff\"/>\n<text x=\"{LEFT}\" y=\"20\" font-size=\"14\" font-weight=\"bold\" fill=\"#222\">{}</text>\n",
        p.text(p.title)
    ));
    // The band of normal values.
    if let Some((b0, b1)) = p.band {
        let (y0, y1) = (y(b1.min(hi)), y(b0.max(lo)));
        if y1 > y0 {
            s.push_str(&format!(
                "<rect x=\"{LEFT}\" y=\"{y0:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#4caf50\" fill-opacity=\"0.15\"><title>{}</title></rect>\n",
                W - LEFT - RIGHT,
                y1 - y0,
                p.text(&format!("normal band {}–{}", num(b0), num(b1)))
            ));
        }
    }
    // Y axis with ticks and grid.
    for t in ticks(lo, hi, 5) {
        let yy = y(t);
        s.push_str(&format!(
            "<line x1=\"{LEFT}\" y1=\"{yy:.1}\" x2=\"{:.1}\" y2=\"{yy:.1}\" stroke=\"#ddd\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#444\">{}</text>\n",
            W - RIGHT,
            LEFT - 6.0,
            yy + 4.0,
            p.text(&num(t))
        ));
    }
    // X axis: a round step giving at most 6 ticks; times of day, with the date once
    // ticks are a day or more apart or the span crosses days.
    let span = p.to - from;
    let step = TIME_STEPS
        .iter()
        .copied()
        .find(|st| span / st <= 6)
        .unwrap_or(7 * 86_400);
    let fmt = if step >= 86_400 {
        "%m-%d"
    } else if span > 86_400 {
        "%m-%d %H:%M"
    } else {
        "%H:%M"
    };
    let mut t = (from.div_euclid(step) + 1) * step;
    while t < p.to {
        let xx = x(t);
        let label = DateTime::<Utc>::from_timestamp(t, 0)
            .map(|d| d.format(fmt).to_string())
            .unwrap_or_default();
        s.push_str(&format!(
            "<line x1=\"{xx:.1}\" y1=\"{TOP}\" x2=\"{xx:.1}\" y2=\"{:.1}\" stroke=\"#eee\"/><text x=\"{xx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#444\">{}</text>\n",
            H - BOTTOM,
            H - BOTTOM + 16.0,
            p.text(&label)
        ));
        t += step;
    }
    s.push_str(&format!(
        "<line x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{b:.1}\" stroke=\"#888\"/><line x1=\"{LEFT}\" y1=\"{b:.1}\" x2=\"{:.1}\" y2=\"{b:.1}\" stroke=\"#888\"/>\n",
        W - RIGHT,
        b = H - BOTTOM
    ));
    s.push_str(&format!(
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#666\" font-size=\"10\">UTC</text>\n",
        W - RIGHT,
        H - 4.0
    ));
    // The threshold.
    if let Some(th) = p.threshold {
        let yy = y(th);
        s.push_str(&format!(
            "<line x1=\"{LEFT}\" y1=\"{yy:.1}\" x2=\"{:.1}\" y2=\"{yy:.1}\" stroke=\"#d32f2f\" stroke-width=\"1.5\" stroke-dasharray=\"6 4\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#d32f2f\">limit {}</text>\n",
            W - RIGHT,
            W - RIGHT - 4.0,
            yy - 4.0,
            p.text(&num(th))
        ));
    }
    // The series.
    if !pts.is_empty() {
        let line: Vec<String> = thin(&pts, |t| x(t) as i64)
            .iter()
            .map(|&(t, v)| format!("{:.1},{:.1}", x(t), y(v)))
            .collect();
        s.push_str(&format!(
            "<polyline fill=\"none\" stroke=\"#1565c0\" stroke-width=\"1.8\" points=\"{}\"/>\n",
            line.join(" ")
        ));
        let (lt, lv) = *pts.last().expect("not empty");
        s.push_str(&format!(
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"#1565c0\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#1565c0\" font-weight=\"bold\">{}</text>\n",
            x(lt),
            y(lv),
            x(lt) - 6.0,
            y(lv) - 8.0,
            p.text(&num(lv))
        ));
    } else {
        s.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#888\">no samples in this period</text>\n",
            W / 2.0,
            H / 2.0
        ));
    }
    s.push_str("</svg>\n");
    s
}

/// The points of a line worth drawing: where several fall in one pixel column, only
/// the lowest and the highest of them (in their order), so a week of minutes draws
/// the same shape (every spike and dip) from at most two points a column, and a
/// chart's size and cost stay bounded by its width. `pts` are in time order.
fn thin(pts: &[(i64, f64)], column: impl Fn(i64) -> i64) -> Vec<(i64, f64)> {
    if pts.len() <= 2 * (W - LEFT - RIGHT) as usize {
        return pts.to_vec();
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < pts.len() {
        let c = column(pts[i].0);
        let mut j = i;
        let (mut lo, mut hi) = (i, i);
        while j < pts.len() && column(pts[j].0) == c {
            if pts[j].1 < pts[lo].1 {
                lo = j;
            }
            if pts[j].1 > pts[hi].1 {
                hi = j;
            }
            j += 1;
        }
        out.push(pts[lo.min(hi)]);
        if lo != hi {
            out.push(pts[lo.max(hi)]);
        }
        i = j;
    }
    // The line ends where the last sample's dot is drawn.
    let last = pts[pts.len() - 1];
    if out.last() != Some(&last) {
        out.push(last);
    }
    out
}

/// A sparkline of at most `width` characters (`▁▂▃▅▇`): the values averaged into
/// buckets when there are more; a value that is not finite is a blank.
pub fn sparkline(values: &[f64], width: usize) -> String {
    if values.len() <= width {
        return bars(values);
    }
    let per = values.len() as f64 / width as f64;
    let buckets: Vec<f64> = (0..width)
        .map(|i| {
            let a = (i as f64 * per) as usize;
            let b = (((i + 1) as f64 * per) as usize)
                .max(a + 1)
                .min(values.len());
            let chunk = &values[a..b];
            chunk.iter().sum::<f64>() / chunk.len() as f64
        })
        .collect();
    bars(&buckets)
}

fn bars(values: &[f64]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let finite = || values.iter().copied().filter(|v| v.is_finite());
    let (Some(min), Some(max)) = (finite().reduce(f64::min), finite().reduce(f64::max)) else {
        return String::new();
    };
    values
        .iter()
        .map(|v| {
            if !v.is_finite() {
                ' '
            } else if max == min {
                BARS[3]
            } else {
                BARS[(((v - min) / (max - min)) * 7.0).round() as usize]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svg_has_axes_band_threshold_and_series() {
        let pts: Vec<(i64, f64)> = (0..48).map(|i| (i * 1800, 50.0 + i as f64)).collect();
        let doc = svg(&Plot {
            title: "disk <root> used %",
            points: &pts,
            from: 0,
            to: 86_400,
            band: Some((40.0, 60.0)),
            threshold: Some(90.0),
            redactor: None,
        });
        assert!(doc.starts_with("<svg") && doc.trim_end().ends_with("</svg>"));
        assert!(doc.contains("disk &lt;root&gt; used %"));
        assert!(doc.contains("limit 90"));
        assert!(doc.contains("normal band 40–60"));
        assert!(doc.contains("<polyline"));
        assert!(doc.contains(">04:00<"));
    }

    #[test]
    fn a_week_of_minutes_draws_at_most_two_points_a_column_with_every_extreme() {
        let t0 = 1_795_305_600;
        let n = 7 * 1440;
        let mut pts: Vec<(i64, f64)> = (0..n)
            .map(|i| (t0 + i * 60, 50.0 + (i % 97) as f64 / 10.0))
            .collect();
        pts[4321].1 = 400.0; // a spike of one minute
        pts[777].1 = -30.0; // and a dip
        let last = pts[pts.len() - 1];
        let doc = svg(&Plot {
            title: "q",
            points: &pts,
            from: t0,
            to: last.0,
            band: None,
            threshold: None,
            redactor: None,
        });
        let line = doc
            .split("points=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap();
        let drawn: Vec<(f64, f64)> = line
            .split(' ')
            .map(|p| {
                let (a, b) = p.split_once(',').unwrap();
                (a.parse().unwrap(), b.parse().unwrap())
            })
            .collect();
        let columns = (W - LEFT - RIGHT) as usize;
        assert!(drawn.len() <= 2 * columns + 2, "{}", drawn.len());
        assert!(drawn.len() > columns, "{}", drawn.len());
        // In time order, the spike's and the dip's pixels drawn, ending at the last sample.
        assert!(drawn.windows(2).all(|w| w[0].0 <= w[1].0));
        let ys: Vec<f64> = drawn.iter().map(|p| p.1).collect();
        let top = ys.iter().copied().fold(f64::INFINITY, f64::min);
        let bottom = ys.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        assert!(
            (top - TOP).abs() < 30.0 && (H - BOTTOM - bottom).abs() < 30.0,
            "{top} {bottom}"
        );
        let dot = doc.split("<circle cx=\"").nth(1).unwrap();
        let (cx, rest) = dot.split_once("\" cy=\"").unwrap();
        let cy = rest.split('"').next().unwrap();
        assert_eq!(line.rsplit(' ').next().unwrap(), format!("{cx},{cy}"));
        // Few points are drawn as they are.
        let few = svg(&Plot {
            title: "q",
            points: &pts[..500],
            from: t0,
            to: last.0,
            band: None,
            threshold: None,
            redactor: None,
        });
        let drawn = few.split("points=\"").nth(1).unwrap().split('"').next();
        assert_eq!(drawn.unwrap().split(' ').count(), 500);
    }

    #[test]
    fn text_is_redacted_one_line_and_valid_xml_1_0() {
        let red = Redactor::default();
        let title =
            "up{url=\"http://admin:Hunter2pw@h/x\"} \u{1b}]52;c;SGk=\u{7}\nnext \u{0}\u{fffe}<&>";
        let plot = |redactor| Plot {
            title,
            points: &[(60, 1.0)],
            from: 0,
            to: 3600,
            band: Some((0.0, 2.0)),
            threshold: Some(5.0),
            redactor,
        };
        let doc = svg(&plot(Some(&red)));
        assert!(!doc.contains("Hunter2pw"), "{doc}");
        assert!(doc.contains("[REDACTED:url-password]"), "{doc}");
        assert!(
            doc.contains("␛]52;c;SGk=␇ next ␀⟨U+FFFE⟩&lt;&amp;&gt;"),
            "{doc}"
        );
        // Only the characters XML 1.0 allows, and no line break inside a text.
        let allowed = |c: char| matches!(c, '\n' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..);
        assert!(doc.chars().all(allowed), "{doc:?}");
        assert!(doc.lines().all(|l| l.starts_with('<')), "{doc}");
        // Unredacted where the page is not, still safe.
        let doc = svg(&plot(None));
        assert!(
            doc.contains("Hunter2pw") && doc.chars().all(allowed),
            "{doc:?}"
        );
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(
            ticks(0.0, 100.0, 5),
            vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]
        );
    }

    #[test]
    fn sparklines() {
        assert_eq!(sparkline(&[0.0, 1.0, 2.0, 7.0], 60), "▁▂▃█");
        assert_eq!(sparkline(&[5.0, 5.0], 60), "▄▄");
        assert_eq!(sparkline(&[], 60), "");
    }

    #[test]
    fn the_time_axis_starts_at_the_first_sample() {
        // two hours of samples at the end of a 24 h period
        let pts: Vec<(i64, f64)> = (0..24).map(|i| (79_200 + i * 300, 5.0)).collect();
        let doc = svg(&Plot {
            title: "t",
            points: &pts,
            from: 0,
            to: 86_400,
            band: None,
            threshold: None,
            redactor: None,
        });
        let xs: Vec<f64> = doc
            .split("points=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .split(' ')
            .map(|p| p.split(',').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(xs[0], LEFT, "{doc}");
        assert!(
            xs.last().unwrap() - xs[0] > (W - LEFT - RIGHT) * 0.9,
            "{xs:?}"
        );
        assert!(doc.contains(">22:30<") || doc.contains(">22:15<"), "{doc}");
    }

    #[test]
    fn long_sparklines_are_bucketed() {
        let v: Vec<f64> = (0..1000).map(|i| i as f64).collect();
        let s = sparkline(&v, 40);
        assert_eq!(s.chars().count(), 40);
        assert!(s.starts_with('▁') && s.ends_with('█'));
    }
}
