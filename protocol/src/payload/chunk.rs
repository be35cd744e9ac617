//! Attachment chunks.
//!
//! An attachment is split into pieces of at most [`CHUNK_DATA_MAX`] bytes;
//! every piece but the last fills a 64 KiB envelope exactly, so a long audio
//! recording is a count of equal blobs. Body layout (big-endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 16 | attachment id |
//! | 16 | 4 | chunk index (0-based) |
//! | 20 | 4 | chunk count |
//! | 24 | n | data |

use crate::codec::Reader;
use crate::padding::MAX_BODY;
use crate::{ProtocolError, Result};

/// Length of the chunk header.
pub const CHUNK_HEADER_LEN: usize = 24;
/// Most data bytes one chunk carries (fills the 64 KiB class exactly).
pub const CHUNK_DATA_MAX: usize = MAX_BODY - CHUNK_HEADER_LEN;

/// How many chunks an attachment of `size` bytes needs (at least one).
pub fn chunk_count(size: u64) -> u64 {
    size.div_ceil(CHUNK_DATA_MAX as u64).max(1)
}

/// One decoded chunk body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkBody<'a> {
    /// The attachment this piece belongs to.
    pub attachment_id: [u8; 16],
    /// Position of this piece.
    pub index: u32,
    /// Number of pieces.
    pub count: u32,
    /// The bytes.
    pub data: &'a [u8],
}

impl<'a> ChunkBody<'a> {
    /// Encodes the chunk body.
    pub fn encode(&self) -> Result<Vec<u8>> {
        self.check()?;
        let mut out = Vec::with_capacity(CHUNK_HEADER_LEN + self.data.len());
        out.extend_from_slice(&self.attachment_id);
        out.extend_from_slice(&self.index.to_be_bytes());
        out.extend_from_slice(&self.count.to_be_bytes());
        out.extend_from_slice(self.data);
        Ok(out)
    }

    /// Decodes a chunk body.
    pub fn decode(bytes: &'a [u8]) -> Result<ChunkBody<'a>> {
        let mut r = Reader::new(bytes);
        let c = ChunkBody {
            attachment_id: r.array()?,
            index: r.u32()?,
            count: r.u32()?,
            data: r.rest(),
        };
        c.check()?;
        Ok(c)
    }

    fn check(&self) -> Result<()> {
        if self.count == 0 || self.index >= self.count {
            return Err(ProtocolError::Invalid("chunk index"));
        }
        if self.data.len() > CHUNK_DATA_MAX {
            return Err(ProtocolError::TooLarge {
                what: "chunk data",
                len: self.data.len(),
                max: CHUNK_DATA_MAX,
            });
        }
        Ok(())
    }
}

/// Splits `data` into chunk bodies for attachment `id`.
pub fn split_attachment(id: [u8; 16], data: &[u8]) -> Result<Vec<Vec<u8>>> {
    let count =
        u32::try_from(chunk_count(data.len() as u64)).map_err(|_| ProtocolError::TooLarge {
            what: "attachment",
            len: data.len(),
            max: CHUNK_DATA_MAX * u32::MAX as usize,
        })?;
    let pieces: Vec<&[u8]> = if data.is_empty() {
        vec![&[][..]]
    } else {
        data.chunks(CHUNK_DATA_MAX).collect()
    };
    pieces
        .into_iter()
        .zip(0u32..)
        .map(|(piece, index)| {
            ChunkBody {
                attachment_id: id,
                index,
                count,
                data: piece,
            }
            .encode()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::padding;

    #[test]
    fn full_chunks_fill_the_top_class() {
        let data = vec![7u8; CHUNK_DATA_MAX * 2 + 10];
        let chunks = split_attachment([1; 16], &data).unwrap();
        assert_eq!(chunks.len(), 3);
        assert_eq!(
            padding::class_for(chunks[0].len()).unwrap(),
            padding::MAX_CLASS
        );
        assert_eq!(
            chunks[0].len() + padding::INNER_HEADER_LEN,
            padding::MAX_CLASS
        );
        let mut back = Vec::new();
        for (i, c) in chunks.iter().enumerate() {
            let d = ChunkBody::decode(c).unwrap();
            assert_eq!(d.index as usize, i);
            assert_eq!(d.count, 3);
            back.extend_from_slice(d.data);
        }
        assert_eq!(back, data);
    }

    #[test]
    fn empty_attachment_is_one_chunk() {
        assert_eq!(chunk_count(0), 1);
        assert_eq!(split_attachment([0; 16], &[]).unwrap().len(), 1);
    }

    #[test]
    fn decode_rejects_bad_index() {
        let mut c = split_attachment([0; 16], b"abc").unwrap().remove(0);
        c[16..20].copy_from_slice(&5u32.to_be_bytes());
        assert_eq!(
            ChunkBody::decode(&c),
            Err(ProtocolError::Invalid("chunk index"))
        );
        assert!(ChunkBody::decode(&c[..10]).is_err());
    }
}
