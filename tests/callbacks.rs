//! The callback adapter in each run mode (dispatch, run, spawn): callback order, replies sent
//! from a callback, failed connections, panicking callbacks, and where callbacks run.
#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use common::{WAIT, closed_port, ws_server};
use nwebsocket::callback::{Context, Handler, WebSocket};
use nwebsocket::{Client, CloseEvent, Error, Message, OpenEvent, ReadyState};
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;

#[derive(Debug, Clone, Copy)]
enum Mode {
    Dispatch,
    Run,
    Spawn,
}

/// What the callbacks saw, shared so that it survives a dispatcher thread that panicked.
type Log = Arc<Mutex<Vec<String>>>;

/// A handler that logs every callback with its thread, replies to messages if asked, and
/// panics on the message "boom".
struct Recorder {
    log: Log,
    reply: bool,
}

impl Recorder {
    fn new(reply: bool) -> (Self, Log) {
        let log = Log::default();
        let recorder = Recorder {
            log: log.clone(),
            reply,
        };
        (recorder, log)
    }

    fn note(&self, entry: String) {
        let thread = std::thread::current().name().unwrap_or("?").to_owned();
        assert_ne!(thread, "nwebsocket-io", "a callback ran on the I/O thread");
        self.log.lock().unwrap().push(format!("{entry} @{thread}"));
    }
}

impl Handler for Recorder {
    fn on_open(&mut self, ctx: &Context, _open: OpenEvent) {
        assert_eq!(ctx.ready_state(), ReadyState::Open);
        self.note("open".into());
    }

    fn on_message(&mut self, ctx: &Context, message: Message) {
        let text = message.as_text().unwrap().to_owned();
        self.note(format!("message {text}"));
        if text == "boom" {
            panic!("boom");
        }
        if self.reply {
            ctx.send_text(format!("re:{text}")).unwrap();
        }
    }

    fn on_error(&mut self, _ctx: &Context, error: Error) {
        self.note(format!("error {}", kind(&error)));
    }

    fn on_close(&mut self, ctx: &Context, close: CloseEvent) {
        assert_eq!(ctx.ready_state(), ReadyState::Closed);
        self.note(format!(
            "close {} {:?} {}",
            close.code,
            close.reason,
            if close.was_clean { "clean" } else { "unclean" }
        ));
    }
}

fn kind(error: &Error) -> &'static str {
    match error {
        Error::Connect(_) => "connect",
        Error::Io(_) => "io",
        _ => "other",
    }
}

