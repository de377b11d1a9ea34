//! `corestore_proto::frame::FrameDecoder`: u24-length framing fed in arbitrary chunks.
//!
//! Input: `u16le max_frame || u8 chunk_seed || stream`. The stream is cut into chunks whose
//! sizes come from a small generator seeded by `chunk_seed` (sizes 0 to 300, so chunks both
//! split and span frames).
//!
//! Invariants: no panic; the frames and the error (if any) are exactly what a one-line reference
//! parser finds, whatever the chunking; `decode` returning `Ok(None)` means the chunk was used
//! up; re-framing the bodies with `encode_frame` gives back the consumed stream; `is_mid_frame`
//! is true exactly when a partial frame is buffered.

#![no_main]

use corestore_proto::ProtocolError;
use corestore_proto::frame::{FrameDecoder, encode_frame};
use libfuzzer_sys::fuzz_target;

/// What a stream decodes to: complete bodies, then the error or the unconsumed partial frame.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    frames: Vec<Vec<u8>>,
    error: Option<ProtocolError>,
    mid_frame: bool,
}

fn reference(stream: &[u8], max_frame: usize) -> Outcome {
    let mut frames = Vec::new();
    let mut rest = stream;
    loop {
        let [a, b, c, tail @ ..] = rest else {
            return Outcome {
                frames,
                error: None,
                mid_frame: !rest.is_empty(),
            };
        };
        let len = u32::from_le_bytes([*a, *b, *c, 0]) as usize;
        if len > max_frame {
            let error = Some(ProtocolError::FrameTooLarge {
                limit: max_frame,
                got: len,
            });
            return Outcome {
                frames,
                error,
                mid_frame: false,
            };
        }
        if tail.len() < len {
            return Outcome {
                frames,
                error: None,
                mid_frame: true,
            };
        }
        frames.push(tail[..len].to_vec());
        rest = &tail[len..];
    }
}

/// Feeds `stream` in chunks sized by `seed` (`None`: all at once).
fn chunked(stream: &[u8], max_frame: usize, seed: Option<u8>) -> Outcome {
    let mut dec = FrameDecoder::new(max_frame);
    let mut frames = Vec::new();
    let mut state = seed.map_or(0, |s| u32::from(s) | 1);
    let mut rest = stream;
    while !rest.is_empty() {
        // xorshift32: cheap, deterministic chunk sizes.
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let size = if seed.is_some() {
            (state % 301) as usize
        } else {
            rest.len()
        };
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        rest = tail;
        let mut input = chunk;
        loop {
            match dec.decode(&mut input) {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => {
                    assert!(
                        input.is_empty(),
                        "Ok(None) with {} bytes left in the chunk",
                        input.len()
                    );
                    break;
                }
                Err(e) => {
                    return Outcome {
                        frames,
                        error: Some(e),
                        mid_frame: false,
                    };
                }
            }
        }
    }
    Outcome {
        frames,
        error: None,
        mid_frame: dec.is_mid_frame(),
    }
}

fuzz_target!(|input: &[u8]| {
    let [m0, m1, seed, stream @ ..] = input else {
        return;
    };
    // Mostly small limits (so both branches are reachable), sometimes the protocol maximum.
    let max_frame = match u16::from_le_bytes([*m0, *m1]) {
        0xffff => usize::MAX,
        n => usize::from(n),
    };
    let limit = max_frame.min(corestore_proto::frame::MAX_FRAME_LEN);
    let expected = reference(stream, limit);
    let got = chunked(stream, max_frame, Some(*seed));
    assert_eq!(got, expected);
    let whole = chunked(stream, max_frame, None);
    assert_eq!(whole.frames, expected.frames);

    let mut reframed = Vec::new();
    for f in &got.frames {
        encode_frame(f, &mut reframed).expect("a decoded body fits a frame");
    }
    assert_eq!(&stream[..reframed.len()], reframed.as_slice());
});
