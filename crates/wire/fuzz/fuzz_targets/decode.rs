//! Feeds arbitrary bytes, split at an arbitrary point, to the frame decoder: it must never
//! panic, and every frame it yields must encode back to a frame that decodes the same way.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mod_wsgi_wire::{Decoder, encode};

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let cut = (split as usize).min(rest.len());
    let mut d = Decoder::new(64 * 1024);
    for part in [&rest[..cut], &rest[cut..]] {
        d.push(part);
        while let Ok(Some(frame)) = d.next_frame() {
            let mut bytes = Vec::new();
            encode(&frame, &mut bytes);
            let mut again = Decoder::new(usize::MAX);
            again.push(&bytes);
            let decoded = again.next_frame().expect("re-encoded frame decodes").expect("complete");
            if !matches!(&frame, mod_wsgi_wire::Frame::RequestHead(h) if h.script_mtime.is_nan()) {
                assert_eq!(decoded, frame);
            }
        }
    }
});