/// Runs `ws` in `mode` until `on_close` has run. Returns the message of the panic the adapter
/// resumed, if any, and the name of the thread the callbacks should have run on.
fn finish<H: Handler + Send + 'static>(
    mode: Mode,
    mut ws: WebSocket<H>,
) -> (Option<String>, String) {
    match mode {
        Mode::Dispatch => {
            let deadline = Instant::now() + WAIT;
            loop {
                let outcome = panic::catch_unwind(AssertUnwindSafe(|| ws.dispatch()));
                if ws.ready_state() == ReadyState::Closed {
                    // The stream is over: later calls find nothing and run nothing.
                    assert_eq!(ws.dispatch(), 0);
                    return (outcome.err().map(message_of), current_thread());
                }
                assert!(outcome.is_ok(), "dispatch panicked before on_close");
                assert!(Instant::now() < deadline, "not closed within {WAIT:?}");
                // A frame of a polling loop, not a wait for something to happen.
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        Mode::Run => {
            let (done_tx, done) = mpsc::channel();
            common::spawn(move || {
                let outcome = panic::catch_unwind(AssertUnwindSafe(|| ws.run()));
                assert_eq!(
                    ws.ready_state(),
                    ReadyState::Closed,
                    "run returned before Close"
                );
                ws.run(); // returns at once after on_close
                done_tx.send(outcome.err().map(message_of)).unwrap();
            });
            let panic = done.recv_timeout(WAIT).expect("run did not return");
            (panic, "test".into())
        }
        Mode::Spawn => {
            let spawned = ws.spawn().unwrap();
            let outcome = panic::catch_unwind(AssertUnwindSafe(|| spawned.join(WAIT)));
            match outcome {
                Ok(handler) => assert!(handler.is_some(), "not closed within {WAIT:?}"),
                Err(payload) => return (Some(message_of(payload)), "nwebsocket-callbacks".into()),
            }
            (None, "nwebsocket-callbacks".into())
        }
    }
}

fn current_thread() -> String {
    std::thread::current().name().unwrap_or("?").to_owned()
}

fn message_of(payload: Box<dyn Any + Send>) -> String {
    match payload.downcast::<&str>() {
        Ok(text) => (*text).to_owned(),
        Err(payload) => *payload.downcast::<String>().unwrap(),
    }
}

/// The log entries, each checked to have run on `thread`, without the thread.
fn entries(log: &Log, thread: &str) -> Vec<String> {
    log.lock()
        .unwrap()
        .iter()
        .map(|entry| {
            let (entry, ran_on) = entry.rsplit_once(" @").unwrap();
            assert_eq!(ran_on, thread, "{entry} ran on the wrong thread");
            entry.to_owned()
        })
        .collect()
}

/// A server that sends "1", "2", "3", collects the three replies into `replies`, and closes
/// with 1000 "bye".
fn push_three_server(replies: mpsc::Sender<Vec<String>>) -> String {
    ws_server(move |mut ws| {
        for text in ["1", "2", "3"] {
            ws.send(text.into()).unwrap();
        }
        let mut got = Vec::new();
        while got.len() < 3 {
            match ws.read().unwrap() {
                tungstenite::Message::Text(text) => got.push(text.to_string()),
                _ => continue,
            }
        }
        replies.send(got).unwrap();
        ws.close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into(),
        }))
        .unwrap();
        while ws.read().is_ok() {}
    })
}

/// Runs `$scenario(mode)` as one test per run mode: `$scenario::dispatch` and so on.
macro_rules! each_mode {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[test]
            fn dispatch() {
                super::$scenario(super::Mode::Dispatch);
            }
            #[test]
            fn run() {
                super::$scenario(super::Mode::Run);
            }
            #[test]
            fn spawn() {
                super::$scenario(super::Mode::Spawn);
            }
        }
    )*};
}

each_mode!(
    order_and_replies,
    closures,
    failed_connection,
    panicking_callback
);

/// Open, each message in order, one clean close; replies sent from `on_message` arrive.
fn order_and_replies(mode: Mode) {
    let (replies_tx, replies) = mpsc::channel();
    let url = push_three_server(replies_tx);
    let (recorder, log) = Recorder::new(true);
    let ws = WebSocket::with_handler(Client::connect(&url).unwrap(), recorder);
    let (panic, thread) = finish(mode, ws);
    assert_eq!(panic, None);
    assert_eq!(
        entries(&log, &thread),
        [
            "open",
            "message 1",
            "message 2",
            "message 3",
            "close 1000 \"bye\" clean"
        ]
    );
    assert_eq!(
        replies.recv_timeout(WAIT).unwrap(),
        ["re:1", "re:2", "re:3"]
    );
}

