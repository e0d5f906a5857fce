//! The Python nwebsocket's guideline, as a chat client. Posting is request/response: send the
//! post, wait for its acknowledgement. Posts by other users arrive unsolicited and are shown
//! as they come. The callback side is one short `Handler` that only parses and routes; the
//! rest of the program sees a blocking `Chat::post` and a channel of other users' posts.
//!
//! The wire format, one line per message:
//! - `post <id> <text>`: we post; the server answers `ack <id>`;
//! - `push <user> <text>`: another user posted.
//!
//! Against the embedded echo server, our post comes back as its own acknowledgement, and a
//! thread playing the other users sends `push` lines that the server bounces back to us.
//!
//! `cargo run --example chat [-- <ws-or-wss-url>]`
#![allow(clippy::print_stdout, reason = "an example prints what it does")]

#[path = "support/echo_server.rs"]
mod echo_server;

use std::error::Error;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;
use std::time::{Duration, Instant};

use nwebsocket::callback::{Context, Handler, Spawned, WebSocket};
use nwebsocket::{Client, Message, SendHandle};

const ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// A post by another user.
#[derive(Debug)]
struct Post {
    user: String,
    text: String,
}

/// What the server sends us.
enum Incoming {
    Ack(u64),
    Push(Post),
}

impl Incoming {
    fn parse(line: &str) -> Option<Incoming> {
        let (kind, rest) = line.split_once(' ')?;
        match kind {
            "ack" => rest.parse().ok().map(Incoming::Ack),
            // An echo server's copy of our own post stands for its acknowledgement.
            "post" => rest.split(' ').next()?.parse().ok().map(Incoming::Ack),
            "push" => {
                let (user, text) = rest.split_once(' ')?;
                Some(Incoming::Push(Post {
                    user: user.into(),
                    text: text.into(),
                }))
            }
            _ => None,
        }
    }
}

/// The callback side, and all of it: route each message to whoever waits for it. Short, never
/// blocks, and knows nothing of the rest of the program.
struct Router {
    acks: Sender<u64>,
    posts: Sender<Post>,
}

impl Handler for Router {
    fn on_message(&mut self, _ctx: &Context, message: Message) {
        // A receiver that has gone away just means nobody waits for this any more.
        match message.as_text().and_then(Incoming::parse) {
            Some(Incoming::Ack(id)) => drop(self.acks.send(id)),
            Some(Incoming::Push(post)) => drop(self.posts.send(post)),
            None => println!("(ignored a message we do not understand)"),
        }
    }

    fn on_error(&mut self, _ctx: &Context, error: nwebsocket::Error) {
        println!("connection error: {error}");
    }
}

/// The request/response side: a plain blocking API for the rest of the program.
struct Chat {
    connection: Spawned<Router>,
    acks: Receiver<u64>,
    next_id: u64,
}

impl Chat {
    /// Connects; other users' posts arrive on the returned channel, which ends at the close.
    fn connect(url: &str) -> Result<(Chat, Receiver<Post>), Box<dyn Error>> {
        let (acks_tx, acks) = mpsc::channel();
        let (posts_tx, posts) = mpsc::channel();
        let router = Router {
            acks: acks_tx,
            posts: posts_tx,
        };
        let connection = WebSocket::with_handler(Client::connect(url)?, router).spawn()?;
        let chat = Chat {
            connection,
            acks,
            next_id: 0,
        };
        Ok((chat, posts))
    }

    /// Posts `text` and waits for the server to acknowledge it; returns the round trip.
    fn post(&mut self, text: &str) -> Result<Duration, Box<dyn Error>> {
        self.next_id += 1;
        let id = self.next_id;
        let started = Instant::now();
        self.connection.send_text(format!("post {id} {text}"))?;
        loop {
            let left = (started + ACK_TIMEOUT).saturating_duration_since(Instant::now());
            match self.acks.recv_timeout(left) {
                Ok(acked) if acked == id => return Ok(started.elapsed()),
                Ok(_) => {} // the late acknowledgement of an earlier post
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(format!("post {id} was not acknowledged").into());
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err("the connection closed".into());
                }
            }
        }
    }

    /// A handle to send on the connection from another thread.
    fn sender(&self) -> SendHandle {
        self.connection.sender()
    }

    /// Closes the connection and waits for the close to finish.
    fn close(self) -> Result<(), Box<dyn Error>> {
        self.connection.close()?;
        self.connection
            .join(ACK_TIMEOUT)
            .ok_or("the connection did not close in time")?;
        Ok(())
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let (mut chat, posts) = Chat::connect(&echo_server::url_from_args()?)?;

    // Other users' posts are shown as they arrive, whatever the main thread is doing.
    let display = thread::Builder::new()
        .name("display".into())
        .spawn(move || {
            for post in posts {
                println!("  {}: {}", post.user, post.text);
            }
        })?;

    // The other users, played by a thread (the echo server bounces their posts to us).
    let others = chat.sender();
    let other_users = thread::Builder::new()
        .name("other-users".into())
        .spawn(move || {
            let lines = [
                ("alice", "morning all"),
                ("bob", "hi!"),
                ("alice", "lunch at noon?"),
                ("bob", "sure"),
            ];
            for (user, text) in lines {
                let _ = others.send_text(format!("push {user} {text}"));
                thread::sleep(Duration::from_millis(25));
            }
        })?;

    for text in ["hello", "lunch sounds good", "see you there"] {
        let round_trip = chat.post(text)?;
        println!("> me: {text} (acknowledged in {round_trip:?})");
        thread::sleep(Duration::from_millis(30)); // the user types the next line
    }

    let _ = other_users.join();
    // Messages that arrive while closing are still delivered: no post is lost.
    chat.close()?;
    // The post channel has ended with the connection, so the display thread is done.
    let _ = display.join();
    Ok(())
}
