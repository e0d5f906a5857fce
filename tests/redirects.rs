//! Redirects of the upgrade request: rejected by default; with `follow_redirects(max)`,
//! relative and absolute `Location`s followed; one hop too many, `wss` to `ws`, and credentials
//! (URL user-info, `Authorization`, `Cookie`) to another host refused before any connection
//! to it; credentials kept on the same host; every hop within the one connect timeout.
#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use nwebsocket::{Config, ConfigBuilder, Error, Event};

type Requests = Arc<Mutex<Vec<String>>>;

/// A WebSocket server that records each upgrade request and holds the connection until the
/// client goes.
fn final_server() -> (u16, Requests) {
    let requests = Requests::default();
    let log = requests.clone();
    let port = tcp_server(move |mut stream| {
        if let Some(request) = read_request(&mut stream) {
            // Recorded before the answer: whoever has seen `Open` finds it here.
            let accept = accept_key(&request).unwrap();
            log.lock().unwrap().push(request);
            let response = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                 Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
            );
            stream.write_all(response.as_bytes()).unwrap();
            stream.set_read_timeout(Some(WAIT)).unwrap();
            let _ = stream.read(&mut [0; 64]);
        }
    });
    (port, requests)
}

/// A server that answers every request with `status` and the `Location` that `location`
/// picks for the request head, after `delay`; records the requests.
fn redirector(
    status: u16,
    delay: Duration,
    location: impl Fn(&str) -> String + Send + Sync + 'static,
) -> (u16, Requests) {
    let requests = Requests::default();
    let log = requests.clone();
    let port = tcp_server(move |mut stream| {
        if let Some(request) = read_request(&mut stream) {
            let answer = redirect_answer(status, &location(&request));
            log.lock().unwrap().push(request);
            std::thread::sleep(delay);
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    (port, requests)
}

fn redirect_answer(status: u16, location: &str) -> String {
    format!("HTTP/1.1 {status} Moved\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n")
}

/// The request line's path.
fn path_of(request: &str) -> &str {
    request.split(' ').nth(1).unwrap()
}

fn header_of<'a>(request: &'a str, name: &str) -> Option<&'a str> {
    request.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

fn following(max: u32) -> ConfigBuilder {
    Config::builder()
        .proxy_from_env(false)
        .follow_redirects(max)
        .resolve_to_addrs("other.test", [SocketAddr::from(([127, 0, 0, 1], 0))])
}

/// Connects and returns the error that ended the stream.
fn failure(url: &str, config: Config) -> Error {
    let ws = common::connect_with_config(url, config).unwrap();
    let mut events = until_close(&ws);
    check_contract(&events);
    match events.drain(..).find(|e| matches!(e, Event::Error(_))) {
        Some(Event::Error(error)) => error,
        _ => panic!("no error"),
    }
}

/// The reason a redirect was refused.
fn refusal(error: &Error) -> String {
    let Error::Redirect(source) = error else {
        panic!("not a refused redirect: {error:?}")
    };
    source.to_string()
}

#[test]
fn off_by_default_a_redirect_is_rejected_with_its_location() {
    let (port, _) = redirector(301, Duration::ZERO, |_| "/elsewhere".into());
    let error = failure(&format!("ws://127.0.0.1:{port}/"), Config::default());
    let Error::Rejected {
        status, headers, ..
    } = error
    else {
        panic!("{error:?}")
    };
    assert_eq!(status, 301);
    assert_eq!(headers["location"], "/elsewhere");
}

/// `/start` redirects (302) to the relative `next`, which redirects (307) to the final
/// server by an absolute URL.
fn two_hops() -> (String, Requests, Requests) {
    let (final_port, final_requests) = final_server();
    let (port, requests) = redirector(302, Duration::ZERO, move |request| match path_of(request) {
        "/a/start" => "next".into(),
        _ => format!("ws://127.0.0.1:{final_port}/end?k=v"),
    });
    (
        format!("ws://127.0.0.1:{port}/a/start"),
        requests,
        final_requests,
    )
}

#[test]
fn relative_and_absolute_locations_are_followed() {
    let (url, hops, finals) = two_hops();
    let ws = common::connect_with_config(&url, following(2).build().unwrap()).unwrap();
    expect_open(&ws);
    let paths: Vec<String> = hops
        .lock()
        .unwrap()
        .iter()
        .map(|r| path_of(r).to_owned())
        .collect();
    assert_eq!(paths, ["/a/start", "/a/next"]);
    let finals = finals.lock().unwrap();
    assert_eq!(finals.len(), 1);
    assert_eq!(path_of(&finals[0]), "/end?k=v");
    assert_eq!(ws.url(), url, "the handle keeps the URL it was given");
}

#[test]
fn one_redirect_too_many_is_refused() {
    let (url, hops, finals) = two_hops();
    let error = failure(&url, following(1).build().unwrap());
    assert_eq!(refusal(&error), "too many redirects (at most 1)");
    assert_eq!(hops.lock().unwrap().len(), 2);
    assert!(finals.lock().unwrap().is_empty());
}

#[test]
fn wss_to_ws_is_refused() {
    let (final_port, finals) = final_server();
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let der = certified.cert.der().to_vec();
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![der.clone().into()], key.into())
            .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let conn = rustls::ServerConnection::new(tls).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, stream);
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && tls.read(&mut byte).unwrap_or(0) == 1 {
            head.push(byte[0]);
        }
        let location = format!("ws://127.0.0.1:{final_port}/");
        let _ = tls.write_all(redirect_answer(308, &location).as_bytes());
        let _ = tls.flush();
    });
    let config = following(5)
        .root_certificate(der)
        .platform_roots(false)
        .build()
        .unwrap();
    let error = failure(&format!("wss://127.0.0.1:{port}/"), config);
    assert_eq!(
        refusal(&error),
        "refusing to follow a redirect from wss to ws"
    );
    assert!(finals.lock().unwrap().is_empty());
}

