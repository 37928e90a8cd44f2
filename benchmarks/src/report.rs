//! The results table: medians per subject, the ratio ours/reference, and the floor.

use std::fmt::Write;

use crate::stats::median;

/// One measured figure for every subject: medians over the runs.
pub struct Row {
    pub case: String,
    pub metric: &'static str,
    pub ours: f64,
    pub reference: f64,
    pub floor: Option<f64>,
}

impl Row {
    /// A row from the raw per-run values of each subject.
    pub fn new(
        case: &str,
        metric: &'static str,
        ours: &[f64],
        reference: &[f64],
        floor: Option<&[f64]>,
    ) -> Self {
        Row {
            case: case.to_owned(),
            metric,
            ours: median(ours),
            reference: median(reference),
            floor: floor.map(median),
        }
    }

    /// ours / reference.
    pub fn ratio(&self) -> f64 {
        self.ours / self.reference
    }
}

fn number(v: f64) -> String {
    if !v.is_finite() {
        "—".to_owned()
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// A Markdown table of `rows`.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| case | figure | ironlambda | reference | ours / reference | floor |\n|---|---|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            r.case,
            r.metric,
            number(r.ours),
            number(r.reference),
            if r.ratio().is_finite() {
                format!("{:.2}×", r.ratio())
            } else {
                "—".into()
            },
            r.floor.map_or("—".to_owned(), number),
        );
    }
    out
}

/// A target on one row: the ratio must be at most (or, for throughput, at least) `limit`.
pub struct Target {
    pub case: &'static str,
    pub metric: &'static str,
    pub limit: f64,
    pub higher_is_better: bool,
}

/// Each target with the measured ratio and whether it was met.
pub fn targets(rows: &[Row], targets: &[Target]) -> String {
    let mut out = String::from("| target | measured | met |\n|---|---:|---|\n");
    for t in targets {
        let Some(row) = rows
            .iter()
            .find(|r| r.case == t.case && r.metric == t.metric)
        else {
            continue;
        };
        let ratio = row.ratio();
        let met = if t.higher_is_better {
            ratio >= t.limit
        } else {
            ratio <= t.limit
        };
        let sign = if t.higher_is_better { "≥" } else { "≤" };
        let _ = writeln!(
            out,
            "| {} {}: ours/reference {sign} {:.2} | {:.2}× | {} |",
            t.case,
            t.metric,
            t.limit,
            ratio,
            if met { "yes" } else { "**no**" }
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_and_targets_render() {
        let rows = vec![
            Row::new(
                "tiny",
                "CPU µs/invocation",
                &[10.0, 12.0, 11.0],
                &[40.0, 44.0, 42.0],
                Some(&[5.0]),
            ),
            Row::new("tiny", "invocations/s", &[3000.0], &[1000.0], None),
        ];
        let t = table(&rows);
        assert!(
            t.contains("| tiny | CPU µs/invocation | 11.0 | 42.0 | 0.26× | 5.0 |"),
            "{t}"
        );
        assert!(
            t.contains("| tiny | invocations/s | 3000 | 1000 | 3.00× | — |"),
            "{t}"
        );
        let verdicts = targets(
            &rows,
            &[
                Target {
                    case: "tiny",
                    metric: "CPU µs/invocation",
                    limit: 0.5,
                    higher_is_better: false,
                },
                Target {
                    case: "tiny",
                    metric: "invocations/s",
                    limit: 4.0,
                    higher_is_better: true,
                },
            ],
        );
        assert!(verdicts.contains("0.26× | yes"), "{verdicts}");
        assert!(verdicts.contains("3.00× | **no**"), "{verdicts}");
    }
}
