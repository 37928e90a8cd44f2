//! `AWS_LAMBDA_MAX_CONCURRENCY` in the runtime (protocol.md §8): `test-function` runs as a
//! real process against a scripted Runtime API that serves each connection on a thread of
//! its own, as Lambda Managed Instances do.

use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use ironlambda_integration_tests::PATIENCE;
use ironlambda_integration_tests::scripted::{
    ACCEPTED, Act, event_with, reply, scripted_api, start_function, wait_for_exit,
};
use serde_json::Value;

/// What the scripted server saw: the answer body posted for each request id, and the
/// connection each event went out on and each answer came back on.
#[derive(Default)]
struct Ledger {
    answers: HashMap<String, Value>,
    sent_on: HashMap<String, usize>,
    answered_on: HashMap<String, usize>,
}

/// Serves `events` (request id, body) to whichever connection polls next, records every
/// answer, and says `done` when all were answered.
fn serve(events: Vec<(String, String)>) -> (u16, Arc<Mutex<Ledger>>, mpsc::Receiver<()>) {
    let total = events.len();
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let book = ledger.clone();
    let (tx, done) = mpsc::channel();
    let mut events = events.into_iter();
    let port = scripted_api(move |req| {
        let mut book = book.lock().unwrap();
        if req.is_next() {
            return match events.next() {
                Some((id, body)) => {
                    book.sent_on.insert(id.clone(), req.conn);
                    Act::Reply(event_with(&id, &body))
                }
                None => Act::Hold,
            };
        }
        let id = req
            .path()
            .trim_start_matches("/2018-06-01/runtime/invocation/")
            .split('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        let body = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        book.answered_on.insert(id.clone(), req.conn);
        book.answers.insert(id, body);
        if book.answers.len() == total {
            let _ = tx.send(());
        }
        Act::Reply(ACCEPTED.to_vec())
    });
    (port, ledger, done)
}

/// Runs `test-function` with `env` against `port` until `done`, then ends it.
fn run(port: u16, env: &[(&str, &str)], done: mpsc::Receiver<()>) -> bool {
    let mut function = start_function("test-function", &format!("127.0.0.1:{port}"), env);
    let finished = done.recv_timeout(PATIENCE).is_ok();
    let _ = function.kill();
    let _ = function.wait();
    finished
}

/// Four invocations that each wait 300 ms run at the same time: every one started before
/// any ended, by the function's own clock. On both runtime flavours, with a `Send` handler
/// through `run` and with one that is not `Send` through `run_local`.
#[test]
fn with_max_concurrency_4_four_invocations_overlap() {
    let flavours: [&[(&str, &str)]; 4] = [
        &[],
        &[("MULTI_THREAD", "1")],
        &[("LOCAL", "1")],
        &[("LOCAL", "1"), ("MULTI_THREAD", "1")],
    ];
    for flavour in flavours {
        let events = (0..4)
            .map(|n| {
                (
                    format!("id-{n}"),
                    r#"{"action":"sleep","ms":300}"#.to_owned(),
                )
            })
            .collect();
        let (port, ledger, done) = serve(events);
        let mut env = vec![("AWS_LAMBDA_MAX_CONCURRENCY", "4")];
        env.extend_from_slice(flavour);
        assert!(run(port, &env, done), "{flavour:?}: not all answered");
        let ledger = ledger.lock().unwrap();
        let spans: Vec<(u64, u64)> = ledger
            .answers
            .values()
            .map(|a| {
                (
                    a["started_ms"].as_u64().unwrap(),
                    a["ended_ms"].as_u64().unwrap(),
                )
            })
            .collect();
        let last_start = spans.iter().map(|s| s.0).max().unwrap();
        let first_end = spans.iter().map(|s| s.1).min().unwrap();
        assert!(
            last_start < first_end,
            "{flavour:?}: the invocations ran one after another: {spans:?}"
        );
        let connections: std::collections::HashSet<_> = ledger.sent_on.values().collect();
        assert_eq!(connections.len(), 4, "{flavour:?}: one connection per loop");
    }
}

/// 1,000 invocations of mixed length through 8 loops: each answer goes to its own request
/// id, on the connection its event came on, and carries that invocation's own result.
#[test]
fn request_ids_never_cross_under_a_thousand_mixed_invocations() {
    let events = (0..1000)
        .map(|n| {
            let id = format!("req-{n:04}");
            let body = if n % 3 == 0 {
                format!(r#"{{"action":"sleep","ms":{}}}"#, n % 7)
            } else {
                format!(r#"{{"action":"echo","value":"{id}"}}"#)
            };
            (id, body)
        })
        .collect();
    let (port, ledger, done) = serve(events);
    assert!(
        run(port, &[("AWS_LAMBDA_MAX_CONCURRENCY", "8")], done),
        "not all answered"
    );
    let ledger = ledger.lock().unwrap();
    assert_eq!(ledger.answers.len(), 1000);
    for (id, answer) in &ledger.answers {
        let own = answer["echo"].as_str().or(answer["request_id"].as_str());
        assert_eq!(own, Some(id.as_str()), "{id} got {answer}");
        assert_eq!(ledger.sent_on[id], ledger.answered_on[id], "{id}");
    }
}

/// One loop's `/next` refused 403 ends the whole process, once, non-zero; a panic in
/// another invocation before that touched only its own invocation. Through `run`, and
/// through `run_local` with a handler that is not `Send`.
#[test]
fn a_fatal_answer_to_one_loop_stops_every_loop_and_exits_non_zero_once() {
    for flavour in [&[][..], &[("LOCAL", "1")]] {
        fatal_answer_stops_every_loop(flavour);
    }
}

fn fatal_answer_stops_every_loop(flavour: &[(&str, &str)]) {
    let polls = Arc::new(Mutex::new(0usize));
    let count = polls.clone();
    let errors = Arc::new(Mutex::new(Vec::new()));
    let posted = errors.clone();
    let posted_so_far = errors.clone();
    let port = scripted_api(move |req| {
        if !req.is_next() {
            posted.lock().unwrap().push(req.path().to_owned());
            return Act::Reply(ACCEPTED.to_vec());
        }
        let mut polls = count.lock().unwrap();
        *polls += 1;
        match *polls {
            1 => Act::Reply(event_with(
                "boom",
                r#"{"action":"panic","message":"only me"}"#,
            )),
            2 => Act::Reply(event_with("fine", r#"{"action":"echo","value":"fine"}"#)),
            // Once both were answered, the environment is gone: refuse. (Each connection
            // posts its answer before its next poll, so the loop that answered last is
            // the one refused.)
            _ if posted_so_far.lock().unwrap().len() == 2 => Act::Reply(reply(
                "403 Forbidden",
                &[],
                r#"{"errorType":"InvalidStateTransition","errorMessage":"gone"}"#,
            )),
            _ => Act::Hold,
        }
    });
    let out = wait_for_exit(start_function(
        "test-function",
        &format!("127.0.0.1:{port}"),
        &[&[("AWS_LAMBDA_MAX_CONCURRENCY", "4")], flavour].concat(),
    ));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{flavour:?}: {stderr}");
    let fatal = stderr.lines().filter(|l| l.starts_with("Error: ")).count();
    assert_eq!(fatal, 1, "{stderr}");
    let posted = errors.lock().unwrap();
    assert!(
        posted.contains(&"/2018-06-01/runtime/invocation/boom/error".to_owned()),
        "{posted:?}"
    );
    assert!(
        posted.contains(&"/2018-06-01/runtime/invocation/fine/response".to_owned()),
        "{posted:?}"
    );
}

/// With several loops the process variable would have to hold several traces: it is never
/// set, and each invocation reads its own trace from its context.
#[test]
fn with_several_loops_the_trace_is_in_the_context_and_the_variable_is_never_set() {
    let traced = |id: &str, trace: &str| {
        reply(
            "200 OK",
            &[
                ("Lambda-Runtime-Aws-Request-Id", id),
                ("Lambda-Runtime-Trace-Id", trace),
            ],
            r#"{"action":"context"}"#,
        )
    };
    let mut events = vec![
        traced("t-1", "Root=1-00000000-000000000000000000000001"),
        traced("t-2", "Root=1-00000000-000000000000000000000002"),
    ]
    .into_iter();
    let answers = Arc::new(Mutex::new(HashMap::new()));
    let book = answers.clone();
    let (tx, done) = mpsc::channel();
    let port = scripted_api(move |req| {
        if req.is_next() {
            return events.next().map_or(Act::Hold, Act::Reply);
        }
        let mut book = book.lock().unwrap();
        let answer: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        book.insert(
            answer["request_id"].as_str().unwrap_or_default().to_owned(),
            answer,
        );
        if book.len() == 2 {
            let _ = tx.send(());
        }
        Act::Reply(ACCEPTED.to_vec())
    });
    assert!(run(port, &[("AWS_LAMBDA_MAX_CONCURRENCY", "2")], done));
    let answers = answers.lock().unwrap();
    for n in 1..=2 {
        let answer = &answers[&format!("t-{n}")];
        assert_eq!(
            answer["trace_id"],
            format!("Root=1-00000000-00000000000000000000000{n}")
        );
        assert_eq!(answer["trace_env"], Value::Null, "{answer}");
    }
}

// ----- through the emulator -------------------------------------------------------------

use ironlambda_emulator::{invoke_request, send};
use ironlambda_integration_tests::{emulator, invoke_in_background};

/// `n` concurrent invokes of `payload` against `emu`, answered.
async fn concurrently(
    emu: &ironlambda_emulator::Emulator,
    payloads: Vec<String>,
) -> Vec<ironlambda_emulator::InvokeResponse> {
    let calls: Vec<_> = payloads
        .into_iter()
        .map(|p| invoke_in_background(emu, p))
        .collect();
    let mut answers = Vec::new();
    for call in calls {
        answers.push(call.await.expect("the invoke task ends"));
    }
    answers
}

/// `--max-concurrency 4`: four invokes run at once in one process, by the function's own
/// clock.
#[tokio::test]
async fn the_emulator_runs_max_concurrency_invocations_at_once_in_one_environment() {
    let emu = emulator("test-function")
        .max_concurrency(4)
        .start()
        .await
        .unwrap();
    let answers = concurrently(&emu, vec![r#"{"action":"sleep","ms":300}"#.to_owned(); 4]).await;
    let spans: Vec<(u64, u64, u64)> = answers
        .iter()
        .map(|r| {
            let a = r.json().unwrap();
            assert_eq!(a["request_id"], r.request_id().unwrap(), "{a}");
            (
                a["started_ms"].as_u64().unwrap(),
                a["ended_ms"].as_u64().unwrap(),
                a["pid"].as_u64().unwrap(),
            )
        })
        .collect();
    let last_start = spans.iter().map(|s| s.0).max().unwrap();
    let first_end = spans.iter().map(|s| s.1).min().unwrap();
    assert!(
        last_start < first_end,
        "they ran one after another: {spans:?}"
    );
    assert!(
        spans.iter().all(|s| s.2 == spans[0].2),
        "one process: {spans:?}"
    );
    assert_eq!(ironlambda_integration_tests::init_count(&emu), 1);
    emu.shutdown().await;
}

/// 1,000 invokes from 16 callers at once through `--max-concurrency 8`: each caller gets
/// its own invocation's answer, under the request id its answer names.
#[tokio::test]
async fn request_ids_never_cross_through_the_emulator_under_a_thousand_concurrent_invokes() {
    let emu = emulator("test-function")
        .max_concurrency(8)
        .start()
        .await
        .unwrap();
    let addr = emu.addr();
    let callers: Vec<_> = (0..16)
        .map(|caller| {
            tokio::spawn(async move {
                for n in 0..1000 / 16 + 1 {
                    let token = format!("c{caller}-n{n}");
                    let payload = if n % 4 == 0 {
                        format!(r#"{{"action":"sleep","ms":{}}}"#, n % 5)
                    } else {
                        format!(r#"{{"action":"echo","value":"{token}"}}"#)
                    };
                    let r = send(addr, invoke_request(addr, "test-function", payload))
                        .await
                        .unwrap();
                    let answer = r.json().unwrap();
                    match answer.get("echo") {
                        Some(echo) => assert_eq!(echo, token.as_str()),
                        None => assert_eq!(answer["request_id"], r.request_id().unwrap()),
                    }
                }
            })
        })
        .collect();
    for caller in callers {
        caller.await.expect("a caller saw a crossed answer");
    }
    emu.shutdown().await;
}

/// Past the queue, callers get Lambda's throttling answer.
#[tokio::test]
async fn invokes_beyond_the_queue_are_throttled_429() {
    let emu = emulator("test-function")
        .queue_limit(2)
        .start()
        .await
        .unwrap();
    let busy = invoke_in_background(&emu, r#"{"action":"sleep","ms":2000}"#);
    emu.logs()
        .wait_for(PATIENCE, |l| l.starts_with("START RequestId"))
        .await
        .expect("the first invoke runs");
    // Three more while the first runs: two fit the queue of two, one is refused.
    let more: Vec<_> = (0..3)
        .map(|_| invoke_in_background(&emu, r#"{"action":"echo","value":1}"#))
        .collect();
    let mut statuses = Vec::new();
    for call in more {
        let r = call.await.unwrap();
        if r.status == http::StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(r.headers["x-amzn-errortype"], "TooManyRequestsException");
        } else {
            assert_eq!(r.json().unwrap()["echo"], 1);
        }
        statuses.push(r.status.as_u16());
    }
    statuses.sort();
    assert_eq!(statuses, [200, 200, 429]);
    assert_eq!(busy.await.unwrap().json().unwrap()["slept_ms"], 2000);
    emu.shutdown().await;
}

/// `--environments 3`: three concurrent invokes scale out to three processes, each
/// environment's lines are tagged, and shutting down ends every one of them.
#[tokio::test]
async fn the_emulator_scales_out_to_several_environments_and_shuts_them_all_down() {
    let emu = emulator("test-function")
        .environments(3)
        .start()
        .await
        .unwrap();
    let answers = concurrently(&emu, vec![r#"{"action":"sleep","ms":500}"#.to_owned(); 3]).await;
    let pids: std::collections::HashSet<u64> = answers
        .iter()
        .map(|r| r.json().unwrap()["pid"].as_u64().unwrap())
        .collect();
    assert_eq!(pids.len(), 3, "{pids:?}");
    let lines = emu.logs().lines();
    for n in 1..=3 {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("[env {n}] REPORT RequestId"))),
            "{lines:#?}"
        );
    }
    emu.shutdown().await;
    for pid in pids {
        let alive = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            !s.rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
        });
        assert!(!alive, "environment process {pid} outlived the shutdown");
    }
}

/// The shared-client example: four invocations at once in one environment, one client.
#[tokio::test]
async fn the_shared_client_example_serves_concurrent_invocations_with_one_client() {
    let emu = emulator("shared-client")
        .max_concurrency(4)
        .start()
        .await
        .unwrap();
    let answers = concurrently(&emu, vec![r#"{"wait_ms":300}"#.to_owned(); 4]).await;
    let mut peak = 0;
    for r in &answers {
        let a = r.json().unwrap_or_else(|e| panic!("{e}: {}", r.text()));
        assert_eq!(a["status"], 200, "{a}");
        assert!(a["body"].as_str().unwrap().contains("pong"), "{a}");
        peak = peak.max(a["peak"].as_u64().unwrap());
    }
    assert_eq!(peak, 4, "the four invocations did not overlap");
    emu.shutdown().await;
}
