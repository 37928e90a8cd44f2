//! The harness works end to end: a mock Runtime API serves real processes of all three echo
//! functions (the debug builds `cargo test` makes of the examples) and a table comes out.

use std::process::Command;

#[test]
fn a_quick_run_measures_every_subject() {
    let exe = std::env::current_exe().unwrap();
    let examples = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .join("examples");
    let out = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(["--quick", "--only", "tiny", "--examples"])
        .arg(&examples)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row = stdout
        .lines()
        .find(|l| l.starts_with("| tiny event | invocations/s |"))
        .unwrap_or_else(|| panic!("no throughput row:\n{stdout}"));
    // ironlambda, reference, ratio and floor all measured.
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    for cell in &cells[3..7] {
        assert!(!cell.is_empty() && *cell != "—", "{row}");
    }
}

#[test]
fn a_quick_stream_run_measures_time_to_first_byte_for_both_runtimes() {
    let exe = std::env::current_exe().unwrap();
    let examples = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .join("examples");
    let out = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(["--quick", "--only", "stream, one", "--examples"])
        .arg(&examples)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row = stdout
        .lines()
        .find(|l| l.starts_with("| stream, one small chunk | time to first byte µs |"))
        .unwrap_or_else(|| panic!("no time-to-first-byte row:\n{stdout}"));
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    for cell in &cells[3..6] {
        assert!(!cell.is_empty() && *cell != "—", "{row}");
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
