//! Deterministic tests of the session against a simulated server: the tests
//! build the server's frames with `deepstream_protocol` and move a clock by hand.

use std::time::Duration;

use bytes::Bytes;
use deepstream_protocol::*;

use super::*;

mod record;

const URL: &str = "ws://127.0.0.1:6020/deepstream";

/// A session, the simulated clock, and helpers that act as the server.
struct Harness {
    session: Session,
    now: u64,
}

impl Harness {
    /// Creates a session whose first socket is open and whose CHALLENGE was taken.
    fn connected(options: Options) -> Harness {
        let mut session = Session::new(URL, options, 0xabc).unwrap();
        assert_eq!(
            session.poll_socket(),
            Some(SocketCommand::Open {
                url: URL.to_owned()
            })
        );
        session.connected(Timestamp::from_millis(0));
        let mut harness = Harness { session, now: 0 };
        let sent = harness.sent();
        assert!(
            matches!(&sent[..], [TopicMessage::Connection(m)] if m.action == ConnectionAction::Challenge as i32),
            "{sent:?}"
        );
        harness
    }

    /// Creates a session that is logged in, with every output drained.
    fn logged_in(options: Options) -> Harness {
        let mut harness = Harness::connected(options);
        harness.accept_challenge();
        harness.session.login("{}", harness.time()).unwrap();
        harness.expect_auth_request();
        harness.receive(auth(AuthAction::AuthSuccessful, None));
        assert_eq!(harness.session.state(), ConnectionState::Open);
        harness.drain();
        harness
    }

    fn time(&self) -> Timestamp {
        Timestamp::from_millis(self.now)
    }

    #[allow(clippy::needless_pass_by_value, reason = "tests build messages inline")]
    fn receive(&mut self, message: TopicMessage) {
        self.session
            .handle_frame(message.encode_frame(), self.time());
    }

    fn accept_challenge(&mut self) {
        self.receive(TopicMessage::Connection(ConnectionMessage {
            action: ConnectionAction::Accept.into(),
            ..Default::default()
        }));
    }

    fn expect_auth_request(&mut self) {
        let sent = self.sent();
        assert!(
            matches!(&sent[..], [TopicMessage::Auth(m)] if m.action == AuthAction::Request as i32),
            "{sent:?}"
        );
    }

    /// Moves the clock forward and fires due timers.
    fn advance(&mut self, millis: u64) {
        self.now += millis;
        self.session.handle_timeout(self.time());
    }

    /// Decodes and returns every frame the session wants to send.
    fn sent(&mut self) -> Vec<TopicMessage> {
        let mut messages = Vec::new();
        while let Some(frame) = self.session.poll_transmit() {
            messages.push(TopicMessage::decode_frame(frame).unwrap());
        }
        messages
    }

    fn events(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        while let Some(event) = self.session.poll_event() {
            events.push(event);
        }
        events
    }

    fn sockets(&mut self) -> Vec<SocketCommand> {
        let mut commands = Vec::new();
        while let Some(command) = self.session.poll_socket() {
            commands.push(command);
        }
        commands
    }

    fn drain(&mut self) {
        self.sent();
        self.events();
        self.sockets();
    }

    fn errors(&mut self) -> Vec<SessionError> {
        self.events()
            .into_iter()
            .filter_map(|event| match event {
                Event::Error(error) => Some(error),
                _ => None,
            })
            .collect()
    }

    /// Loses the socket and brings the session back to logged in, the way a
    /// server that accepts the stored login does.
    fn reconnect(&mut self) {
        self.session.connection_lost(self.time());
        self.advance(0);
        assert_eq!(
            self.sockets(),
            vec![SocketCommand::Open {
                url: URL.to_owned()
            }]
        );
        self.session.connected(self.time());
        self.sent();
        self.accept_challenge();
        self.expect_auth_request();
        self.receive(auth(AuthAction::AuthSuccessful, None));
        assert_eq!(self.session.state(), ConnectionState::Open);
    }
}

fn auth(action: AuthAction, data: Option<&str>) -> TopicMessage {
    TopicMessage::Auth(AuthMessage {
        action: action.into(),
        data: data.map_or_else(Bytes::new, |d| Bytes::copy_from_slice(d.as_bytes())),
        ..Default::default()
    })
}

fn options() -> Options {
    Options::default()
}

fn quick_options() -> Options {
    Options {
        subscription_interval: Duration::ZERO,
        ..Options::default()
    }
}

fn event_message(action: EventAction) -> EventMessage {
    EventMessage {
        action: action.into(),
        ..Default::default()
    }
}

fn rpc_message(action: RpcAction, name: &str, correlation_id: &str) -> RpcMessage {
    RpcMessage {
        action: action.into(),
        name: name.to_owned(),
        correlation_id: correlation_id.to_owned(),
        ..Default::default()
    }
}

// Connection

#[test]
fn challenge_names_url_and_sdk() {
    let mut session = Session::new("127.0.0.1:6020", options(), 1).unwrap();
    session.poll_socket();
    session.connected(Timestamp::from_millis(0));
    let frame = session.poll_transmit().unwrap();
    let TopicMessage::Connection(challenge) = TopicMessage::decode_frame(frame).unwrap() else {
        panic!("expected a connection message");
    };
    assert_eq!(challenge.action, ConnectionAction::Challenge as i32);
    assert_eq!(challenge.url, URL);
    assert_eq!(challenge.protocol_version, "0.1a");
    assert_eq!(challenge.sdk_type, "rust");
    assert_eq!(session.state(), ConnectionState::Challenging);
}

#[test]
fn invalid_url_is_rejected() {
    let error = Session::new("http://127.0.0.1:6020", options(), 1).unwrap_err();
    assert!(error.to_string().contains("ws and wss"), "{error}");
}