#[test]
fn credentials_never_go_to_another_host() {
    let secret = "s3cret-Zq9";
    let cases: [(&str, ConfigBuilder); 3] = [
        ("user-info", following(3)),
        (
            "authorization",
            following(3).header("Authorization", format!("Bearer {secret}")),
        ),
        (
            "cookie",
            following(3).header("Cookie", format!("session={secret}")),
        ),
    ];
    for (case, builder) in cases {
        let (final_port, finals) = final_server();
        let (port, _) = redirector(302, Duration::ZERO, move |_| {
            format!("ws://other.test:{final_port}/")
        });
        let url = match case {
            "user-info" => format!("ws://robot:{secret}@127.0.0.1:{port}/"),
            _ => format!("ws://127.0.0.1:{port}/"),
        };
        let error = failure(&url, builder.build().unwrap());
        let why = refusal(&error);
        assert_eq!(
            why,
            format!("refusing to send credentials to another host (other.test:{final_port})"),
            "{case}"
        );
        assert!(!format!("{error:?}").contains(secret), "{case}");
        assert!(finals.lock().unwrap().is_empty(), "{case}");
    }
}

#[test]
fn without_credentials_another_host_is_fine_and_the_same_host_keeps_them() {
    let (final_port, finals) = final_server();
    let (port, _) = redirector(301, Duration::ZERO, move |_| {
        format!("ws://other.test:{final_port}/there")
    });
    let ws = common::connect_with_config(
        &format!("ws://127.0.0.1:{port}/"),
        following(1).build().unwrap(),
    )
    .unwrap();
    expect_open(&ws);
    let request = finals.lock().unwrap()[0].clone();
    assert_eq!(
        header_of(&request, "host"),
        Some(&*format!("other.test:{final_port}"))
    );
    assert_eq!(header_of(&request, "authorization"), None);

    // Same host and port (a relative Location): the URL's credentials go along.
    let (final_port, finals) = final_server();
    let (port, hops) = redirector(307, Duration::ZERO, move |request| match path_of(request) {
        "/" => "/again".into(),
        _ => format!("ws://127.0.0.1:{final_port}/"),
    });
    let config = following(2).build().unwrap();
    let error = failure(&format!("ws://robot:pw@127.0.0.1:{port}/"), config);
    // The second hop goes to another port with credentials: refused; the first kept them.
    let why = refusal(&error);
    assert!(why.starts_with("refusing to send credentials"), "{why}");
    let hops = hops.lock().unwrap();
    assert_eq!(hops.len(), 2);
    let basic = format!("Basic {}", data_encoding::BASE64.encode(b"robot:pw"));
    assert_eq!(header_of(&hops[1], "authorization"), Some(basic.as_str()));
    assert!(finals.lock().unwrap().is_empty());
}

#[test]
fn every_hop_counts_against_the_connect_timeout() {
    // The second hop never answers; the first takes 600 ms to redirect there.
    let stall = tcp_server(|mut stream| {
        let _ = read_request(&mut stream);
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let _ = stream.read(&mut [0; 64]);
    });
    let (port, _) = redirector(302, Duration::from_millis(600), move |_| {
        format!("ws://127.0.0.1:{stall}/")
    });
    let config = following(3)
        .connect_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let started = Instant::now();
    let error = failure(&format!("ws://127.0.0.1:{port}/"), config);
    let took = started.elapsed();
    assert!(matches!(error, Error::Timeout { .. }), "{error:?}");
    // One timeout for both hops: not 600 ms + a fresh second.
    assert!(took >= Duration::from_millis(990), "{took:?}");
    assert!(took < Duration::from_millis(1450), "{took:?}");
}

#[test]
fn a_location_with_user_info_or_another_scheme_is_refused() {
    for (location, why) in [
        ("ws://eve:pw@127.0.0.1:1/", "the Location carries user-info"),
        (
            "ftp://127.0.0.1/",
            "the Location is not a ws, wss, http or https URL",
        ),
    ] {
        let (port, _) = redirector(302, Duration::ZERO, move |_| location.into());
        let error = failure(
            &format!("ws://127.0.0.1:{port}/"),
            following(2).build().unwrap(),
        );
        assert_eq!(refusal(&error), why);
    }
}
