//! The chat example, run as a program against each server.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};

use crate::common::*;
use crate::targets;

/// Returns the example binary that `cargo test` builds next to the test binaries.
fn chat_binary() -> PathBuf {
    let test_binary = std::env::current_exe().expect("the test binary's path");
    let profile_dir = test_binary
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test binaries live in <target>/<profile>/deps");
    profile_dir.join("examples").join("chat")
}

fn start_chat(url: &str, user: &str) -> Child {
    Command::new(chat_binary())
        .args([url, user])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("starting the chat example failed")
}

async fn output_of(child: Child) -> String {
    let output = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("the chat example did not end")
        .expect("waiting for the chat example failed");
    assert!(
        output.status.success(),
        "chat failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

targets!(chat_example_talks, |target| async move {
    assert!(
        chat_binary().exists(),
        "{} is missing: `cargo test` builds the examples unless a filter excludes them",
        chat_binary().display()
    );
    let server = TestServer::start(target, Auth::Open).await;
    let url = server.url();

    let mut bob = start_chat(&url, "bob");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut alice = start_chat(&url, "alice");
    let mut alice_input = alice.stdin.take().expect("piped stdin");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    alice_input.write_all(b"hello bob\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    alice_input.write_all(b"second line\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(alice_input);
    let alice_output = output_of(alice).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(bob.stdin.take());
    let bob_output = output_of(bob).await;

    let mut carol = start_chat(&url, "carol");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    drop(carol.stdin.take());
    let carol_output = output_of(carol).await;

    assert!(alice_output.contains("online: bob"), "{alice_output}");
    for line in [
        "* alice joined",
        "alice: hello bob",
        "alice: second line",
        "* alice left",
    ] {
        assert!(
            bob_output.contains(line),
            "bob missed {line:?}:\n{bob_output}"
        );
    }
    assert!(
        carol_output.contains("(earlier) alice: hello bob\n  (earlier) alice: second line"),
        "{carol_output}"
    );
});