#[test]
fn login_succeeds_with_client_data() {
    let mut harness = Harness::connected(options());
    harness.accept_challenge();
    assert_eq!(
        harness.session.state(),
        ConnectionState::AwaitingAuthentication
    );
    harness
        .session
        .login(r#"{"username":"ada"}"#, harness.time())
        .unwrap();
    let sent = harness.sent();
    let [TopicMessage::Auth(request)] = &sent[..] else {
        panic!("expected one auth request: {sent:?}");
    };
    assert_eq!(&request.data[..], br#"{"username":"ada"}"#);
    assert_eq!(harness.session.state(), ConnectionState::Authenticating);

    harness.receive(auth(
        AuthAction::AuthSuccessful,
        Some(r#"{"role":"admin"}"#),
    ));
    let events = harness.events();
    assert!(events.contains(&Event::LoggedIn {
        client_data: Some(r#"{"role":"admin"}"#.to_owned())
    }));
    assert!(events.contains(&Event::ConnectionStateChanged(ConnectionState::Open)));
}

#[test]
fn login_without_answer_times_out_once() {
    let mut harness = Harness::connected(Options {
        login_timeout: Duration::from_secs(5),
        heartbeat_interval: Duration::from_secs(60),
        ..options()
    });
    harness.session.login("{}", harness.time()).unwrap();
    harness.advance(4_999);
    let early = harness.events();
    assert!(
        !early
            .iter()
            .any(|event| matches!(event, Event::LoginFailed(_))),
        "login failed early: {early:?}"
    );

    harness.advance(1);
    let events = harness.events();
    let failures = events
        .iter()
        .filter(|event| **event == Event::LoginFailed(LoginError::TimedOut))
        .count();
    assert_eq!(failures, 1, "{events:?}");

    harness.advance(60_000);
    let later = harness.events();
    assert!(
        !later
            .iter()
            .any(|event| matches!(event, Event::LoginFailed(_))),
        "a second login result: {later:?}"
    );
}

#[test]
fn zero_heartbeat_interval_does_not_spin() {
    let mut harness = Harness::connected(Options {
        heartbeat_interval: Duration::ZERO,
        ..options()
    });
    harness.accept_challenge();
    harness.sent();
    harness.advance(0);
    assert!(harness.sent().is_empty(), "a PING was due at once");
    let deadline = harness
        .session
        .poll_timeout()
        .expect("a heartbeat is scheduled");
    assert!(deadline > harness.time(), "the next deadline is now");
}

#[test]
fn login_answer_cancels_the_timeout() {
    let mut harness = Harness::connected(Options {
        login_timeout: Duration::from_secs(5),
        ..options()
    });
    harness.accept_challenge();
    harness.session.login("{}", harness.time()).unwrap();
    harness.sent();
    harness.receive(auth(AuthAction::AuthSuccessful, None));
    harness.advance(10_000);
    let events = harness.events();
    assert!(
        !events
            .iter()
            .any(|event| matches!(event, Event::LoginFailed(_))),
        "{events:?}"
    );
}

#[test]
fn login_before_accept_waits_for_it() {
    let mut harness = Harness::connected(options());
    harness.session.login("{}", harness.time()).unwrap();
    assert!(harness.sent().is_empty(), "login sent before ACCEPT");
    harness.accept_challenge();
    harness.expect_auth_request();
}

#[test]
fn login_rejected_then_retried() {
    let mut harness = Harness::connected(options());
    harness.accept_challenge();
    harness
        .session
        .login(r#"{"password":"x"}"#, harness.time())
        .unwrap();
    harness.sent();
    harness.receive(auth(
        AuthAction::AuthUnsuccessful,
        Some(r#"{"reason":"no"}"#),
    ));
    let events = harness.events();
    assert!(
        events.contains(&Event::LoginFailed(LoginError::Rejected {
            client_data: Some(r#"{"reason":"no"}"#.to_owned())
        })),
        "{events:?}"
    );
    assert_eq!(
        harness.session.state(),
        ConnectionState::AwaitingAuthentication
    );

    harness.session.login("{}", harness.time()).unwrap();
    harness.expect_auth_request();
}

#[test]
fn too_many_attempts_closes_for_good() {
    let mut harness = Harness::connected(options());
    harness.accept_challenge();
    harness.session.login("{}", harness.time()).unwrap();
    harness.sent();
    harness.receive(auth(AuthAction::TooManyAuthAttempts, None));
    assert!(
        harness
            .events()
            .contains(&Event::LoginFailed(LoginError::TooManyAttempts))
    );
    assert_eq!(harness.sockets(), vec![SocketCommand::Close]);
    assert_eq!(
        harness.session.state(),
        ConnectionState::TooManyAuthAttempts
    );

    harness.session.connection_lost(harness.time());
    harness.advance(60_000);
    assert!(
        harness.sockets().is_empty(),
        "reconnected after a final state"
    );
    assert_eq!(
        harness.session.login("{}", harness.time()),
        Err(LoginError::TooManyAttempts)
    );
}

#[test]
fn login_data_must_be_an_object() {
    let mut harness = Harness::connected(options());
    for data in ["[]", "not json", "\"ada\"", ""] {
        assert!(
            matches!(
                harness.session.login(data, harness.time()),
                Err(LoginError::InvalidAuthData { .. })
            ),
            "{data:?} was accepted"
        );
    }
}

#[test]
fn login_twice_is_refused() {
    let mut harness = Harness::logged_in(options());
    assert_eq!(
        harness.session.login("{}", harness.time()),
        Err(LoginError::AlreadyLoggedIn)
    );
}

#[test]
fn challenge_reject_ends_login() {
    let mut harness = Harness::connected(options());
    harness.session.login("{}", harness.time()).unwrap();
    harness.receive(TopicMessage::Connection(ConnectionMessage {
        action: ConnectionAction::Reject.into(),
        ..Default::default()
    }));
    assert!(
        harness
            .events()
            .contains(&Event::LoginFailed(LoginError::ConnectionRejected))
    );
    assert_eq!(harness.sockets(), vec![SocketCommand::Close]);
    assert_eq!(harness.session.state(), ConnectionState::ChallengeDenied);
}

#[test]
fn redirect_opens_named_url() {
    let mut harness = Harness::connected(options());
    harness.receive(TopicMessage::Connection(ConnectionMessage {
        action: ConnectionAction::Redirect.into(),
        url: "ws://127.0.0.1:7000/deepstream".to_owned(),
        ..Default::default()
    }));
    assert_eq!(
        harness.sockets(),
        vec![
            SocketCommand::Close,
            SocketCommand::Open {
                url: "ws://127.0.0.1:7000/deepstream".to_owned()
            }
        ]
    );
    assert_eq!(harness.session.state(), ConnectionState::Redirecting);
}

#[test]
fn heartbeat_sends_ping_every_interval() {
    let mut harness = Harness::logged_in(options());
    harness.advance(29_999);
    assert!(harness.sent().is_empty());
    harness.advance(1);
    let sent = harness.sent();
    assert!(
        matches!(&sent[..], [TopicMessage::Connection(m)] if m.action == ConnectionAction::Ping as i32),
        "{sent:?}"
    );
    harness.receive(TopicMessage::Connection(ConnectionMessage {
        action: ConnectionAction::Pong.into(),
        ..Default::default()
    }));
    harness.advance(30_000);
    assert_eq!(harness.sent().len(), 1, "second PING");
    assert!(harness.sockets().is_empty());
}

#[test]
fn heartbeat_silence_reconnects() {
    let mut harness = Harness::logged_in(options());
    harness.advance(30_000);
    harness.advance(30_000);
    assert!(harness.sockets().is_empty(), "two intervals are tolerated");
    harness.advance(30_000);
    let errors = harness.errors();
    assert_eq!(errors, vec![SessionError::HeartbeatTimeout]);
    assert_eq!(
        harness.sockets(),
        vec![
            SocketCommand::Close,
            SocketCommand::Open {
                url: URL.to_owned()
            }
        ],
        "the first reconnection attempt starts at once"
    );
    assert_eq!(harness.session.state(), ConnectionState::Reconnecting);
}

#[test]
fn reconnect_backs_off_then_gives_up() {
    let mut options = options();
    options.reconnect_interval_increment = Duration::from_millis(1000);
    options.max_reconnect_interval = Duration::from_millis(2500);
    options.max_reconnect_attempts = 4;
    let mut harness = Harness::logged_in(options);
    harness.session.connection_lost(harness.time());

    let mut delays = Vec::new();
    let mut last = harness.now;
    for _ in 0..4 {
        // Step the clock until the session requests a socket.
        let mut opened = false;
        for _ in 0..5000 {
            harness.session.handle_timeout(harness.time());
            if !harness.sockets().is_empty() {
                opened = true;
                break;
            }
            harness.now += 1;
        }
        assert!(opened, "no reconnection attempt within 5 s");
        delays.push(harness.now - last);
        last = harness.now;
        harness.session.connection_lost(harness.time());
    }
    assert_eq!(delays, vec![0, 1000, 2000, 2500]);
    harness.advance(10_000);
    let events = harness.events();
    assert!(
        events.contains(&Event::Error(SessionError::MaxReconnectAttemptsReached {
            attempts: 4
        })),
        "{events:?}"
    );
    assert_eq!(harness.session.state(), ConnectionState::Closed);
    assert!(harness.sockets().is_empty());
}

/// Steps the clock by 1 ms until the session requests a socket, and returns the wait.
fn wait_for_open(harness: &mut Harness, limit_millis: u64) -> Option<u64> {
    let start = harness.now;
    while harness.now - start <= limit_millis {
        harness.session.handle_timeout(harness.time());
        if harness
            .sockets()
            .iter()
            .any(|command| matches!(command, SocketCommand::Open { .. }))
        {
            return Some(harness.now - start);
        }
        harness.now += 1;
    }
    None
}

#[test]
fn accept_and_close_peer_backs_off() {
    let mut options = options();
    options.reconnect_interval_increment = Duration::from_millis(1000);
    options.max_reconnect_attempts = 3;
    let mut harness = Harness::logged_in(options);
    harness.session.connection_lost(harness.time());

    let mut delays = Vec::new();
    for _ in 0..3 {
        let delay = wait_for_open(&mut harness, 5000).expect("no reconnection attempt within 5 s");
        delays.push(delay);
        // The socket opens and the peer closes it before saying anything.
        harness.session.connected(harness.time());
        harness.drain();
        harness.session.connection_lost(harness.time());
    }
    assert_eq!(
        delays,
        vec![0, 1000, 2000],
        "opening a socket must not reset the count"
    );
    harness.advance(10_000);
    assert_eq!(harness.session.state(), ConnectionState::Closed);
    assert!(harness.sockets().is_empty());
}

#[test]
fn silent_peer_reaches_max_attempts() {
    let mut options = options();
    options.heartbeat_interval = Duration::from_millis(100);
    options.reconnect_interval_increment = Duration::from_millis(100);
    options.max_reconnect_attempts = 2;
    let mut harness = Harness::connected(options);

    // A peer that accepts sockets and never sends anything: each socket ends
    // after the heartbeat tolerance, and the attempts run out.
    let mut opened = 0;
    for _ in 0..10_000 {
        harness.now += 10;
        harness.session.handle_timeout(harness.time());
        let sockets = harness.sockets();
        if sockets
            .iter()
            .any(|command| matches!(command, SocketCommand::Open { .. }))
        {
            opened += 1;
            harness.session.connected(harness.time());
        }
        harness.sent();
        if harness.session.state().is_final() {
            break;
        }
    }
    assert_eq!(harness.session.state(), ConnectionState::Closed);
    assert_eq!(opened, 2);
}

#[test]
fn silence_before_login_keeps_socket() {
    let mut harness = Harness::connected(options());
    harness.accept_challenge();
    harness.drain();
    harness.advance(30_000);
    harness.advance(30_000);
    harness.advance(30_000);
    assert_eq!(harness.errors(), vec![]);
    assert!(harness.sockets().is_empty(), "the socket was closed");
    assert_eq!(
        harness.session.state(),
        ConnectionState::AwaitingAuthentication
    );
}

#[test]
fn login_resets_reconnect_attempts() {
    let mut options = options();
    options.reconnect_interval_increment = Duration::from_millis(1000);
    let mut harness = Harness::logged_in(options);
    for _ in 0..3 {
        // Each loss is followed by a successful login, so each first retry is immediate.
        harness.session.connection_lost(harness.time());
        assert_eq!(wait_for_open(&mut harness, 5000), Some(0));
        harness.session.connected(harness.time());
        harness.sent();
        harness.accept_challenge();
        harness.expect_auth_request();
        harness.receive(auth(AuthAction::AuthSuccessful, None));
        assert_eq!(harness.session.state(), ConnectionState::Open);
    }
}

#[test]
fn reconnect_logs_in_and_resubscribes_everything() {
    let mut harness = Harness::logged_in(options());
    let now = harness.time();
    harness.session.event_subscribe("chat", now).unwrap();
    harness.session.event_listen("chat/.*", now).unwrap();
    harness.session.rpc_provide("add", now).unwrap();
    harness.session.presence_subscribe_all(now);
    harness.session.presence_subscribe("ada", now).unwrap();
    harness.advance(100);
    assert_eq!(harness.sent().len(), 5);

    harness.reconnect();
    harness.advance(100);
    let sent = harness.sent();
    let mut summary: Vec<String> = sent
        .iter()
        .map(|message| match message {
            TopicMessage::Event(m) => format!("event {} {:?} {}", m.action, m.names, m.name),
            TopicMessage::Rpc(m) => format!("rpc {} {:?}", m.action, m.names),
            TopicMessage::Presence(m) => format!("presence {} {:?}", m.action, m.names),
            other => format!("{other:?}"),
        })
        .collect();
    summary.sort();
    assert_eq!(
        summary,
        vec![
            "event 3 [\"chat\"] ".to_owned(),
            "event 5 [] chat/.*".to_owned(),
            "presence 10 [\"ada\"]".to_owned(),
            "presence 12 []".to_owned(),
            "rpc 8 [\"add\"]".to_owned(),
        ]
    );
}

#[test]
fn subscriptions_before_login_go_out_after_it() {
    let mut harness = Harness::connected(options());
    harness
        .session
        .event_subscribe("early", harness.time())
        .unwrap();
    harness.advance(200);
    assert!(harness.sent().is_empty());
    harness.accept_challenge();
    harness.session.login("{}", harness.time()).unwrap();
    harness.sent();
    harness.receive(auth(AuthAction::AuthSuccessful, None));
    harness.advance(100);
    let sent = harness.sent();
    assert!(
        matches!(&sent[..], [TopicMessage::Event(m)] if m.names == ["early"]),
        "{sent:?}"
    );
}

#[test]
fn undecodable_frame_is_error_event() {
    let mut harness = Harness::logged_in(options());
    for frame in [
        &b""[..],
        &[0x80, 0x80][..],
        &[5, 1, 2][..],
        &[2, 0x10, 0x2a][..],
    ] {
        harness
            .session
            .handle_frame(Bytes::copy_from_slice(frame), harness.time());
        let errors = harness.errors();
        assert!(
            matches!(&errors[..], [SessionError::InvalidFrame(_)]),
            "{frame:?}: {errors:?}"
        );
    }
    assert_eq!(harness.session.state(), ConnectionState::Open);
}

#[test]
fn parser_message_is_error_event() {
    let mut harness = Harness::logged_in(options());
    harness.receive(TopicMessage::Parser(ParserMessage {
        action: ParserAction::MessageParseError.into(),
        data: Bytes::from_static(b"bad frame"),
        ..Default::default()
    }));
    assert_eq!(
        harness.errors(),
        vec![SessionError::Parser {
            action: "MESSAGE_PARSE_ERROR".to_owned(),
            description: Some("bad frame".to_owned())
        }]
    );
}

// Bulk subscriptions

#[test]
fn bulk_collects_one_interval() {
    let mut harness = Harness::logged_in(options());
    let now = harness.time();
    for name in ["a", "b", "c"] {
        harness.session.event_subscribe(name, now).unwrap();
    }
    harness.advance(99);
    assert!(harness.sent().is_empty(), "sent before the interval ended");
    harness.advance(1);
    let sent = harness.sent();
    let [TopicMessage::Event(message)] = &sent[..] else {
        panic!("expected one bulk message: {sent:?}");
    };
    assert_eq!(message.action, EventAction::Subscribe as i32);
    assert_eq!(message.names, ["a", "b", "c"]);
    assert_eq!(message.correlation_id, "0");

    harness
        .session
        .event_subscribe("d", harness.time())
        .unwrap();
    harness.advance(100);
    let sent = harness.sent();
    assert!(
        matches!(&sent[..], [TopicMessage::Event(m)] if m.correlation_id == "1"),
        "{sent:?}"
    );
}

#[test]
fn bulk_subscribe_then_unsubscribe_cancel() {
    let mut harness = Harness::logged_in(options());
    let id = harness
        .session
        .event_subscribe("a", harness.time())
        .unwrap();
    harness
        .session
        .event_unsubscribe(id, harness.time())
        .unwrap();
    harness.advance(200);
    assert!(harness.sent().is_empty());
}

#[test]
fn bulk_correlation_restarts_after_reconnect() {
    let mut harness = Harness::logged_in(options());
    harness
        .session
        .event_subscribe("a", harness.time())
        .unwrap();
    harness.session.rpc_provide("p", harness.time()).unwrap();
    harness.advance(100);
    harness.sent();
    harness.reconnect();
    harness.advance(100);
    for message in harness.sent() {
        match message {
            TopicMessage::Event(m) => assert_eq!(m.correlation_id, "0"),
            TopicMessage::Rpc(m) => assert_eq!(m.correlation_id, "0"),
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn ack_timeout_fires_once() {
    let mut harness = Harness::logged_in(quick_options());
    harness
        .session
        .event_subscribe("a", harness.time())
        .unwrap();
    harness.sent();
    harness.advance(1999);
    assert!(harness.errors().is_empty());
    harness.advance(1);
    assert_eq!(
        harness.errors(),
        vec![SessionError::AckTimeout {
            topic: Topic::Event,
            action: "SUBSCRIBE".to_owned(),
            key: "0".to_owned()
        }]
    );
    harness.advance(10_000);
    assert!(harness.errors().is_empty());
}

#[test]
fn ack_stops_timeout() {
    let mut harness = Harness::logged_in(quick_options());
    harness
        .session
        .event_subscribe("a", harness.time())
        .unwrap();
    harness.sent();
    harness.receive(TopicMessage::Event(EventMessage {
        correlation_id: "0".to_owned(),
        is_ack: true,
        ..event_message(EventAction::Subscribe)
    }));
    harness.advance(5000);
    let events = harness.events();
    assert!(
        !events.iter().any(|event| matches!(event, Event::Error(_))),
        "{events:?}"
    );
}

// Events

#[test]
fn event_emit_reaches_local_and_remote() {
    let mut harness = Harness::logged_in(quick_options());
    let id = harness
        .session
        .event_subscribe("chat", harness.time())
        .unwrap();
    harness.sent();
    harness
        .session
        .event_emit("chat", Some(r#""hi""#), harness.time())
        .unwrap();
    let sent = harness.sent();
    assert!(
        matches!(&sent[..], [TopicMessage::Event(m)] if m.action == EventAction::Emit as i32 && &m.data[..] == br#""hi""#),
        "{sent:?}"
    );
    assert_eq!(
        harness.events(),
        vec![Event::EventReceived {
            subscription: id,
            name: "chat".to_owned(),
            data: Some(r#""hi""#.to_owned())
        }]
    );

    harness.receive(TopicMessage::Event(EventMessage {
        name: "chat".to_owned(),
        ..event_message(EventAction::Emit)
    }));
    assert_eq!(
        harness.events(),
        vec![Event::EventReceived {
            subscription: id,
            name: "chat".to_owned(),
            data: None
        }]
    );
}

#[test]
fn event_bad_input_is_refused() {
    let mut harness = Harness::logged_in(quick_options());
    let now = harness.time();
    assert_eq!(
        harness.session.event_subscribe("", now),
        Err(EventError::EmptyName)
    );
    assert_eq!(
        harness.session.event_emit("", None, now),
        Err(EventError::EmptyName)
    );
    assert!(matches!(
        harness.session.event_emit("a", Some("{oops"), now),
        Err(EventError::InvalidJson { .. })
    ));
    assert_eq!(
        harness.session.event_unsubscribe(SubscriptionId(999), now),
        Err(EventError::UnknownHandle)
    );
    assert!(harness.sent().is_empty());
}

#[test]
fn event_last_unsubscribe_goes_to_server() {
    let mut harness = Harness::logged_in(quick_options());
    let first = harness
        .session
        .event_subscribe("a", harness.time())
        .unwrap();
    let second = harness
        .session
        .event_subscribe("a", harness.time())
        .unwrap();
    assert_eq!(harness.sent().len(), 1, "one server subscription per name");
    harness
        .session
        .event_unsubscribe(first, harness.time())
        .unwrap();
    assert!(harness.sent().is_empty());
    harness
        .session
        .event_unsubscribe(second, harness.time())
        .unwrap();
    let sent = harness.sent();
    assert!(
        matches!(&sent[..], [TopicMessage::Event(m)] if m.action == EventAction::Unsubscribe as i32 && m.names == ["a"]),
        "{sent:?}"
    );
}

#[test]
fn event_denied_subscription_ends() {
    let mut harness = Harness::logged_in(quick_options());
    let id = harness
        .session
        .event_subscribe("secret", harness.time())
        .unwrap();
    harness.sent();
    harness.receive(TopicMessage::Event(EventMessage {
        name: "secret".to_owned(),
        original_action: EventAction::Subscribe.into(),
        is_error: true,
        ..event_message(EventAction::MessageDenied)
    }));
    let events = harness.events();
    assert!(events.contains(&Event::EventSubscriptionEnded {
        subscription: id,
        name: "secret".to_owned()
    }));
    assert!(events.iter().any(|e| matches!(e, Event::Error(SessionError::Server { action, .. }) if action == "MESSAGE_DENIED")));
}

/// Builds the error that the server sends when its permissions deny
/// `original` for `name`.
fn event_denial(original: EventAction, name: &str, correlation_id: &str) -> TopicMessage {
    TopicMessage::Event(EventMessage {
        name: name.to_owned(),
        original_action: original.into(),
        correlation_id: correlation_id.to_owned(),
        is_error: true,
        ..event_message(EventAction::MessageDenied)
    })
}

#[test]
fn event_denied_subscription_stops_ack_timeout() {
    let mut harness = Harness::logged_in(quick_options());
    let id = harness
        .session
        .event_subscribe("secret", harness.time())
        .unwrap();
    let sent = harness.sent();
    let [TopicMessage::Event(subscribe)] = &sent[..] else {
        panic!("expected one SUBSCRIBE: {sent:?}");
    };

    harness.receive(event_denial(
        EventAction::Subscribe,
        "secret",
        &subscribe.correlation_id,
    ));
    assert_eq!(
        harness.events(),
        vec![
            Event::EventSubscriptionEnded {
                subscription: id,
                name: "secret".to_owned()
            },
            Event::Error(SessionError::Server {
                topic: Topic::Event,
                action: "MESSAGE_DENIED".to_owned(),
                name: "secret".to_owned(),
                original_action: Some("SUBSCRIBE".to_owned()),
            })
        ]
    );
    // Our server sends no acknowledgement for a bulk message whose names
    // are all denied.
    harness.advance(10_000);
    assert_eq!(harness.events(), vec![], "the denial is reported once");
}

#[test]
fn event_denied_listen_ends_listen() {
    let mut harness = Harness::logged_in(quick_options());
    let listen = harness
        .session
        .event_listen("secret/.*", harness.time())
        .unwrap();
    harness.sent();

    harness.receive(event_denial(EventAction::Listen, "secret/.*", ""));
    assert_eq!(
        harness.events(),
        vec![
            Event::Error(SessionError::Server {
                topic: Topic::Event,
                action: "MESSAGE_DENIED".to_owned(),
                name: "secret/.*".to_owned(),
                original_action: Some("LISTEN".to_owned()),
            }),
            Event::ListenRejected {
                listen,
                pattern: "secret/.*".to_owned()
            }
        ]
    );
    harness.advance(10_000);
    assert_eq!(harness.events(), vec![], "the denial is reported once");
    assert_eq!(
        harness.session.event_unlisten(listen, harness.time()),
        Err(EventError::UnknownHandle)
    );

    harness.reconnect();
    harness.advance(100);
    assert!(
        !harness
            .sent()
            .iter()
            .any(|message| matches!(message, TopicMessage::Event(_))),
        "a denied listen is not sent again after a reconnection"
    );
}

#[test]
fn event_listen_accept_and_stop() {
    let mut harness = Harness::logged_in(quick_options());
    let listen = harness
        .session
        .event_listen("chat/.*", harness.time())
        .unwrap();
    let sent = harness.sent();
    assert!(
        matches!(&sent[..], [TopicMessage::Event(m)] if m.action == EventAction::Listen as i32 && m.name == "chat/.*"),
        "{sent:?}"
    );
    assert_eq!(
        harness.session.event_listen("chat/.*", harness.time()),
        Err(EventError::AlreadyListening {
            pattern: "chat/.*".to_owned()
        })
    );

    harness.receive(TopicMessage::Event(EventMessage {
        name: "chat/.*".to_owned(),
        subscription: "chat/lobby".to_owned(),
        ..event_message(EventAction::SubscriptionForPatternFound)
    }));
    assert_eq!(
        harness.events(),
        vec![Event::ListenRequest {
            listen,
            pattern: "chat/.*".to_owned(),
            name: "chat/lobby".to_owned()
        }]
    );
    harness
        .session
        .event_listen_respond(listen, "chat/lobby", true, harness.time())
        .unwrap();
    let sent = harness.sent();
    assert!(
        matches!(&sent[..], [TopicMessage::Event(m)] if m.action == EventAction::ListenAccept as i32 && m.subscription == "chat/lobby"),
        "{sent:?}"
    );

    harness.receive(TopicMessage::Event(EventMessage {
        name: "chat/.*".to_owned(),
        subscription: "chat/lobby".to_owned(),
        ..event_message(EventAction::SubscriptionForPatternRemoved)
    }));
    assert_eq!(
        harness.events(),
        vec![Event::ListenStopped {
            listen,
            pattern: "chat/.*".to_owned(),
            name: "chat/lobby".to_owned()
        }]
    );
}

#[test]
fn event_listen_reject_is_sent() {
    let mut harness = Harness::logged_in(quick_options());
    let listen = harness.session.event_listen("x.*", harness.time()).unwrap();
    harness.sent();
    harness
        .session
        .event_listen_respond(listen, "xy", false, harness.time())
        .unwrap();
    let sent = harness.sent();
    assert!(
        matches!(&sent[..], [TopicMessage::Event(m)] if m.action == EventAction::ListenReject as i32 && m.name == "x.*" && m.subscription == "xy"),
        "{sent:?}"
    );
}

#[test]
fn accepted_listens_stop_when_connection_lost() {
    let mut harness = Harness::logged_in(quick_options());
    let listen = harness.session.event_listen("x.*", harness.time()).unwrap();
    harness.receive(TopicMessage::Event(EventMessage {
        name: "x.*".to_owned(),
        subscription: "xy".to_owned(),
        ..event_message(EventAction::SubscriptionForPatternFound)
    }));
    harness
        .session
        .event_listen_respond(listen, "xy", true, harness.time())
        .unwrap();
    harness.drain();
    harness.session.connection_lost(harness.time());
    assert!(harness.events().contains(&Event::ListenStopped {
        listen,
        pattern: "x.*".to_owned(),
        name: "xy".to_owned()
    }));
}

#[test]
fn emit_while_offline_is_kept_then_dropped() {
    let mut harness = Harness::logged_in(quick_options());
    harness.session.connection_lost(harness.time());
    harness.drain();
    harness
        .session
        .event_emit("a", None, harness.time())
        .unwrap();
    harness.now += 2000;
    harness.session.handle_timeout(harness.time());
    assert_eq!(
        harness.session.event_emit("a", None, harness.time()),
        Err(EventError::ClientOffline)
    );
}

#[test]
fn emit_while_reconnecting_is_sent_after_login() {
    let mut harness = Harness::logged_in(quick_options());
    harness.session.connection_lost(harness.time());
    harness
        .session
        .event_emit("a", Some("1"), harness.time())
        .unwrap();
    harness.drain();
    harness.reconnect();
    let sent = harness.sent();
    assert!(
        sent.iter()
            .any(|m| matches!(m, TopicMessage::Event(e) if e.action == EventAction::Emit as i32 && e.name == "a")),
        "{sent:?}"
    );
}

// RPC

fn rpc_result(harness: &mut Harness) -> Vec<(RequestId, Result<Option<String>, RpcError>)> {
    harness
        .events()
        .into_iter()
        .filter_map(|event| match event {
            Event::RpcResult { request, result } => Some((request, result)),
            _ => None,
        })
        .collect()
}

#[test]
fn rpc_make_gets_response() {
    let mut harness = Harness::logged_in(quick_options());
    let request = harness
        .session
        .rpc_make("add", Some("[1,2]"), harness.time())
        .unwrap();
    let sent = harness.sent();
    let [TopicMessage::Rpc(message)] = &sent[..] else {
        panic!("expected one request: {sent:?}");
    };
    assert_eq!(message.action, RpcAction::Request as i32);
    assert_eq!(&message.data[..], b"[1,2]");
    assert!(message.correlation_id.starts_with("0000000000000abc-"));
    let correlation_id = message.correlation_id.clone();

    harness.receive(TopicMessage::Rpc(rpc_message(
        RpcAction::Accept,
        "add",
        &correlation_id,
    )));
    assert!(rpc_result(&mut harness).is_empty());
    harness.receive(TopicMessage::Rpc(RpcMessage {
        data: Bytes::from_static(b"3"),
        ..rpc_message(RpcAction::Response, "add", &correlation_id)
    }));
    assert_eq!(
        rpc_result(&mut harness),
        vec![(request, Ok(Some("3".to_owned())))]
    );
    harness.advance(60_000);
    assert!(rpc_result(&mut harness).is_empty(), "a second result");
}

#[test]
fn rpc_errors_end_request() {
    let cases = [
        (RpcAction::NoRpcProvider, RpcError::NoProvider),
        (RpcAction::AcceptTimeout, RpcError::AcceptTimeout),
        (RpcAction::ResponseTimeout, RpcError::ResponseTimeout),
        (
            RpcAction::RequestError,
            RpcError::Provider {
                message: r#""boom""#.to_owned(),
            },
        ),
    ];
    for (action, expected) in cases {
        let mut harness = Harness::logged_in(quick_options());
        let request = harness.session.rpc_make("f", None, harness.time()).unwrap();
        let sent = harness.sent();
        let TopicMessage::Rpc(message) = &sent[0] else {
            panic!("expected a request");
        };
        let mut reply = rpc_message(action, "f", &message.correlation_id);
        if action == RpcAction::RequestError {
            reply.data = Bytes::from_static(br#""boom""#);
        }
        harness.receive(TopicMessage::Rpc(reply));
        assert_eq!(rpc_result(&mut harness), vec![(request, Err(expected))]);
    }
}

#[test]
fn rpc_client_timeout_fires_once() {
    let mut harness = Harness::logged_in(quick_options());
    let request = harness
        .session
        .rpc_make("slow", None, harness.time())
        .unwrap();
    let sent = harness.sent();
    let TopicMessage::Rpc(message) = &sent[0] else {
        panic!("expected a request");
    };
    let correlation_id = message.correlation_id.clone();
    harness.advance(19_999);
    assert!(rpc_result(&mut harness).is_empty());
    harness.advance(1);
    assert_eq!(
        rpc_result(&mut harness),
        vec![(request, Err(RpcError::Timeout))]
    );

    harness.receive(TopicMessage::Rpc(rpc_message(
        RpcAction::Response,
        "slow",
        &correlation_id,
    )));
    let events = harness.events();
    assert!(
        !events.iter().any(|e| matches!(e, Event::RpcResult { .. })),
        "late response gave a second result: {events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Error(SessionError::Unsolicited { .. })))
    );
}

#[test]
fn rpc_in_flight_fails_when_connection_lost() {
    let mut harness = Harness::logged_in(quick_options());
    let request = harness.session.rpc_make("f", None, harness.time()).unwrap();
    harness.session.connection_lost(harness.time());
    assert_eq!(
        rpc_result(&mut harness),
        vec![(request, Err(RpcError::ClientOffline))]
    );
}

#[test]
fn rpc_while_reconnecting_is_sent_after_login() {
    let mut harness = Harness::logged_in(quick_options());
    harness.session.connection_lost(harness.time());
    let request = harness.session.rpc_make("f", None, harness.time()).unwrap();
    harness.drain();
    harness.reconnect();
    let sent = harness.sent();
    let request_message = sent.iter().find_map(|m| match m {
        TopicMessage::Rpc(r) if r.action == RpcAction::Request as i32 => Some(r.clone()),
        _ => None,
    });
    let request_message = request_message.expect("the kept request was not sent");
    harness.receive(TopicMessage::Rpc(rpc_message(
        RpcAction::Response,
        "f",
        &request_message.correlation_id,
    )));
    assert_eq!(rpc_result(&mut harness), vec![(request, Ok(None))]);
}

#[test]
fn rpc_offline_past_buffer_fails_fast() {
    let mut harness = Harness::logged_in(quick_options());
    harness.session.connection_lost(harness.time());
    let kept = harness.session.rpc_make("f", None, harness.time()).unwrap();
    harness.drain();
    harness.now += 2000;
    harness.session.handle_timeout(harness.time());
    assert_eq!(
        rpc_result(&mut harness),
        vec![(kept, Err(RpcError::ClientOffline))]
    );
    assert_eq!(
        harness.session.rpc_make("f", None, harness.time()),
        Err(RpcError::ClientOffline)
    );
}

#[test]
fn rpc_before_login_fails_after_buffer_time() {
    let mut harness = Harness::connected(quick_options());
    let request = harness.session.rpc_make("f", None, harness.time()).unwrap();
    harness.advance(1999);
    assert_eq!(rpc_result(&mut harness), vec![]);
    harness.advance(1);
    assert_eq!(
        rpc_result(&mut harness),
        vec![(request, Err(RpcError::ClientOffline))]
    );
    harness.advance(100_000);
    assert_eq!(rpc_result(&mut harness), vec![], "a request ends once");
}

#[test]
fn rpc_after_rejected_login_ends() {
    let mut harness = Harness::connected(quick_options());
    harness.accept_challenge();
    harness.session.login("{}", harness.time()).unwrap();
    harness.expect_auth_request();
    harness.receive(auth(AuthAction::AuthUnsuccessful, None));
    let request = harness.session.rpc_make("f", None, harness.time()).unwrap();
    harness.advance(2000);
    assert_eq!(
        rpc_result(&mut harness),
        vec![(request, Err(RpcError::ClientOffline))]
    );
}

#[test]
fn rpc_before_login_is_sent_after_it() {
    let mut harness = Harness::connected(quick_options());
    harness.accept_challenge();
    let request = harness.session.rpc_make("f", None, harness.time()).unwrap();
    harness.session.login("{}", harness.time()).unwrap();
    harness.expect_auth_request();
    harness.receive(auth(AuthAction::AuthSuccessful, None));
    let sent = harness.sent();
    let correlation_id = sent
        .iter()
        .find_map(|m| match m {
            TopicMessage::Rpc(r) if r.action == RpcAction::Request as i32 => {
                Some(r.correlation_id.clone())
            }
            _ => None,
        })
        .expect("the kept request was not sent");
    harness.advance(5000);
    assert_eq!(
        rpc_result(&mut harness),
        vec![],
        "the buffer timer was stopped"
    );
    harness.receive(TopicMessage::Rpc(rpc_message(
        RpcAction::Response,
        "f",
        &correlation_id,
    )));
    assert_eq!(rpc_result(&mut harness), vec![(request, Ok(None))]);
}

#[test]
fn rpc_provider_answers_request() {
    let mut harness = Harness::logged_in(quick_options());
    let provider = harness.session.rpc_provide("add", harness.time()).unwrap();
    let sent = harness.sent();
    assert!(
        matches!(&sent[..], [TopicMessage::Rpc(m)] if m.action == RpcAction::Provide as i32 && m.names == ["add"]),
        "{sent:?}"
    );
    assert_eq!(
        harness.session.rpc_provide("add", harness.time()),
        Err(RpcError::AlreadyProvided {
            name: "add".to_owned()
        })
    );

    harness.receive(TopicMessage::Rpc(RpcMessage {
        data: Bytes::from_static(b"[1,2]"),
        requestor_name: "ada".to_owned(),
        ..rpc_message(RpcAction::Request, "add", "c1")
    }));
    let sent = harness.sent();
    assert!(
        matches!(&sent[..], [TopicMessage::Rpc(m)] if m.action == RpcAction::Accept as i32 && m.correlation_id == "c1"),
        "auto accept: {sent:?}"
    );
    let events = harness.events();
    let [Event::RpcRequest(incoming)] = &events[..] else {
        panic!("expected one request event: {events:?}");
    };
    assert_eq!(incoming.provider, provider);
    assert_eq!(incoming.data.as_deref(), Some("[1,2]"));
    assert_eq!(incoming.requestor_name.as_deref(), Some("ada"));

    harness.session.rpc_respond(incoming.id, Some("3")).unwrap();
    let sent = harness.sent();
    assert!(
        matches!(&sent[..], [TopicMessage::Rpc(m)] if m.action == RpcAction::Response as i32 && &m.data[..] == b"3"),
        "{sent:?}"
    );
    assert_eq!(
        harness.session.rpc_respond(incoming.id, Some("3")),
        Err(RpcError::UnknownHandle),
        "answered twice"
    );
}

#[test]
fn rpc_provider_error_and_reject() {
    let mut harness = Harness::logged_in(quick_options());
    harness.session.rpc_provide("f", harness.time()).unwrap();
    for correlation_id in ["c1", "c2"] {
        harness.receive(TopicMessage::Rpc(rpc_message(
            RpcAction::Request,
            "f",
            correlation_id,
        )));
    }
    harness.sent();
    let ids: Vec<IncomingRpcId> = harness
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::RpcRequest(incoming) => Some(incoming.id),
            _ => None,
        })
        .collect();
    harness.session.rpc_error(ids[0], "broken").unwrap();
    harness.session.rpc_reject(ids[1]).unwrap();
    let sent = harness.sent();
    let [TopicMessage::Rpc(error), TopicMessage::Rpc(reject)] = &sent[..] else {
        panic!("{sent:?}");
    };
    assert_eq!(error.action, RpcAction::RequestError as i32);
    assert_eq!(&error.data[..], br#""broken""#);
    assert_eq!(reject.action, RpcAction::Reject as i32);
    assert_eq!(reject.correlation_id, "c2");
}

#[test]
fn rpc_denied_provide_stops_ack_timeout() {
    let mut harness = Harness::logged_in(quick_options());
    let provider = harness
        .session
        .rpc_provide("secret", harness.time())
        .unwrap();
    let sent = harness.sent();
    let [TopicMessage::Rpc(provide)] = &sent[..] else {
        panic!("expected one PROVIDE: {sent:?}");
    };

    harness.receive(TopicMessage::Rpc(RpcMessage {
        original_action: RpcAction::Provide.into(),
        is_error: true,
        ..rpc_message(RpcAction::MessageDenied, "secret", &provide.correlation_id)
    }));
    assert_eq!(
        harness.events(),
        vec![
            Event::RpcProviderEnded {
                provider,
                name: "secret".to_owned()
            },
            Event::Error(SessionError::Server {
                topic: Topic::Rpc,
                action: "MESSAGE_DENIED".to_owned(),
                name: "secret".to_owned(),
                original_action: Some("PROVIDE".to_owned()),
            })
        ]
    );
    harness.advance(10_000);
    assert_eq!(harness.events(), vec![], "the denial is reported once");
}

#[test]
fn rpc_request_without_provider_is_rejected() {
    let mut harness = Harness::logged_in(quick_options());
    harness.receive(TopicMessage::Rpc(rpc_message(
        RpcAction::Request,
        "nobody",
        "c9",
    )));
    let sent = harness.sent();
    assert!(
        matches!(&sent[..], [TopicMessage::Rpc(m)] if m.action == RpcAction::Reject as i32 && m.correlation_id == "c9"),
        "{sent:?}"
    );
    assert!(harness.events().is_empty());
}

#[test]
fn rpc_manual_accept_when_auto_accept_off() {
    let mut options = quick_options();
    options.rpc_auto_accept = false;
    let mut harness = Harness::logged_in(options);
    harness.session.rpc_provide("f", harness.time()).unwrap();
    harness.sent();
    harness.receive(TopicMessage::Rpc(rpc_message(
        RpcAction::Request,
        "f",
        "c1",
    )));
    assert!(
        harness.sent().is_empty(),
        "accepted although auto accept is off"
    );
    let events = harness.events();
    let Event::RpcRequest(incoming) = &events[0] else {
        panic!("{events:?}");
    };
    harness.session.rpc_respond(incoming.id, None).unwrap();
    let actions: Vec<i32> = harness
        .sent()
        .iter()
        .map(|m| match m {
            TopicMessage::Rpc(r) => r.action,
            _ => 0,
        })
        .collect();
    assert_eq!(
        actions,
        vec![RpcAction::Accept as i32, RpcAction::Response as i32]
    );
}

// Presence

#[test]
fn presence_query_all_and_named() {
    let mut harness = Harness::logged_in(quick_options());
    let all = harness.session.presence_query_all(harness.time()).unwrap();
    let named = harness
        .session
        .presence_query(&["ada", "bob"], harness.time())
        .unwrap();
    let sent = harness.sent();
    let [
        TopicMessage::Presence(first),
        TopicMessage::Presence(second),
    ] = &sent[..]
    else {
        panic!("{sent:?}");
    };
    assert_eq!(first.action, PresenceAction::QueryAll as i32);
    assert_eq!(second.action, PresenceAction::Query as i32);
    assert_eq!(second.names, ["ada", "bob"]);

    harness.receive(TopicMessage::Presence(PresenceMessage {
        action: PresenceAction::QueryAllResponse.into(),
        names: vec!["ada".to_owned()],
        ..Default::default()
    }));
    harness.receive(TopicMessage::Presence(PresenceMessage {
        action: PresenceAction::QueryResponse.into(),
        correlation_id: second.correlation_id.clone(),
        data: Bytes::from_static(br#"{"ada":true,"bob":false}"#),
        ..Default::default()
    }));
    let events = harness.events();
    assert_eq!(
        events,
        vec![
            Event::PresenceQueryAllResult {
                request: all,
                result: Ok(vec!["ada".to_owned()])
            },
            Event::PresenceQueryResult {
                request: named,
                result: Ok([("ada".to_owned(), true), ("bob".to_owned(), false)]
                    .into_iter()
                    .collect())
            }
        ]
    );
}

#[test]
fn presence_query_timeout_fires_once() {
    let mut harness = Harness::logged_in(quick_options());
    let request = harness.session.presence_query_all(harness.time()).unwrap();
    harness.sent();
    harness.advance(2000);
    assert_eq!(
        harness.events(),
        vec![Event::PresenceQueryAllResult {
            request,
            result: Err(PresenceError::Timeout)
        }]
    );
    harness.receive(TopicMessage::Presence(PresenceMessage {
        action: PresenceAction::QueryAllResponse.into(),
        ..Default::default()
    }));
    assert!(
        !harness
            .events()
            .iter()
            .any(|e| matches!(e, Event::PresenceQueryAllResult { .. })),
        "second result"
    );
}

#[test]
fn presence_invalid_query_response_is_error() {
    let mut harness = Harness::logged_in(quick_options());
    let request = harness
        .session
        .presence_query(&["ada"], harness.time())
        .unwrap();
    harness.receive(TopicMessage::Presence(PresenceMessage {
        action: PresenceAction::QueryResponse.into(),
        correlation_id: "0".to_owned(),
        data: Bytes::from_static(b"[1]"),
        ..Default::default()
    }));
    let events = harness.events();
    assert!(
        matches!(&events[..], [Event::PresenceQueryResult { request: r, result: Err(PresenceError::InvalidResponse { .. }) }] if *r == request),
        "{events:?}"
    );
}

#[test]
fn presence_changes_reach_subscribers() {
    let mut harness = Harness::logged_in(quick_options());
    let all = harness.session.presence_subscribe_all(harness.time());
    let ada = harness
        .session
        .presence_subscribe("ada", harness.time())
        .unwrap();
    let sent = harness.sent();
    assert_eq!(sent.len(), 2, "{sent:?}");
    for (action, online) in [
        (PresenceAction::PresenceJoinAll, true),
        (PresenceAction::PresenceJoin, true),
        (PresenceAction::PresenceLeave, false),
    ] {
        harness.receive(TopicMessage::Presence(PresenceMessage {
            action: action.into(),
            name: "ada".to_owned(),
            ..Default::default()
        }));
        let subscription = if action == PresenceAction::PresenceJoinAll {
            all
        } else {
            ada
        };
        assert_eq!(
            harness.events(),
            vec![Event::PresenceChanged {
                subscription,
                user: "ada".to_owned(),
                online
            }]
        );
    }
    harness
        .session
        .presence_unsubscribe(all, harness.time())
        .unwrap();
    let sent = harness.sent();
    assert!(
        matches!(&sent[..], [TopicMessage::Presence(m)] if m.action == PresenceAction::UnsubscribeAll as i32),
        "{sent:?}"
    );
}

#[test]
fn presence_denied_subscriptions_stop_ack_timeouts() {
    let mut harness = Harness::logged_in(quick_options());
    harness
        .session
        .presence_subscribe("ada", harness.time())
        .unwrap();
    harness.session.presence_subscribe_all(harness.time());
    let sent = harness.sent();
    let [TopicMessage::Presence(subscribe), TopicMessage::Presence(_)] = &sent[..] else {
        panic!("expected SUBSCRIBE and SUBSCRIBE_ALL: {sent:?}");
    };

    for (original, name, correlation_id) in [
        (
            PresenceAction::Subscribe,
            "ada",
            subscribe.correlation_id.as_str(),
        ),
        // Our server checks a subscription to all users against the name
        // "undefined", as deepstream 7.0 does.
        (PresenceAction::SubscribeAll, "undefined", ""),
    ] {
        harness.receive(TopicMessage::Presence(PresenceMessage {
            action: PresenceAction::MessageDenied.into(),
            original_action: original.into(),
            name: name.to_owned(),
            correlation_id: correlation_id.to_owned(),
            is_error: true,
            ..Default::default()
        }));
    }
    let errors = harness.errors();
    assert_eq!(errors.len(), 2, "{errors:?}");
    harness.advance(10_000);
    assert_eq!(harness.events(), vec![], "each denial is reported once");
}

#[test]
fn presence_query_offline_fails_fast() {
    let mut harness = Harness::logged_in(quick_options());
    harness.session.close(harness.time());
    assert_eq!(
        harness.session.presence_query_all(harness.time()),
        Err(PresenceError::ClientOffline)
    );
}

#[test]
fn presence_query_before_login_ends() {
    let mut harness = Harness::connected(quick_options());
    harness.events();
    let query = harness.session.presence_query_all(harness.time()).unwrap();
    harness.advance(1999);
    assert_eq!(harness.events(), vec![]);
    harness.advance(1);
    assert_eq!(
        harness.events(),
        vec![Event::PresenceQueryAllResult {
            request: query,
            result: Err(PresenceError::ClientOffline)
        }]
    );
    harness.advance(20_000);
    assert_eq!(harness.events(), vec![], "a query ends once");
}

#[test]
fn listen_rejected_pattern_ends_listen() {
    let mut harness = Harness::logged_in(quick_options());
    let listen = harness.session.event_listen("(", harness.time()).unwrap();
    harness.sent();
    harness.receive(TopicMessage::Event(EventMessage {
        name: "(".to_owned(),
        ..event_message(EventAction::InvalidListenRegex)
    }));
    let events = harness.events();
    assert!(
        events.contains(&Event::ListenRejected {
            listen,
            pattern: "(".to_owned()
        }),
        "{events:?}"
    );
    assert!(
        events.iter().any(|event| matches!(event, Event::Error(_))),
        "{events:?}"
    );
    assert_eq!(
        harness.session.event_unlisten(listen, harness.time()),
        Err(EventError::UnknownHandle)
    );
    // The pattern can be listened to again.
    assert!(harness.session.event_listen("(", harness.time()).is_ok());
}

#[test]
fn close_fails_everything_pending() {
    let mut harness = Harness::logged_in(quick_options());
    let rpc = harness.session.rpc_make("f", None, harness.time()).unwrap();
    let query = harness.session.presence_query_all(harness.time()).unwrap();
    harness.sent();
    harness.session.close(harness.time());
    let events = harness.events();
    assert!(events.contains(&Event::RpcResult {
        request: rpc,
        result: Err(RpcError::ClientOffline)
    }));
    assert!(events.contains(&Event::PresenceQueryAllResult {
        request: query,
        result: Err(PresenceError::ClientOffline)
    }));
    assert_eq!(harness.sockets(), vec![SocketCommand::Close]);
    assert_eq!(harness.session.state(), ConnectionState::Closed);
    harness.advance(100_000);
    assert!(harness.sockets().is_empty());
}
