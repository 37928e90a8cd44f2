//! `make bench`: the same echo function on ironlambda and on the reference `lambda_runtime`,
//! plus a hand-written floor, measured side by side in one run (interleaved A B A B …,
//! medians of every run) against a fast mock Runtime API and through our emulator.
//!
//! Usage: `bench [--runs N] [--quick] [--only CASE] [--examples DIR] [--out FILE]`
//!        `bench --profile CASE -- WRAPPER…` runs only CASE (e.g. `tiny`) once per subject
//!        under WRAPPER (e.g. `valgrind --tool=callgrind`) and prints no table.

mod emulator_rounds;
mod measure;
mod mock_api;
mod report;
mod stats;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use bytes::Bytes;
use emulator_rounds::Load;
use measure::{Case, Sample};
use report::{Row, Target};

struct Options {
    /// Benchmark only the cases whose name starts with this.
    only: Option<String>,
    /// Profile one case under a wrapper command instead of benchmarking.
    profile: Option<(String, measure::Launcher)>,
    runs: usize,
    quick: bool,
    examples: PathBuf,
    out: Option<PathBuf>,
}

fn options() -> Result<Options, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut o = Options {
        only: None,
        profile: None,
        runs: 5,
        quick: false,
        examples: exe.parent().map(|d| d.join("examples")).unwrap_or_default(),
        out: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => {
                o.runs = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|n| *n > 0)
                    .ok_or("--runs takes a positive number")?
            }
            "--quick" => o.quick = true,
            "--only" => o.only = Some(args.next().ok_or("--only takes a case name")?),
            "--examples" => {
                o.examples = args
                    .next()
                    .map(PathBuf::from)
                    .ok_or("--examples takes a directory")?
            }
            "--out" => o.out = Some(args.next().map(PathBuf::from).ok_or("--out takes a file")?),
            "--profile" => {
                let case = args.next().ok_or("--profile takes a case name")?;
                if args.next().as_deref() != Some("--") {
                    return Err(
                        "--profile CASE must be followed by -- and a wrapper command".into(),
                    );
                }
                let wrapper: Vec<String> = args.by_ref().collect();
                if wrapper.is_empty() {
                    return Err("--profile needs a wrapper command after --".into());
                }
                o.profile = Some((case, measure::Launcher { wrapper }));
            }
            other => {
                return Err(format!(
                    "unknown argument {other:?}; usage: bench [--runs N] [--quick] [--only CASE] [--examples DIR] [--out FILE]"
                ));
            }
        }
    }
    Ok(o)
}

/// A JSON event of about `bytes` bytes.
fn event_of(bytes: usize) -> Bytes {
    Bytes::from(format!(
        r#"{{"data":"{}"}}"#,
        "x".repeat(bytes.saturating_sub(11))
    ))
}

