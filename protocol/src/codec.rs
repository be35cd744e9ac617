//! A bounds-checked byte reader and writer helpers: the only place where the
//! decoders touch raw offsets, so that no decoder can index out of range.

use crate::{ProtocolError, Result};

/// Reads big-endian fields from a byte slice, failing with
/// [`ProtocolError::Truncated`] instead of panicking.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.rest.len()
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.rest.len() {
            return Err(ProtocolError::Truncated {
                needed: n - self.rest.len(),
            });
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let bytes = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(u8::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// Everything not yet read.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        core::mem::take(&mut self.rest)
    }

    /// Fails if bytes remain.
    pub(crate) fn finish(self) -> Result<()> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(ProtocolError::TrailingBytes(self.rest.len()))
        }
    }
}

/// Checks a one-byte magic/version tag.
pub(crate) fn expect_version(what: &'static str, found: u8, want: u8) -> Result<()> {
    if found == want {
        Ok(())
    } else {
        Err(ProtocolError::UnsupportedVersion {
            what,
            version: u64::from(found),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_reports_how_much_is_missing() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u8().unwrap(), 1);
        assert_eq!(r.u32(), Err(ProtocolError::Truncated { needed: 2 }));
        // A failed read consumes nothing.
        assert_eq!(r.remaining(), 2);
        assert_eq!(r.finish(), Err(ProtocolError::TrailingBytes(2)));
    }

    #[test]
    fn reader_reads_big_endian() {
        let mut r = Reader::new(&[0, 0, 1, 2, 0, 0, 0, 0, 0, 0, 0, 9]);
        assert_eq!(r.u32().unwrap(), 258);
        assert_eq!(r.u64().unwrap(), 9);
        r.finish().unwrap();
    }
}
