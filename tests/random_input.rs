//! Property test: after a valid handshake, a server sends random and mutated frame streams,
//! also with permessage-deflate agreed: compressed frames, fragmented or whole, and deflate
//! streams cut short or mixed up.
//! Whatever it sends, the client never panics, never hangs past its timeouts, and always ends
//! with the event contract (`Open Message* Error? Close`) and its I/O thread gone.
#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;

use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use common::*;
use nwebsocket::Config;
use proptest::prelude::*;

/// One frame as the server may send it, valid or not.
#[derive(Debug, Clone)]
struct RawFrame {
    fin: bool,
    rsv: u8,
    opcode: u8,
    mask: Option<[u8; 4]>,
    payload: Vec<u8>,
}

impl RawFrame {
    fn encode(&self) -> Vec<u8> {
        let mut out = frame(self.fin, self.opcode, &self.payload);
        out[0] |= self.rsv << 4;
        if let Some(mask) = self.mask {
            out[1] |= 0x80;
            let header_len = out.len() - self.payload.len();
            let masked: Vec<u8> = self
                .payload
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ mask[i % 4])
                .collect();
            out.truncate(header_len);
            out.extend_from_slice(&mask);
            out.extend(masked);
        }
        out
    }
}

fn raw_frame() -> impl Strategy<Value = RawFrame> {
    let opcode = prop_oneof![
        4 => prop::sample::select(vec![0u8, 1, 2, 8, 9, 10]),
        1 => 0u8..16,
    ];
    let rsv = prop_oneof![8 => Just(0u8), 1 => 0u8..8];
    let mask = prop_oneof![8 => Just(None), 1 => any::<[u8; 4]>().prop_map(Some)];
    let payload = prop_oneof![
        4 => prop::collection::vec(any::<u8>(), 0..200),
        2 => "[a-zé€😀 ]{0,40}".prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..70_000),
    ];
    (any::<bool>(), rsv, opcode, mask, payload).prop_map(|(fin, rsv, opcode, mask, payload)| {
        RawFrame {
            fin: fin || opcode >= 8,
            rsv,
            opcode,
            mask,
            payload,
        }
    })
}

/// A stream of frames, then some mutations: flipped bytes and an optional cut.
fn stream() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec(raw_frame(), 0..12),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        prop::option::weighted(0.2, any::<prop::sample::Index>()),
    )
        .prop_map(|(frames, flips, cut)| {
            let mut bytes: Vec<u8> = frames.iter().flat_map(RawFrame::encode).collect();
            if !bytes.is_empty() {
                for (index, value) in flips {
                    let i = index.index(bytes.len());
                    bytes[i] ^= value;
                }
                if let Some(cut) = cut {
                    bytes.truncate(cut.index(bytes.len()));
                }
            }
            bytes
        })
}

/// A compressed message (maybe cut short, maybe fragmented), or any frame as above.
fn deflate_frames() -> impl Strategy<Value = Vec<u8>> {
    let compressed = (
        prop::bool::ANY,
        prop_oneof![
            2 => "[a-z{}\":, ]{0,400}".prop_map(String::into_bytes),
            1 => prop::collection::vec(any::<u8>(), 0..3000),
            1 => prop::collection::vec(Just(0u8), 0..200_000),
        ],
        prop::option::weighted(0.3, any::<prop::sample::Index>()),
        prop::option::weighted(0.3, any::<prop::sample::Index>()),
    )
        .prop_map(|(text, payload, cut, split)| {
            let mut data = common::deflate::Deflate::new(15, false).compress(&payload);
            if let Some(cut) = cut {
                data.truncate(cut.index(data.len() + 1));
            }
            let opcode = if text { 1 } else { 2 };
            match split {
                Some(at) => {
                    let (a, b) = data.split_at(at.index(data.len() + 1));
                    let mut out = common::deflate::frame_rsv1(false, true, opcode, a);
                    out.extend(common::deflate::frame_rsv1(true, false, 0, b));
                    out
                }
                None => common::deflate::frame_rsv1(true, true, opcode, &data),
            }
        });
    prop::collection::vec(
        prop_oneof![2 => compressed, 1 => raw_frame().prop_map(|f| f.encode())],
        0..8,
    )
    .prop_map(|frames| frames.concat())
}

fn small_limits() -> Config {
    Config::builder()
        .close_timeout(Duration::from_millis(500))
        .connect_timeout(Duration::from_secs(5))
        .max_message_size(50_000)
        .max_frame_size(50_000)
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn any_compressed_input_ends_with_the_contract(bytes in deflate_frames()) {
        let url = common::deflate::server(Some("permessage-deflate"), move |mut stream: TcpStream, _| {
            let _ = stream.write_all(&bytes);
            let _ = stream.shutdown(Shutdown::Write);
            let _ = std::io::copy(&mut stream, &mut std::io::sink());
        });
        let ws = common::connect_with_config(&url, small_limits()).unwrap();
        let events = until_close(&ws);
        check_contract(&events);
        prop_assert!(ws.wait_closed(WAIT));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn any_server_input_ends_with_the_contract(bytes in stream()) {
        let url = raw_ws_server(move |mut stream: TcpStream| {
            let _ = stream.write_all(&bytes);
            // End the server's side so that every stream ends: a clean close needs our EOF.
            let _ = stream.shutdown(Shutdown::Write);
            let _ = std::io::copy(&mut stream, &mut std::io::sink());
        });
        let config = Config::builder()
            .close_timeout(Duration::from_millis(500))
            .connect_timeout(Duration::from_secs(5))
            .max_message_size(50_000)
            .max_frame_size(50_000)
            .build()
            .unwrap();
        let ws = common::connect_with_config(&url, config).unwrap();
        let events = until_close(&ws);
        check_contract(&events);
        prop_assert!(ws.wait_closed(WAIT));
    }
}