/// JS-style closures: unset ones are skipped; an echo reply from `on_message` arrives; the
/// close callback gets code, reason and `was_clean`.
fn closures(mode: Mode) {
    let (replies_tx, replies) = mpsc::channel();
    let url = push_three_server(replies_tx);
    let log = Log::default();
    let mut ws = WebSocket::connect(&url).unwrap();
    let on_message_log = log.clone();
    let on_close_log = log.clone();
    ws.on_message(move |ctx, message| {
        on_message_log
            .lock()
            .unwrap()
            .push(format!("message {}", message.as_text().unwrap()));
        ctx.send(Message::from(format!("re:{}", message.as_text().unwrap())))
            .unwrap();
    })
    .on_close(move |_, close| {
        on_close_log.lock().unwrap().push(format!(
            "close {} {} {}",
            close.code, close.reason, close.was_clean
        ));
    });
    finish(mode, ws);
    assert_eq!(
        *log.lock().unwrap(),
        ["message 1", "message 2", "message 3", "close 1000 bye true"]
    );
    assert_eq!(
        replies.recv_timeout(WAIT).unwrap(),
        ["re:1", "re:2", "re:3"]
    );
}

/// A connection that fails calls `on_error`, then `on_close`, and nothing else.
fn failed_connection(mode: Mode) {
    let url = format!("ws://127.0.0.1:{}/", closed_port());
    let (recorder, log) = Recorder::new(false);
    let ws = WebSocket::with_handler(Client::connect(&url).unwrap(), recorder);
    let (panic, thread) = finish(mode, ws);
    assert_eq!(panic, None);
    assert_eq!(
        entries(&log, &thread),
        ["error connect", "close 1006 \"\" unclean"]
    );
}

