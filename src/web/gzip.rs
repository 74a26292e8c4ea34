//! A gzip body put together from pieces compressed at different times ([`Gzip`]): text that
//! stays the same across requests is compressed once ([`deflate_parts`]) and copied into each
//! answer, and short secrets (the masked CSRF token) go in uncompressed.
//!
//! This works because of how deflate (RFC 1951) ends a *full flush*: the output stops on a
//! byte boundary and the compressor forgets everything before it, so nothing after the flush
//! refers back across it. Blocks made that way by different compressors, or stored blocks
//! written by hand, can be laid one after another and the result is one valid stream. gzip
//! (RFC 1952) then only adds a 10-byte header and, at the end, the CRC-32 and length of the
//! uncompressed text, which [`Gzip`] counts as the pieces go in.
//!
//! Why: the user table's page is ~80 KB of HTML, and compressing all of it for every browser
//! that asks (every browser does) cost ten times what writing it does once its rows are kept
//! (bench/README.md). The page is the same for every request of one admin but for the CSRF
//! tokens: its pieces are compressed once, and a request copies them.
//!
//! The secret never shares a compression context with anything: a stored block is copied as
//! it is, and the texts around it were compressed without it. So a response reveals nothing
//! about the token through its length (BREACH), beyond what masking it already ensures.

use flate2::{Compress, Compression, Crc, FlushCompress};

/// The compression level: the pieces are compressed once and kept, so worth more time than
/// the level tower-http's layer uses per response (4, `web::compression`).
const KEPT: u32 = 6;

/// The gzip header: magic, deflate, no flags, no time, no extra flags, unknown OS.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
/// A final block that holds nothing: fixed Huffman codes (BFINAL=1, BTYPE=01) and the
/// end-of-block code (seven zero bits).
const LAST_BLOCK: [u8; 2] = [0x03, 0x00];
/// The most a stored block holds.
const STORED_MAX: usize = 65_535;

/// `parts` compressed once each, in order, by one compressor that ends each with a full
/// flush: every part can be copied into a [`Gzip`] on its own ([`Gzip::precompressed`]).
/// `None` if the compressor failed (the caller then compresses as usual).
pub fn deflate_parts<'a>(parts: impl IntoIterator<Item = &'a str>) -> Option<Vec<Box<[u8]>>> {
    let mut compress = Compress::new(Compression::new(KEPT), false);
    parts
        .into_iter()
        .map(|part| {
            let mut out = Vec::with_capacity(part.len() / 3 + 64);
            deflate(&mut compress, part.as_bytes(), &mut out)?;
            Some(out.into_boxed_slice())
        })
        .collect()
}

/// Compresses `input` onto `out` and ends with a full flush.
fn deflate(compress: &mut Compress, mut input: &[u8], out: &mut Vec<u8>) -> Option<()> {
    loop {
        // A full flush needs room for its empty stored block (5 bytes) and what is pending.
        out.reserve(input.len() / 2 + 64);
        let before = compress.total_in();
        compress
            .compress_vec(input, out, FlushCompress::Full)
            .ok()?;
        let used = usize::try_from(compress.total_in() - before).ok()?;
        input = input.get(used..)?;
        // Done when all input is in and the flush did not run out of room.
        if input.is_empty() && out.len() < out.capacity() {
            return Some(());
        }
    }
}

/// A gzip body being put together.
pub struct Gzip {
    out: Vec<u8>,
    crc: Crc,
}

impl Gzip {
    /// An empty body with room for `capacity` bytes.
    pub fn new(capacity: usize) -> Self {
        let mut out = Vec::with_capacity(capacity);
        out.extend_from_slice(&HEADER);
        Self {
            out,
            crc: Crc::new(),
        }
    }

    /// Adds `text` by its blocks `deflated`, made by [`deflate_parts`] from exactly `text`.
    pub fn precompressed(&mut self, text: &str, deflated: &[u8]) {
        self.out.extend_from_slice(deflated);
        self.crc.update(text.as_bytes());
    }

    /// Adds `text` as it is, in stored blocks: for a secret, which must not share a
    /// compression context with anything an attacker may choose.
    pub fn stored(&mut self, text: &str) {
        for chunk in text.as_bytes().chunks(STORED_MAX) {
            // A chunk is at most STORED_MAX long: its length fits in 16 bits.
            let len = u16::try_from(chunk.len()).unwrap_or(u16::MAX);
            // BFINAL=0, BTYPE=00, the rest of the byte padding (the stream is on a byte
            // boundary after every piece), then LEN and its complement.
            self.out.push(0);
            self.out.extend_from_slice(&len.to_le_bytes());
            self.out.extend_from_slice(&(!len).to_le_bytes());
            self.out.extend_from_slice(chunk);
        }
        self.crc.update(text.as_bytes());
    }

    /// The finished body: a last empty block, then the CRC-32 and the length (mod 2³²).
    pub fn finish(mut self) -> Vec<u8> {
        self.out.extend_from_slice(&LAST_BLOCK);
        self.out.extend_from_slice(&self.crc.sum().to_le_bytes());
        self.out.extend_from_slice(&self.crc.amount().to_le_bytes());
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gunzip(body: &[u8]) -> String {
        let mut text = String::new();
        flate2::read::GzDecoder::new(body)
            .read_to_string(&mut text)
            .unwrap();
        text
    }

    #[test]
    fn pieces_made_apart_make_one_stream() {
        let row = "<tr><td>alice</td><td>active</td></tr>\n".repeat(40);
        let kept = ["<tbody>", row.as_str(), "</tbody>"];
        let deflated = deflate_parts(kept).unwrap();
        // The head and tail by another compressor, at another time.
        let frame = deflate_parts(["<html><body>head ", " tail</body></html>"]).unwrap();
        // What a browser reads is exactly the pieces in order.
        let mut gz = Gzip::new(1024);
        gz.precompressed("<html><body>head ", &frame[0]);
        for (text, blocks) in kept.iter().zip(&deflated) {
            gz.precompressed(text, blocks);
            gz.stored("SECRET-token_0123");
        }
        gz.precompressed(" tail</body></html>", &frame[1]);
        let body = gz.finish();
        let expected = format!(
            "<html><body>head {} tail</body></html>",
            kept.map(|k| format!("{k}SECRET-token_0123")).concat()
        );
        assert_eq!(gunzip(&body), expected);
        // The kept rows are compressed (40 repeats of one row), the secret is not.
        assert!(deflated[1].len() < row.len() / 10, "{}", deflated[1].len());
        assert_eq!(
            body.windows(17)
                .filter(|w| w == b"SECRET-token_0123")
                .count(),
            3
        );
    }

    #[test]
    fn empty_and_long_pieces() {
        let long = "x".repeat(STORED_MAX * 2 + 7);
        let mut gz = Gzip::new(0);
        gz.stored("");
        gz.stored(&long);
        gz.precompressed("", &deflate_parts([""]).unwrap()[0]);
        assert_eq!(gunzip(&gz.finish()), long);
        assert_eq!(gunzip(&Gzip::new(0).finish()), "");
    }
}
