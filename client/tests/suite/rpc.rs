//! Remote procedure calls.

use deepstream_client::core::RpcError;

use crate::common::*;
use crate::targets;

targets!(make_gets_provider_result, |target| async move {
    let server = TestServer::start(target, Auth::Open).await;
    let provider = server.login("provider").await;
    let caller = server.login("caller").await;
    let mut add = within(provider.rpc().provide("add")).await.unwrap();
    tokio::time::sleep(QUIET).await;

    let serve = tokio::spawn(async move {
        let request = within(add.next()).await.expect("provider ended");
        assert_eq!(request.name(), "add");
        let numbers: Vec<i64> = serde_json::from_str(request.data().unwrap()).unwrap();
        let sum: i64 = numbers.iter().sum();
        request.send(&sum.to_string()).await.unwrap();
        add
    });
    assert_eq!(
        within(caller.rpc().make("add", "[1,2,3]")).await.unwrap(),
        "6"
    );
    serve.await.unwrap();
});

targets!(provider_error_reaches_caller, |target| async move {
    let server = TestServer::start(target, Auth::Open).await;
    let provider = server.login("provider").await;
    let caller = server.login("caller").await;
    let mut failing = within(provider.rpc().provide("fail")).await.unwrap();
    tokio::time::sleep(QUIET).await;

    let serve = tokio::spawn(async move {
        let request = within(failing.next()).await.expect("provider ended");
        request.error("out of order");
        failing
    });
    assert_eq!(
        within(caller.rpc().make("fail", "null")).await,
        Err(RpcError::Provider {
            message: r#""out of order""#.to_owned()
        })
    );
    serve.await.unwrap();
});

targets!(no_provider_is_error, |target| async move {
    let server = TestServer::start(target, Auth::Open).await;
    let caller = server.login("caller").await;
    assert_eq!(
        within(caller.rpc().make("nobody", "1")).await,
        Err(RpcError::NoProvider)
    );
});

targets!(
    rejected_request_goes_to_other_provider,
    |target| async move {
        let server = TestServer::start(target, Auth::Open).await;
        let first = server.login("first").await;
        let second = server.login("second").await;
        let caller = server.login("caller").await;
        let mut first_provider = within(first.rpc().provide("work")).await.unwrap();
        let mut second_provider = within(second.rpc().provide("work")).await.unwrap();
        tokio::time::sleep(QUIET).await;

        // Whichever provider the server picks first rejects; the other answers.
        let serve = tokio::spawn(async move {
            let mut rejected = false;
            loop {
                let (request, who) = tokio::select! {
                    request = first_provider.next() => (request, "first"),
                    request = second_provider.next() => (request, "second"),
                };
                let request = request.expect("provider ended");
                if rejected {
                    request.send(&format!("\"{who}\"")).await.unwrap();
                    return (first_provider, second_provider);
                }
                rejected = true;
                request.reject();
            }
        });
        let answer = within(caller.rpc().make("work", "{}")).await.unwrap();
        assert!(
            answer == r#""first""# || answer == r#""second""#,
            "{answer}"
        );
        within(serve).await.unwrap();
    }
);

targets!(dropped_provider_unprovides, |target| async move {
    let server = TestServer::start(target, Auth::Open).await;
    let provider = server.login("provider").await;
    let caller = server.login("caller").await;
    let handle = within(provider.rpc().provide("gone")).await.unwrap();
    tokio::time::sleep(QUIET).await;
    drop(handle);
    tokio::time::sleep(QUIET).await;
    assert_eq!(
        within(caller.rpc().make("gone", "1")).await,
        Err(RpcError::NoProvider)
    );
});

targets!(rpc_bad_input_is_refused, |target| async move {
    let server = TestServer::start(target, Auth::Open).await;
    let client = server.login("caller").await;
    assert_eq!(
        within(client.rpc().make("", "1")).await,
        Err(RpcError::EmptyName)
    );
    assert!(matches!(
        within(client.rpc().make("f", "{")).await,
        Err(RpcError::InvalidJson { .. })
    ));
    let _provider = within(client.rpc().provide("f")).await.unwrap();
    assert!(matches!(
        within(client.rpc().provide("f")).await,
        Err(RpcError::AlreadyProvided { .. })
    ));
});

targets!(invalid_response_rejects_request, |target| async move {
    let server = TestServer::start(target, Auth::Open).await;
    let provider_client = server.login("provider").await;
    let caller = server.login("caller").await;
    let mut provider = within(provider_client.rpc().provide("f")).await.unwrap();
    tokio::time::sleep(QUIET).await;

    let call = tokio::spawn(async move { caller.rpc().make("f", "1").await });
    let request = within(provider.next()).await.expect("provider ended");
    assert!(matches!(
        within(request.send("{not json")).await,
        Err(RpcError::InvalidJson { .. })
    ));
    let result = within(call).await.expect("the task panicked");
    assert!(result.is_err(), "{result:?}");
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_provide_ends_once() {
    run(Target::Rust, |_| async {
        let server = TestServer::start_rust_with_rules(SUBSCRIBE_RULES).await;
        let (client, mut errors) = login_with_short_ack_timeout(&server, "alice").await;

        let mut provider = within(client.rpc().provide("secret/f")).await.unwrap();
        assert!(
            within(provider.next()).await.is_none(),
            "the denied provider did not end"
        );
        expect_denial(&mut errors, "secret/f", "PROVIDE").await;
        assert!(
            maybe(errors.recv()).await.is_none(),
            "an acknowledgement timeout followed the denial"
        );
    })
    .await;
}
