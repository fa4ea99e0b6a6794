//! Text in charsets other than UTF-8 (Kestra's `charset` option), through
//! `encoding_rs`.
//!
//! UTF-8 input is never transcoded: it goes to the parsers as bytes, so that invalid
//! UTF-8 is an [`ErrorKind::Encoding`] error at its record rather than a silent
//! U+FFFD. Labels follow the WHATWG Encoding Standard, where `ISO-8859-1` and
//! `latin1` name windows-1252, a superset.

use std::io::{self, Read, Write};
use std::path::Path;

use encoding_rs::{CoderResult, Encoder, Encoding, UTF_8};
use encoding_rs_io::DecodeReaderBytesBuilder;

use super::{Error, ErrorKind, Result};

/// The encoding a charset label names.
pub(crate) fn lookup(label: &str, path: &Path) -> Result<&'static Encoding> {
    Encoding::for_label(label.trim().as_bytes()).ok_or_else(|| {
        Error::new(
            ErrorKind::Options,
            path,
            format!("unknown charset `{label}`"),
        )
    })
}

/// `input` decoded from `label` into UTF-8; unchanged when `label` is UTF-8.
pub(crate) fn decoding_reader<'a, R: Read + 'a>(
    input: R,
    label: &str,
    path: &Path,
) -> Result<Box<dyn Read + 'a>> {
    let encoding = lookup(label, path)?;
    if encoding == UTF_8 {
        return Ok(Box::new(input));
    }
    Ok(Box::new(
        DecodeReaderBytesBuilder::new()
            .encoding(Some(encoding))
            .build(input),
    ))
}

/// `output` encoding UTF-8 text into `label`; unchanged when `label` is UTF-8.
pub(crate) fn encoding_writer<'a, W: Write + 'a>(
    output: W,
    label: &str,
    path: &Path,
) -> Result<Box<dyn Write + 'a>> {
    let encoding = lookup(label, path)?;
    if encoding == UTF_8 {
        return Ok(Box::new(output));
    }
    Ok(Box::new(EncodingWriter {
        output,
        encoder: encoding.output_encoding().new_encoder(),
        pending: Vec::new(),
        encoded: Vec::new(),
    }))
}

/// Encodes the UTF-8 written to it. A character split across two `write` calls is
/// kept in `pending` until it is complete. Characters the charset lacks become
/// HTML numeric references, as encoding_rs does.
struct EncodingWriter<W: Write> {
    output: W,
    encoder: Encoder,
    pending: Vec<u8>,
    encoded: Vec<u8>,
}

impl<W: Write> EncodingWriter<W> {
    fn encode(&mut self, last: bool) -> io::Result<()> {
        let complete = match std::str::from_utf8(&self.pending) {
            Ok(s) => s.len(),
            Err(e) if e.error_len().is_none() && !last => e.valid_up_to(),
            Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        };
        let text = std::str::from_utf8(&self.pending[..complete]).expect("checked above");
        let mut read = 0;
        loop {
            self.encoded.clear();
            self.encoded.reserve(text.len() - read + 16);
            let (result, n, _) =
                self.encoder
                    .encode_from_utf8_to_vec(&text[read..], &mut self.encoded, last);
            read += n;
            self.output.write_all(&self.encoded)?;
            if result == CoderResult::InputEmpty {
                break;
            }
        }
        self.pending.drain(..complete);
        Ok(())
    }
}

impl<W: Write> Write for EncodingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        self.encode(false)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.output.flush()
    }
}

impl<W: Write> Drop for EncodingWriter<W> {
    fn drop(&mut self) {
        // Any bytes still pending are an incomplete character; the csv and JSON
        // writers never leave one, so there is nothing to report here.
        let _ = self.encode(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_round_trip_through_split_writes() {
        let path = Path::new("mem");
        let mut out = Vec::new();
        {
            let mut w = encoding_writer(&mut out, "ISO-8859-1", path).unwrap();
            let bytes = "café,Müller\n".as_bytes();
            // Split inside the two-byte "é".
            w.write_all(&bytes[..4]).unwrap();
            w.write_all(&bytes[4..]).unwrap();
        }
        assert_eq!(out, b"caf\xe9,M\xfcller\n");
        let mut text = String::new();
        decoding_reader(&out[..], "latin1", path)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "café,Müller\n");
    }

    #[test]
    fn unknown_charset_is_an_options_error() {
        let err = lookup("klingon", Path::new("x.csv")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Options);
    }
}
