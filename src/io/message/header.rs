//! The header of a frame from the server (RFC 6455 §5.2), read straight from the read buffer.
//! tungstenite's parser reads through `io::Read` and logs every field at trace level; this one
//! is a handful of byte reads, for the one step that runs for every message. It gives
//! tungstenite's types and agrees with its parser on every input (see the tests).

use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::OpCode;

/// A frame header at the start of `bytes`: the header, the payload length and the header's own
/// length; `None` while the header is not all there. Reserved opcodes are parsed, for the
/// caller to refuse.
pub(super) fn parse(bytes: &[u8]) -> Option<(FrameHeader, u64, usize)> {
    let [first, second, ..] = *bytes else {
        return None;
    };
    let (length, mut size) = match second & 0x7f {
        126 => (
            u64::from(u16::from_be_bytes(*bytes.get(2..4)?.first_chunk()?)),
            4,
        ),
        127 => (u64::from_be_bytes(*bytes.get(2..10)?.first_chunk()?), 10),
        short => (u64::from(short), 2),
    };
    let mask = if second & 0x80 == 0 {
        None
    } else {
        let mask = *bytes.get(size..size + 4)?.first_chunk()?;
        size += 4;
        Some(mask)
    };
    let header = FrameHeader {
        is_final: first & 0x80 != 0,
        rsv1: first & 0x40 != 0,
        rsv2: first & 0x20 != 0,
        rsv3: first & 0x10 != 0,
        opcode: OpCode::from(first & 0x0f),
        mask,
    };
    Some((header, length, size))
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use tungstenite::protocol::frame::coding::{Control, Data};

    use super::*;

    /// What tungstenite's parser makes of `bytes`: `Err(())` for a reserved opcode.
    fn tungstenite_parse(bytes: &[u8]) -> Result<Option<(FrameHeader, u64, usize)>, ()> {
        let mut cursor = Cursor::new(bytes);
        match FrameHeader::parse(&mut cursor) {
            Ok(Some((header, length))) => Ok(Some((header, length, cursor.position() as usize))),
            Ok(None) => Ok(None),
            Err(_) => Err(()),
        }
    }

    fn is_reserved(opcode: OpCode) -> bool {
        matches!(
            opcode,
            OpCode::Control(Control::Reserved(_)) | OpCode::Data(Data::Reserved(_))
        )
    }

    #[test]
    fn agrees_with_tungstenite_on_every_first_byte_length_form_and_cut() {
        let tails: [&[u8]; 4] = [
            &[],
            &[0x01, 0x02],
            &[0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00],
            &[
                0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xaa, 0xbb, 0xcc, 0xdd,
            ],
        ];
        for first in 0..=u8::MAX {
            for length_byte in [0, 1, 125, 126, 127] {
                for masked in [0, 0x80] {
                    for tail in tails {
                        let mut bytes = vec![first, masked | length_byte];
                        bytes.extend_from_slice(tail);
                        bytes.extend_from_slice(&[0x11, 0x22, 0x33, 0x44, 0x55]);
                        for cut in 0..=bytes.len() {
                            let input = &bytes[..cut];
                            let ours = parse(input);
                            match tungstenite_parse(input) {
                                Err(()) => {
                                    let (header, ..) = ours.expect("a whole header");
                                    assert!(is_reserved(header.opcode), "{input:x?}");
                                }
                                Ok(theirs) => assert_eq!(ours, theirs, "{input:x?}"),
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn reads_each_length_form() {
        let (header, length, size) = parse(&[0x82, 0x05, b'h']).unwrap();
        assert_eq!(
            (header.opcode, header.is_final, length, size),
            (OpCode::Data(Data::Binary), true, 5, 2)
        );
        assert_eq!(
            parse(&[0x01, 126, 0x01, 0x00]).map(|p| (p.1, p.2)),
            Some((256, 4))
        );
        let mut long = vec![0x00, 127];
        long.extend_from_slice(&(1u64 << 40).to_be_bytes());
        assert_eq!(parse(&long).map(|p| (p.1, p.2)), Some((1 << 40, 10)));
        assert_eq!(parse(&[0x89, 0x80, 1, 2, 3]), None);
        assert_eq!(
            parse(&[0x89, 0x80, 1, 2, 3, 4]).unwrap().0.mask,
            Some([1, 2, 3, 4])
        );
    }
}
