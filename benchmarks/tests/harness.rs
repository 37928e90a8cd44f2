//! The harness works end to end: a mock Runtime API serves real processes of all three echo
//! functions (the debug builds `cargo test` makes of the examples) and a table comes out.

use std::process::Command;

/// Runs `bench --quick --only CASE` on the debug examples and returns the cells of the row
/// that starts with `row`.
fn quick_row(case: &str, row: &str) -> Vec<String> {
    let exe = std::env::current_exe().unwrap();
    let examples = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .join("examples");
    let out = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(["--quick", "--only", case, "--examples"])
        .arg(&examples)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with(row))
        .unwrap_or_else(|| panic!("no row {row:?}:\n{stdout}"));
    line.split('|').map(|c| c.trim().to_owned()).collect()
}

#[test]
fn a_quick_run_measures_every_subject() {
    let cells = quick_row("tiny", "| tiny event | invocations/s |");
    // ironlambda, reference, ratio and floor all measured.
    for cell in &cells[3..7] {
        assert!(!cell.is_empty() && cell != "—", "{cells:?}");
    }
}

#[test]
fn a_quick_stream_run_measures_time_to_first_byte_for_both_runtimes() {
    let cells = quick_row(
        "stream, one",
        "| stream, one small chunk | time to first byte µs |",
    );
    // ironlambda, reference and the ratio measured (streaming has no floor).
    for cell in &cells[3..6] {
        assert!(!cell.is_empty() && cell != "—", "{cells:?}");
    }
}

#[test]
fn a_quick_concurrent_run_measures_both_runtimes_and_the_floor_on_either_timer_and_flavour() {
    for row in [
        "| concurrent N=4, 5 ms handler | invocations/s |",
        "| concurrent N=4, 5 ms exact timer | invocations/s |",
        "| concurrent N=4, 5 ms exact timer, current-thread | invocations/s |",
    ] {
        let cells = quick_row("concurrent N=4", row);
        // ironlambda, reference, ratio and floor all measured.
        for cell in &cells[3..7] {
            assert!(!cell.is_empty() && cell != "—", "{cells:?}");
        }
    }
}

#[test]
fn bad_arguments_are_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_bench"))
        .arg("--frobnicate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown argument"));
}