fn cases(quick: bool) -> Vec<Case> {
    let n = |full: usize| if quick { (full / 50).max(2) } else { full };
    vec![
        Case {
            name: "tiny event",
            event: Bytes::from_static(br#"{"n":1}"#),
            invocations: n(20_000),
            expect_errors: false,
            concurrency: 1,
        },
        Case {
            name: "1 MB event",
            event: event_of(1 << 20),
            invocations: n(200),
            expect_errors: false,
            concurrency: 1,
        },
        Case {
            name: "5 MB event",
            event: event_of(5 << 20),
            invocations: n(50),
            expect_errors: false,
            concurrency: 1,
        },
        Case {
            name: "handler error",
            event: Bytes::from_static(br#"{"fail":"error"}"#),
            invocations: n(5_000),
            expect_errors: true,
            concurrency: 1,
        },
        Case {
            name: "handler panic",
            event: Bytes::from_static(br#"{"fail":"panic"}"#),
            invocations: n(5_000),
            expect_errors: true,
            concurrency: 1,
        },
    ]
}

/// The streaming cases, measured on [`STREAM_SUBJECTS`].
fn stream_cases(quick: bool) -> Vec<Case> {
    vec![
        Case {
            name: "stream 100 MB",
            event: Bytes::from_static(br#"{"chunks":1600,"chunk_bytes":65536}"#),
            invocations: if quick { 1 } else { 3 },
            expect_errors: false,
            concurrency: 1,
        },
        Case {
            name: "stream, one small chunk",
            event: Bytes::from_static(br#"{"chunks":1,"chunk_bytes":16}"#),
            invocations: if quick { 40 } else { 200 },
            expect_errors: false,
            concurrency: 1,
        },
    ]
}

/// The concurrency cases, measured on [`CONCURRENT_SUBJECTS`] (`#[tokio::main]`,
/// multi-thread): N = 4 and N = 16, each invocation waiting 5 ms on tokio's timer (what
/// users write, which rounds the wait up to about 6 ms) or on an exact one (as a downstream
/// call would).
fn concurrent_cases(quick: bool) -> Vec<Case> {
    vec![
        concurrent_case("concurrent N=4, 5 ms handler", 4, quick, TOKIO_TIMER),
        concurrent_case("concurrent N=16, 5 ms handler", 16, quick, TOKIO_TIMER),
        concurrent_case("concurrent N=4, 5 ms exact timer", 4, quick, EXACT_TIMER),
        concurrent_case("concurrent N=16, 5 ms exact timer", 16, quick, EXACT_TIMER),
    ]
}

/// The exact-timer concurrency cases again, measured on
/// [`CURRENT_THREAD_CONCURRENT_SUBJECTS`]: the loops interleaved on one thread.
fn current_thread_concurrent_cases(quick: bool) -> Vec<Case> {
    vec![
        concurrent_case(
            "concurrent N=4, 5 ms exact timer, current-thread",
            4,
            quick,
            EXACT_TIMER,
        ),
        concurrent_case(
            "concurrent N=16, 5 ms exact timer, current-thread",
            16,
            quick,
            EXACT_TIMER,
        ),
    ]
}

/// The events that choose the concurrent handler's timer.
const TOKIO_TIMER: &[u8] = br#"{"n":1}"#;
const EXACT_TIMER: &[u8] = br#"{"n":1,"timer":"exact"}"#;

/// A case of N loops: 500 invocations per loop (a twentieth with `quick`).
fn concurrent_case(name: &'static str, loops: u32, quick: bool, event: &'static [u8]) -> Case {
    let invocations = loops as usize * 500;
    Case {
        name,
        event: Bytes::from_static(event),
        invocations: if quick { invocations / 20 } else { invocations },
        expect_errors: false,
        concurrency: loops,
    }
}

/// The HTTP cases, measured on [`HTTP_SUBJECTS`]: an API Gateway HTTP API event through an
/// axum `Router`.
fn http_cases(quick: bool) -> Vec<Case> {
    vec![Case {
        name: "HTTP API event, axum Router",
        event: Bytes::from_static(include_bytes!("../events/apigw-http.json")),
        invocations: if quick { 200 } else { 10_000 },
        expect_errors: false,
        concurrency: 1,
    }]
}

/// Runs `case` on each of the `K` subjects `bins` (ours, the reference's and, as a third,
/// the floor), interleaved, ours and the reference alternating who goes first, so drift
/// hits all alike. The floor does not run a case whose answers are errors.
async fn interleaved<const K: usize>(
    launcher: &measure::Launcher,
    bins: &[PathBuf],
    case: &Case,
    runs: usize,
) -> Result<[Vec<Sample>; K], String> {
    let mut samples: [Vec<Sample>; K] = std::array::from_fn(|_| Vec::new());
    for run in 0..runs {
        let mut order: [usize; K] = std::array::from_fn(|s| s);
        if run % 2 == 1 {
            order.swap(OURS, REFERENCE);
        }
        for s in order {
            if s == FLOOR && case.expect_errors {
                continue;
            }
            samples[s].push(measure::run_case(launcher, &bins[s], case).await?);
        }
    }
    Ok(samples)
}

/// A row per metric for a two-subject case (no floor).
fn paired_rows(case: &str, samples: &[Vec<Sample>; 2], metrics: &[Metric]) -> Vec<Row> {
    metrics
        .iter()
        .map(|(name, f)| {
            let pick = |s: usize| samples[s].iter().map(f).collect::<Vec<_>>();
            Row::new(case, name, &pick(OURS), &pick(REFERENCE), None)
        })
        .collect()
}

/// The concurrency subjects: ours, the reference's, and a floor of blocking threads.
const CONCURRENT_SUBJECTS: [&str; 3] = [
    "concurrent_ironlambda",
    "concurrent_reference",
    "concurrent_floor",
];

/// The same on a current-thread runtime: ours through `start`, the reference's under
/// `#[tokio::main(flavor = "current_thread")]`; the same floor.
const CURRENT_THREAD_CONCURRENT_SUBJECTS: [&str; 3] = [
    "concurrent_ironlambda_ct",
    "concurrent_reference_ct",
    "concurrent_floor",
];

/// Every concurrency case with the subjects it runs on.
fn concurrent_groups(quick: bool) -> [(Vec<Case>, [&'static str; 3]); 2] {
    [
        (concurrent_cases(quick), CONCURRENT_SUBJECTS),
        (
            current_thread_concurrent_cases(quick),
            CURRENT_THREAD_CONCURRENT_SUBJECTS,
        ),
    ]
}

/// The echo functions on `#[tokio::main]` (multi-thread), ours and the reference's.
const MULTI_THREAD_SUBJECTS: [&str; 2] = ["echo_ironlambda_mt", "echo_reference_mt"];

/// The multi-thread flavour's case: the tiny event of [`cases`], under another name.
fn multi_thread_cases(quick: bool) -> Vec<Case> {
    cases(quick)
        .into_iter()
        .take(1)
        .map(|c| Case {
            name: "tiny event, #[tokio::main]",
            ..c
        })
        .collect()
}

/// Ours built with the runtime's `sonic` feature, against the reference's echo.
const SONIC_SUBJECTS: [&str; 2] = ["echo_ironlambda_sonic", "echo_reference"];

/// The large-event cases of [`cases`], under the names of the `sonic` rows.
fn sonic_cases(quick: bool) -> Vec<Case> {
    cases(quick)
        .into_iter()
        .filter_map(|c| {
            let name = match c.name {
                "1 MB event" => "1 MB event, feature sonic",
                "5 MB event" => "5 MB event, feature sonic",
                _ => return None,
            };
            Some(Case { name, ..c })
        })
        .collect()
}

/// The HTTP subjects: the same axum `Router` behind `ironlambda-http` and `lambda_http`.
const HTTP_SUBJECTS: [&str; 2] = ["http_ironlambda", "http_reference"];

/// The streaming subjects (the floor has no streaming counterpart).
const STREAM_SUBJECTS: [&str; 2] = ["stream_ironlambda", "stream_reference"];

/// The subjects, in the order each run interleaves them.
const OURS: usize = 0;
const REFERENCE: usize = 1;
const FLOOR: usize = 2;
const SUBJECTS: [&str; 3] = ["echo_ironlambda", "echo_reference", "echo_floor"];

/// A figure's name and how to read it from a sample.
type Metric = (&'static str, fn(&Sample) -> f64);

/// The figures of a request–answer case.
const METRICS: [Metric; 6] = [
    ("invocations/s", |s| s.invocations_per_s),
    ("latency p50 µs", |s| s.p50_us),
    ("latency p99 µs", |s| s.p99_us),
    ("CPU µs/invocation", |s| s.cpu_us),
    ("user CPU µs/invocation", |s| s.user_us),
    ("peak RSS KiB", |s| s.peak_rss_kb),
];

/// The figures of a paired (no floor) request–answer case: all but p99.
const ECHO_METRICS: [Metric; 5] = [METRICS[0], METRICS[1], METRICS[3], METRICS[4], METRICS[5]];

fn metric_rows(case: &str, samples: &[Vec<Sample>; 3], floor_applies: bool) -> Vec<Row> {
    let pick = |s: usize, f: fn(&Sample) -> f64| samples[s].iter().map(f).collect::<Vec<_>>();
    METRICS
        .iter()
        .map(|(name, f)| {
            let floor = pick(FLOOR, *f);
            Row::new(
                case,
                name,
                &pick(OURS, *f),
                &pick(REFERENCE, *f),
                (floor_applies && !floor.is_empty()).then_some(&floor[..]),
            )
        })
        .collect()
}

/// `spawns` cold starts of each of `bins`, interleaved, ours and the reference alternating
/// who goes first as the other cases do: one list of µs per binary.
async fn cold_starts(bins: &[PathBuf], spawns: usize) -> Result<Vec<Vec<f64>>, String> {
    let mut cold = vec![Vec::with_capacity(spawns); bins.len()];
    for round in 0..spawns {
        let mut order: Vec<usize> = (0..bins.len()).collect();
        if round % 2 == 1 {
            order.swap(OURS, REFERENCE);
        }
        for s in order {
            cold[s].push(measure::cold_start(&bins[s]).await?);
        }
    }
    Ok(cold)
}

/// A file's size in KiB (NaN when it cannot be read).
fn size_kib(p: &Path) -> f64 {
    std::fs::metadata(p)
        .map(|m| m.len() as f64 / 1024.0)
        .unwrap_or(f64::NAN)
}

/// The row of `case` that holds `metric`, if the run measured it.
fn measured<'a>(rows: &'a [Row], case: &str, (metric, _): Metric) -> Option<&'a Row> {
    rows.iter().find(|r| r.case == case && r.metric == metric)
}

/// An emulator load's throughput target: ours through the emulator must keep at least
/// `goal` of ours against the mock API, `direct`, measured after each round so that the
/// machine's drift between sections does not enter the ratio.
struct EmulatorTarget {
    load: &'static str,
    goal: f64,
    direct: f64,
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cores} cores, {cpu}, Linux {}", kernel.trim())
}

async fn bench(o: &Options) -> Result<String, String> {
    let path = |name: &str| -> Result<PathBuf, String> {
        let p = o.examples.join(name);
        p.is_file().then_some(p.clone()).ok_or_else(|| {
            format!("{} is missing: build with `cargo build --release -p ironlambda-benchmarks --examples` and `cargo build --release -p ironlambda-bench-subjects --examples` (or `make bench`)", p.display())
        })
    };
    let bins: Vec<PathBuf> = SUBJECTS.iter().map(|n| path(n)).collect::<Result<_, _>>()?;
    let stream_bins =
        || -> Result<Vec<PathBuf>, String> { STREAM_SUBJECTS.iter().map(|n| path(n)).collect() };
    if let Some((name, launcher)) = &o.profile {
        // Every group of cases with the subjects it runs on.
        let groups: Vec<(Vec<Case>, Vec<&str>)> = [
            (cases(false), SUBJECTS.to_vec()),
            (stream_cases(false), STREAM_SUBJECTS.to_vec()),
            (http_cases(false), HTTP_SUBJECTS.to_vec()),
            (multi_thread_cases(false), MULTI_THREAD_SUBJECTS.to_vec()),
            (sonic_cases(false), SONIC_SUBJECTS.to_vec()),
        ]
        .into_iter()
        .chain(
            concurrent_groups(false)
                .into_iter()
                .map(|(cases, subjects)| (cases, subjects.to_vec())),
        )
        .collect();
        let (case, subjects) = groups
            .into_iter()
            .find_map(|(cases, subjects)| {
                let case = cases
                    .into_iter()
                    .find(|c| c.name.starts_with(name.as_str()))?;
                Some((case, subjects))
            })
            .ok_or_else(|| format!("no case named {name:?}"))?;
        let case = Case {
            invocations: case.invocations.min(5_000),
            ..case
        };
        for subject in subjects {
            measure::run_case(launcher, &path(subject)?, &case).await?;
            eprintln!(
                "bench: profiled {subject} on {} ({} invocations)",
                case.name, case.invocations
            );
        }
        return Ok(String::new());
    }
    let launcher = measure::Launcher::default();
    let runs = if o.quick { 1 } else { o.runs };
    let mut rows = Vec::new();

    let selected = |name: &str| o.only.as_deref().is_none_or(|only| name.starts_with(only));
    for case in cases(o.quick).into_iter().filter(|c| selected(c.name)) {
        let samples = interleaved(&launcher, &bins, &case, runs).await?;
        eprintln!("bench: {} done", case.name);
        rows.extend(metric_rows(case.name, &samples, !case.expect_errors));
    }

    // Echo cases on other builds of ours against the reference: the tiny echo on
    // `#[tokio::main]` (both sides), and the large events with our `sonic` feature.
    let variants = [
        (multi_thread_cases(o.quick), MULTI_THREAD_SUBJECTS),
        (sonic_cases(o.quick), SONIC_SUBJECTS),
    ];
    for (variant_cases, subjects) in variants {
        for case in variant_cases.into_iter().filter(|c| selected(c.name)) {
            let variant_bins = subjects
                .iter()
                .map(|n| path(n))
                .collect::<Result<Vec<_>, _>>()?;
            let samples = interleaved(&launcher, &variant_bins, &case, runs).await?;
            rows.extend(paired_rows(case.name, &samples, &ECHO_METRICS));
            eprintln!("bench: {} done", case.name);
        }
    }

    // A spawn is a single sample of a noisy figure (page faults, the scheduler): 20 per
    // run, every run's pooled into one median.
    let spawns = if o.quick { 2 } else { 20 * runs };
    if selected("cold start") {
        let cold = cold_starts(&bins, spawns).await?;
        rows.push(Row::new(
            "cold start",
            "spawn → first /next µs",
            &cold[OURS],
            &cold[REFERENCE],
            Some(&cold[FLOOR]),
        ));
        rows.push(Row::new(
            "binary",
            "stripped size KiB",
            &[size_kib(&bins[OURS])],
            &[size_kib(&bins[REFERENCE])],
            Some(&[size_kib(&bins[FLOOR])]),
        ));
    }
    eprintln!("bench: cold start and sizes done");

    let mut emulator_targets: Vec<EmulatorTarget> = Vec::new();
    if selected("emulator") {
        let (clients, per_client) = if o.quick { (8, 5) } else { (8, 500) };
        let sequential = if o.quick { 20 } else { 4_000 };
        // The tiny event, sent through the emulator; the same case run directly is what
        // each round's throughput is measured against.
        let direct_case = cases(o.quick)
            .into_iter()
            .find(|c| c.name == "tiny event")
            .ok_or("no tiny event case")?;
        let tiny = direct_case.event.clone();
        // Each load, with the least share of ours against the mock API it must keep.
        let loads = [
            (
                "emulator, 1 caller",
                Load {
                    clients: 1,
                    per_client: sequential,
                    environments: 1,
                },
                Some(0.6),
            ),
            (
                "emulator, 8 callers",
                Load {
                    clients,
                    per_client,
                    environments: 1,
                },
                Some(0.8),
            ),
            (
                "emulator, 8 callers, 4 environments",
                Load {
                    clients,
                    per_client,
                    environments: 4,
                },
                None,
            ),
        ];
        for (name, load, goal) in loads {
            let mut samples: [Vec<Sample>; 3] = Default::default();
            let mut direct = Vec::with_capacity(runs);
            for run in 0..runs {
                let mut order = [OURS, REFERENCE, FLOOR];
                if run % 2 == 1 {
                    order.swap(OURS, REFERENCE);
                }
                for s in order {
                    samples[s]
                        .push(emulator_rounds::round_trips(&bins[s], load, tiny.clone()).await?);
                }
                if goal.is_some() {
                    let alone = measure::run_case(&launcher, &bins[OURS], &direct_case).await?;
                    direct.push(alone.invocations_per_s);
                }
            }
            rows.extend(metric_rows(name, &samples, true).into_iter().take(3));
            if let Some(goal) = goal {
                emulator_targets.push(EmulatorTarget {
                    load: name,
                    goal,
                    direct: stats::median(&direct),
                });
            }
        }
    }
    eprintln!("bench: emulator done");

    // Streamed responses: ours (`Streaming::channel`) against the reference's
    // `streaming::channel`; the floor has no streaming counterpart.
    let streams: Vec<Case> = stream_cases(o.quick)
        .into_iter()
        .filter(|c| selected(c.name))
        .collect();
    if !streams.is_empty() {
        let stream_bins = stream_bins()?;
        let metrics: [Metric; 5] = [
            METRICS[0],
            ("time to first byte µs", |s| s.first_byte_us),
            METRICS[3],
            METRICS[4],
            METRICS[5],
        ];
        for case in streams {
            let samples = interleaved(&launcher, &stream_bins, &case, runs).await?;
            rows.extend(paired_rows(case.name, &samples, &metrics));
            eprintln!("bench: {} done", case.name);
        }
    }

    // Lambda Managed Instances: N invocation loops, each invocation awaiting 5 ms, ours
    // against the reference's `run_concurrent`.
    for (cases, subjects) in concurrent_groups(o.quick) {
        let concurrent: Vec<Case> = cases.into_iter().filter(|c| selected(c.name)).collect();
        if concurrent.is_empty() {
            continue;
        }
        let concurrent_bins = subjects
            .iter()
            .map(|n| path(n))
            .collect::<Result<Vec<_>, _>>()?;
        for case in concurrent {
            let samples = interleaved(&launcher, &concurrent_bins, &case, runs).await?;
            rows.extend(metric_rows(case.name, &samples, true));
            eprintln!("bench: {} done", case.name);
        }
    }

    // HTTP functions: an axum Router behind each runtime's HTTP adapter.
    let http: Vec<Case> = http_cases(o.quick)
        .into_iter()
        .filter(|c| selected(c.name))
        .collect();
    if !http.is_empty() {
        let http_bins = HTTP_SUBJECTS
            .iter()
            .map(|n| path(n))
            .collect::<Result<Vec<_>, _>>()?;
        for case in http {
            let samples = interleaved(&launcher, &http_bins, &case, runs).await?;
            rows.extend(paired_rows(case.name, &samples, &ECHO_METRICS));
            eprintln!("bench: {} done", case.name);
        }
        let cold = cold_starts(&http_bins, spawns).await?;
        rows.push(Row::new(
            "HTTP, axum Router",
            "cold start: spawn → first /next µs",
            &cold[OURS],
            &cold[REFERENCE],
            None,
        ));
        rows.push(Row::new(
            "HTTP, axum Router",
            "stripped binary KiB",
            &[size_kib(&http_bins[OURS])],
            &[size_kib(&http_bins[REFERENCE])],
            None,
        ));
    }

    // The open targets: performance, second round (tiny, large events, cold start, size),
    // and the concurrency rows of Managed Instances.
    let goals = [
        Target {
            case: "tiny event",
            metric: "CPU µs/invocation",
            limit: 0.45,
            higher_is_better: false,
        },
        Target {
            case: "tiny event",
            metric: "invocations/s",
            limit: 2.0,
            higher_is_better: true,
        },
        Target {
            case: "tiny event",
            metric: "peak RSS KiB",
            limit: 0.8,
            higher_is_better: false,
        },
        Target {
            case: "1 MB event",
            metric: "CPU µs/invocation",
            limit: 0.75,
            higher_is_better: false,
        },
        Target {
            case: "1 MB event",
            metric: "peak RSS KiB",
            limit: 0.7,
            higher_is_better: false,
        },
        Target {
            case: "5 MB event",
            metric: "CPU µs/invocation",
            limit: 0.75,
            higher_is_better: false,
        },
        Target {
            case: "5 MB event",
            metric: "peak RSS KiB",
            limit: 0.7,
            higher_is_better: false,
        },
        Target {
            case: "cold start",
            metric: "spawn → first /next µs",
            limit: 0.85,
            higher_is_better: false,
        },
        Target {
            case: "binary",
            metric: "stripped size KiB",
            limit: 0.5,
            higher_is_better: false,
        },
    ];
    // Concurrency: ≥ 1.3 × the reference's throughput at ≤ 0.6 × its CPU, on either timer
    // and either flavour.
    let all_concurrent = || {
        concurrent_groups(false)
            .into_iter()
            .flat_map(|(cases, _)| cases)
    };
    let goals: Vec<Target> = goals
        .into_iter()
        .chain(all_concurrent().flat_map(|c| {
            [
                Target {
                    case: c.name,
                    metric: "invocations/s",
                    limit: 1.3,
                    higher_is_better: true,
                },
                Target {
                    case: c.name,
                    metric: "CPU µs/invocation",
                    limit: 0.6,
                    higher_is_better: false,
                },
            ]
        }))
        .collect();
    let mut doc = String::new();
    doc.push_str("# Benchmarks\n\nGenerated by `make bench` (the `bench` binary in `benchmarks/`); numbers in the docs come from here only.\n\n");
    doc.push_str(&format!("- Machine: {}\n", machine()));
    doc.push_str(&format!(
        "- Runs: {runs} per figure, subjects interleaved (ironlambda, reference, floor; the first two alternate who goes first); medians shown; {spawns} spawns for cold start.\n"
    ));
    doc.push_str("- Subjects: `benchmarks/subjects/examples/echo_ironlambda.rs`, `benchmarks/examples/echo_reference.rs` (`lambda_runtime` 1.5, its default `tracing` subscriber as its docs show), `echo_floor.rs` (std only, HTTP by hand, no JSON, each answer and the next `/next` in one write as ironlambda does), all built with the workspace release profile, on a current-thread tokio runtime. Our current-thread subjects (echo, stream, HTTP, the current-thread concurrent one) are a package of their own, built with `-p` alone, so that cargo does not unify into them the tokio multi-thread scheduler the other subjects need: they link what a user's crate with the same code links. The reference always links that scheduler (`lambda_runtime` asks for `rt-multi-thread`).\n");
    doc.push_str("- CPU and peak RSS are the function process's own (`wait4` rusage); latency is from serving `/next` to receiving the whole `/response`; the mock Runtime API runs in the bench process, which the scheduler usually puts on the other core, so every message costs a cross-core wake-up.\n");
    doc.push_str("- Emulator rows: invoke round trips through `ironlambda-emulator` on keep-alive connections, each subject running under it.\n");
    doc.push_str("- Concurrent rows: `concurrent_ironlambda.rs` and `concurrent_reference.rs` (`lambda_runtime::run_concurrent`, feature `concurrency-tokio`) with `AWS_LAMBDA_MAX_CONCURRENCY=N`, on `#[tokio::main]` (multi-thread), each invocation awaiting a 5 ms timer: tokio's (`5 ms handler`, what users write; it rounds the deadline up to the next millisecond tick and parks with a whole-millisecond timeout, so the wait lasts about 6 ms) or a `timerfd` that does not round (`5 ms exact timer`, as a downstream call would answer); the mock API hands an event to every open `/next`. Their floor, `concurrent_floor.rs`, is N blocking std threads that sleep 5 ms each (`nanosleep`). `current-thread` rows: the same handler on one thread, ours through `start` (`benchmarks/subjects/examples/concurrent_ironlambda_ct.rs`, the entry point the README shows first), the reference's under `#[tokio::main(flavor = \"current_thread\")]` (`concurrent_reference_ct.rs`).\n");
    doc.push_str("- `#[tokio::main]` rows: `echo_ironlambda_mt.rs` and `echo_reference_mt.rs`, the same echo on the multi-thread runtime most users write (two workers on this machine).\n");
    doc.push_str("- `feature sonic` rows: `echo_ironlambda_sonic`, the same echo source built with `ironlambda-runtime`'s `sonic` feature (responses written by `sonic-rs`), in a package of its own (`benchmarks/subjects-sonic`), against the reference's echo.\n");
    doc.push_str("- HTTP rows: `http_ironlambda.rs` (`ironlambda_http::run`) and `http_reference.rs` (`lambda_http::run` 1.3, its default subscriber), the same axum 0.8 `Router` answering `benchmarks/events/apigw-http.json`, an API Gateway HTTP API (payload 2.0) event, with JSON; current-thread tokio runtime.\n");
    doc.push_str("- Stream rows: `stream_ironlambda.rs` (`Streaming::channel`) and `stream_reference.rs` (`lambda_runtime::streaming::channel`) stream N chunks of one shared buffer; the mock API reads each body a frame at a time. Time to first byte is from serving `/next` to the first body byte of the streamed `/response`.\n\n");
    doc.push_str("## Results\n\n");
    doc.push_str(&report::table(&rows));
    doc.push_str("\n## Targets\n\n");
    doc.push_str(&report::targets(&rows, &goals));
    for case in all_concurrent() {
        let Some(row) = measured(&rows, case.name, METRICS[0]) else {
            continue;
        };
        // N loops, each invocation waiting 5 ms: at best N / 5 ms invocations/s.
        let loops = case.concurrency;
        let goal = 0.9 * f64::from(loops) / 0.005;
        let verdict = if row.ours >= goal { "met" } else { "missed" };
        doc.push_str(&format!(
            "- {}, invocations/s of ours ≥ 0.9 × {loops} / 5 ms = {goal:.0} (absolute): {:.0}, {verdict} (the floor: {:.0})\n",
            case.name,
            row.ours,
            row.floor.unwrap_or(f64::NAN),
        ));
    }
    for EmulatorTarget { load, goal, direct } in &emulator_targets {
        let ours = |metric| measured(&rows, load, metric).map_or(f64::NAN, |r| r.ours);
        let (rate, p50, p99) = (ours(METRICS[0]), ours(METRICS[1]), ours(METRICS[2]));
        let ratio = rate / direct;
        let verdict = if ratio >= *goal { "met" } else { "missed" };
        doc.push_str(&format!(
            "- {load}: ours through the emulator ≥ {goal} × ours against the mock API (tiny event, run after each round): {rate:.0} / {direct:.0} = {ratio:.2}×, {verdict}\n"
        ));
        let spread = p99 / p50;
        let verdict = if spread <= 3.0 { "met" } else { "missed" };
        doc.push_str(&format!(
            "- {load}: latency p99 ≤ 3 × p50 through the emulator: {p99:.0} / {p50:.0} µs = {spread:.2}×, {verdict}\n"
        ));
    }
    let cpu = |case| measured(&rows, case, METRICS[3]).map(|r| r.ours);
    if let (Some(current), Some(multi)) = (cpu("tiny event"), cpu("tiny event, #[tokio::main]")) {
        let ratio = multi / current;
        let verdict = if ratio <= 1.3 { "met" } else { "missed" };
        doc.push_str(&format!(
            "- tiny event CPU µs/invocation of ours on `#[tokio::main]` ≤ 1.3 × ours on a current-thread runtime (same run): {multi:.1} / {current:.1} = {ratio:.2}×, {verdict}\n"
        ));
    }
    if let Some(kib) = measured(&rows, "stream 100 MB", METRICS[5]).map(|r| r.ours) {
        let verdict = if kib <= 16.0 * 1024.0 {
            "met"
        } else {
            "missed"
        };
        doc.push_str(&format!(
            "- stream 100 MB, peak RSS of ours ≤ 16384 KiB (absolute, whatever the size): {kib:.0} KiB, {verdict}\n"
        ));
    }
    Ok(doc)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let o = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("bench: {e}");
            return ExitCode::from(2);
        }
    };
    match bench(&o).await {
        Ok(doc) => {
            println!("{doc}");
            if let Some(out) = &o.out {
                if let Err(e) = std::fs::write(out, &doc) {
                    eprintln!("bench: cannot write {}: {e}", out.display());
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}
