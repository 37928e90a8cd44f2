//! The emulator's listener under hostile or broken clients: oversized bodies are refused
//! before they are read, stalled heads and bodies do not hold connections forever, and
//! running out of descriptors does not make it spin.

use std::time::Duration;

use ironlambda_integration_tests::{PATIENCE, binary, cpu_seconds, emulator, start_cli_with};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads what the server sends until it closes the connection (or `PATIENCE` runs out).
async fn read_until_close(sock: &mut TcpStream) -> String {
    let mut all = Vec::new();
    let read = async {
        let mut chunk = [0u8; 4096];
        loop {
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => all.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout(PATIENCE, read)
        .await
        .expect("the server closed the connection in time");
    String::from_utf8_lossy(&all).into_owned()
}

#[tokio::test]
async fn an_oversized_invoke_is_refused_from_its_content_length_before_any_body() {
    let emu = emulator("hello").start().await.unwrap();
    let mut sock = TcpStream::connect(emu.addr()).await.unwrap();
    sock.write_all(
        b"POST /2015-03-31/functions/hello/invocations HTTP/1.1\r\nhost: x\r\ncontent-length: 100000000\r\n\r\n{",
    )
    .await
    .unwrap();
    // Not one more byte of the 100 MB is sent: the answer must come anyway.
    let mut head = vec![0u8; 1024];
    let n = tokio::time::timeout(PATIENCE, sock.read(&mut head))
        .await
        .expect("the 413 came without the body")
        .unwrap();
    let head = String::from_utf8_lossy(&head[..n]);
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(
        head.contains("100000000 byte payload is too large"),
        "{head}"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn a_half_sent_head_is_closed_after_the_head_timeout() {
    let emu = emulator("hello").start().await.unwrap();
    let mut sock = TcpStream::connect(emu.addr()).await.unwrap();
    sock.write_all(b"POST /2015-03-31/functions/hello/invocations HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let answer = read_until_close(&mut sock).await;
    assert!(!answer.contains("200 OK"), "{answer}");
    emu.shutdown().await;
}

#[tokio::test]
async fn a_stalled_body_fails_its_request_instead_of_holding_it_forever() {
    let emu = emulator("hello").start().await.unwrap();
    let mut sock = TcpStream::connect(emu.addr()).await.unwrap();
    sock.write_all(
        b"POST /2015-03-31/functions/hello/invocations HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{\"name\":",
    )
    .await
    .unwrap();
    let mut head = vec![0u8; 1024];
    let n = tokio::time::timeout(PATIENCE, sock.read(&mut head))
        .await
        .expect("an answer came for the stalled body")
        .unwrap();
    let head = String::from_utf8_lossy(&head[..n]);
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    assert!(head.contains("ended early"), "{head}");
    emu.shutdown().await;
}

/// With its descriptors used up by idle clients, the emulator waits for room instead of
/// retrying `accept` in a tight loop: it stays nearly idle.
#[tokio::test]
async fn running_out_of_descriptors_does_not_spin_the_accept_loop() {
    let function = binary("hello");
    let cli = start_cli_with(&["--function".as_ref(), function.as_os_str()], |cmd| {
        // SAFETY: setrlimit is async-signal-safe, and the closure touches nothing else.
        unsafe {
            cmd.pre_exec(|| {
                let limit = libc::rlimit {
                    rlim_cur: 32,
                    rlim_max: 32,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..64 {
        idle.push(TcpStream::connect(cli.addr).await.unwrap());
    }
    // Let it reach the limit, then measure one second.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pid = cli.child.id().unwrap();
    let before = cpu_seconds(pid);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let used = cpu_seconds(pid) - before;
    assert!(
        used < 0.3,
        "the emulator used {used:.2} s of CPU in 1 s while out of descriptors"
    );
    drop(idle);
}