/// A panic in `on_message` closes the connection (1000 "internal error"), the I/O thread
/// still completes the close handshake, `on_close` runs once, and then the panic resumes.
fn panicking_callback(mode: Mode) {
    let (frames_tx, frames) = mpsc::channel();
    let url = ws_server(move |mut ws| {
        ws.send("boom".into()).unwrap();
        loop {
            match ws.read() {
                Ok(tungstenite::Message::Close(frame)) => {
                    let frame = frame.unwrap();
                    let _ = frames_tx.send((u16::from(frame.code), frame.reason.to_string()));
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    let (recorder, log) = Recorder::new(false);
    let ws = WebSocket::with_handler(Client::connect(&url).unwrap(), recorder);
    let (panic, thread) = finish(mode, ws);
    assert_eq!(panic.as_deref(), Some("boom"));
    assert_eq!(
        entries(&log, &thread),
        [
            "open",
            "message boom",
            "close 1000 \"internal error\" clean"
        ]
    );
    assert_eq!(
        frames.recv_timeout(WAIT).unwrap(),
        (1000, "internal error".to_owned())
    );
}

#[test]
fn dispatch_on_an_empty_queue_returns_at_once() {
    // A server that accepts TCP and never answers the handshake: no event will come.
    let port = common::tcp_server(|mut stream| {
        let _ = common::read_request(&mut stream);
        // Holds the connection until the client drops it.
        let _ = std::io::Read::read(&mut stream, &mut [0u8; 1]);
    });
    let mut ws = WebSocket::connect(&format!("ws://127.0.0.1:{port}/")).unwrap();
    let log = Log::default();
    let on_open_log = log.clone();
    ws.on_open(move |_, _| on_open_log.lock().unwrap().push("open".into()));
    let started = Instant::now();
    for _ in 0..1000 {
        assert_eq!(ws.dispatch(), 0);
        assert_eq!(ws.dispatch_max(1), 0);
    }
    // Generous: a dispatch that waited would take the connect timeout (30 s) or forever.
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(log.lock().unwrap().is_empty());
    assert_eq!(ws.ready_state(), ReadyState::Connecting);
}

#[test]
fn dispatch_max_bounds_a_frame() {
    let url = common::echo_server();
    let (recorder, log) = Recorder::new(false);
    let mut ws = WebSocket::with_handler(Client::connect(&url).unwrap(), recorder);
    for text in ["a", "b", "c"] {
        ws.send_text(text).unwrap();
    }
    // Wait, by dispatching one event per frame, until all three echoes have been handled.
    let deadline = Instant::now() + WAIT;
    while log.lock().unwrap().len() < 4 {
        assert!(ws.dispatch_max(1) <= 1);
        assert!(
            Instant::now() < deadline,
            "echoes not handled within {WAIT:?}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let thread = current_thread();
    assert_eq!(
        entries(&log, &thread),
        ["open", "message a", "message b", "message c"]
    );
}

/// While a callback is stuck, the I/O thread still answers the server's ping, and sends made
/// from another thread still go out.
#[test]
fn a_slow_callback_does_not_delay_pongs_or_sends() {
    let (go_tx, go) = mpsc::channel::<()>();
    let go = Mutex::new(go);
    let (seen_tx, seen) = mpsc::channel();
    let url = ws_server(move |mut ws| {
        ws.send("stall".into()).unwrap();
        // Ping only once the callback is known to be stuck.
        go.lock().unwrap().recv_timeout(WAIT).unwrap();
        ws.send(tungstenite::Message::Ping("are you there".into()))
            .unwrap();
        let mut got = Vec::new();
        while got.len() < 2 {
            match ws.read() {
                Ok(tungstenite::Message::Pong(payload)) => got.push(format!("pong {payload:?}")),
                Ok(tungstenite::Message::Text(text)) => got.push(format!("text {text}")),
                Ok(_) => {}
                Err(_) => return,
            }
        }
        seen_tx.send(got).unwrap();
        while ws.read().is_ok() {}
    });
    let (stalled_tx, stalled) = mpsc::channel();
    let (release_tx, release) = mpsc::channel::<()>();
    let mut ws = WebSocket::connect(&url).unwrap();
    ws.on_message(move |_, _| {
        stalled_tx.send(()).unwrap();
        let _ = release.recv_timeout(WAIT);
    });
    let ws = ws.spawn().unwrap();
    stalled
        .recv_timeout(WAIT)
        .expect("the callback did not run");
    ws.sender().send_text("from elsewhere").unwrap();
    go_tx.send(()).unwrap();
    let mut got = seen
        .recv_timeout(WAIT)
        .expect("no pong or no send while a callback was stuck");
    got.sort();
    assert_eq!(got, ["pong b\"are you there\"", "text from elsewhere"]);
    release_tx.send(()).unwrap();
    ws.close().unwrap();
    assert!(ws.join(WAIT).is_some());
}

/// Dropping the `Spawned` handle detaches the dispatcher: callbacks keep running and can close
/// the connection themselves, as JS code would.
#[test]
fn a_detached_dispatcher_runs_until_the_close() {
    let url = common::echo_server();
    let (closed_tx, closed) = mpsc::channel();
    let mut ws = WebSocket::connect(&url).unwrap();
    ws.on_open(|ctx, _| ctx.send_text("hello").unwrap())
        .on_message(|ctx, _| ctx.close().unwrap())
        .on_close(move |_, close| closed_tx.send(close).unwrap());
    drop(ws.spawn().unwrap());
    let close = closed.recv_timeout(WAIT).unwrap();
    assert_eq!((close.code, close.was_clean), (1000, true));
}

/// The class style keeps its state: the handler that `join` returns holds what the callbacks
/// stored, and callbacks can send and close through their context.
#[test]
fn the_handler_is_returned_with_its_state() {
    #[derive(Default)]
    struct Store {
        messages: Vec<Message>,
    }
    impl Handler for Store {
        fn on_open(&mut self, ctx: &Context, _open: OpenEvent) {
            ctx.send_text("one").unwrap();
            ctx.send_binary(vec![2u8]).unwrap();
        }
        fn on_message(&mut self, ctx: &Context, message: Message) {
            self.messages.push(message);
            if self.messages.len() == 2 {
                ctx.close().unwrap();
            }
        }
    }
    let ws = WebSocket::with_handler(
        Client::connect(&common::echo_server()).unwrap(),
        Store::default(),
    );
    let store = ws.spawn().unwrap().join(WAIT).unwrap();
    assert_eq!(
        store.messages,
        [Message::from("one"), Message::from(vec![2u8])]
    );
}
