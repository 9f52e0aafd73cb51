//! Requests per hour, stacked by outcome, as inline SVG: drawn on the server
//! so that it shows without JavaScript.

use maud::{Markup, html};
use serde_json::Value;

const BAR: f64 = 5.0;
const HEIGHT: f64 = 120.0;

/// The three series the chart stacks, bottom to top.
const SERIES: [(&str, &str); 3] = [
    ("accepted", "Accepted"),
    ("duplicate", "Duplicate"),
    ("rejected", "Rejected"),
];

fn series_counts(counts: &Value) -> [i64; 3] {
    let mut out = [0i64; 3];
    if let Some(map) = counts.as_object() {
        for (outcome, n) in map {
            let n = n.as_i64().unwrap_or(0);
            match outcome.as_str() {
                "accepted" => out[0] += n,
                "duplicate" => out[1] += n,
                _ => out[2] += n,
            }
        }
    }
    out
}

/// `hourly` is the stats API's list of `{start, total, counts}`.
pub fn hourly(hourly: &[Value]) -> Markup {
    let bars: Vec<(String, [i64; 3])> = hourly
        .iter()
        .map(|h| {
            (
                h["start"].as_str().unwrap_or("").to_owned(),
                series_counts(&h["counts"]),
            )
        })
        .collect();
    let max = bars
        .iter()
        .map(|(_, c)| c.iter().sum::<i64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let width = BAR * bars.len().max(1) as f64;
    let total: i64 = bars.iter().map(|(_, c)| c.iter().sum::<i64>()).sum();
    let label = format!(
        "Requests per hour over the last {} hours: {total} in all, at most {max} in one hour.",
        bars.len()
    );
    // Day boundaries, labelled under the chart.
    let days: Vec<(usize, String)> = bars
        .iter()
        .enumerate()
        .filter(|(_, (start, _))| start.get(11..13) == Some("00"))
        .map(|(i, (start, _))| (i, start.get(5..10).unwrap_or("").to_owned()))
        .collect();
    html! {
        figure.chart {
            svg viewBox={ "0 0 " (width) " " (HEIGHT) } preserveAspectRatio="none" role="img" aria-label=(label) {
                @for (i, _) in &days {
                    line.day x1=(*i as f64 * BAR) x2=(*i as f64 * BAR) y1="0" y2=(HEIGHT) {}
                }
                @for (i, (start, counts)) in bars.iter().enumerate() {
                    @if counts.iter().sum::<i64>() > 0 {
                        g {
                            title {
                                (super::view::abs_time(start)) " UTC: "
                                (counts[0]) " accepted, " (counts[1]) " duplicate, " (counts[2]) " rejected"
                            }
                            @for (name, y, h) in stack(counts, max) {
                                rect class={ "s-" (name) } x=(i as f64 * BAR + 0.5) y=(y) width=(BAR - 1.0) height=(h) {}
                            }
                        }
                    }
                }
            }
            figcaption {
                span.axis {
                    @for (_, day) in &days { span { (day) } }
                }
                span.legend {
                    @for (name, label) in SERIES {
                        span { i class={ "key s-" (name) } aria-hidden="true" {} (label) }
                    }
                    span.muted { "max " (max) "/h" }
                }
            }
        }
    }
}

/// The rectangles of one bar: (series, y, height), bottom up.
fn stack(counts: &[i64; 3], max: i64) -> Vec<(&'static str, f64, f64)> {
    let mut y = HEIGHT;
    let mut out = Vec::new();
    for (s, (name, _)) in SERIES.iter().enumerate() {
        if counts[s] > 0 {
            let h = counts[s] as f64 / max as f64 * (HEIGHT - 4.0);
            y -= h;
            out.push((*name, y, h));
        }
    }
    out
}
