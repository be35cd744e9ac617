//! Removing metadata from photos before they are sealed.
//!
//! A phone's photo can carry GPS coordinates, the device's make and serial
//! number and the exact time, which could identify the person reporting even
//! to the focal point, and would if the report were ever seized. JPEG: every
//! APPn segment except a bare JFIF APP0, and every comment, is dropped. PNG:
//! only the chunks needed to draw the image are kept. Other formats pass
//! through unchanged (the app should warn for video and documents).

use crate::{CoreError, Result};

/// Strips metadata if `data` is a JPEG or PNG; returns other data unchanged.
pub fn strip(data: &[u8]) -> Result<Vec<u8>> {
    if data.starts_with(&[0xFF, 0xD8]) {
        strip_jpeg(data)
    } else if data.starts_with(PNG_SIGNATURE) {
        strip_png(data)
    } else {
        Ok(data.to_vec())
    }
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

fn damaged() -> CoreError {
    CoreError::Invalid("the image is damaged and cannot be cleaned of its metadata")
}

fn strip_jpeg(data: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(data.len());
    out.extend_from_slice(&[0xFF, 0xD8]);
    let mut i = 2;
    loop {
        let marker = *data.get(i + 1).ok_or_else(damaged)?;
        if *data.get(i).ok_or_else(damaged)? != 0xFF {
            return Err(damaged());
        }
        match marker {
            // Padding fill bytes.
            0xFF => {
                i += 1;
                continue;
            }
            // Start of scan: the rest is entropy-coded image data up to EOI.
            0xDA => {
                out.extend_from_slice(data.get(i..).ok_or_else(damaged)?);
                return Ok(out);
            }
            0xD9 => {
                out.extend_from_slice(&[0xFF, 0xD9]);
                return Ok(out);
            }
            // Markers without a length.
            0x01 | 0xD0..=0xD7 => {
                out.extend_from_slice(data.get(i..i + 2).ok_or_else(damaged)?);
                i += 2;
                continue;
            }
            _ => {}
        }
        let len_bytes = data.get(i + 2..i + 4).ok_or_else(damaged)?;
        let len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
        if len < 2 {
            return Err(damaged());
        }
        let segment = data.get(i..i + 2 + len).ok_or_else(damaged)?;
        let payload = segment.get(4..).unwrap_or_default();
        let keep = match marker {
            0xE0 => payload.starts_with(b"JFIF\0"),
            0xE1..=0xEF | 0xFE => false,
            _ => true,
        };
        if keep {
            out.extend_from_slice(segment);
        }
        i += 2 + len;
    }
}

fn strip_png(data: &[u8]) -> Result<Vec<u8>> {
    // Critical chunks and the ancillary ones that change how pixels look.
    const KEEP: [&[u8; 4]; 9] = [
        b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP",
    ];
    let mut out = PNG_SIGNATURE.to_vec();
    let mut i = PNG_SIGNATURE.len();
    while i < data.len() {
        let len_bytes = data.get(i..i + 4).ok_or_else(damaged)?;
        let len = usize::try_from(u32::from_be_bytes([
            len_bytes[0],
            len_bytes[1],
            len_bytes[2],
            len_bytes[3],
        ]))
        .map_err(|_| damaged())?;
        let end = i
            .checked_add(12)
            .and_then(|x| x.checked_add(len))
            .ok_or_else(damaged)?;
        let chunk = data.get(i..end).ok_or_else(damaged)?;
        let kind = chunk.get(4..8).ok_or_else(damaged)?;
        if KEEP.iter().any(|k| &k[..] == kind) {
            out.extend_from_slice(chunk);
        }
        i = end;
        if kind == b"IEND" {
            break;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(marker: u8, payload: &[u8]) -> Vec<u8> {
        let mut s = vec![0xFF, marker];
        s.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
        s.extend_from_slice(payload);
        s
    }

    #[test]
    fn jpeg_loses_exif_gps_and_comments() {
        let mut jpeg = vec![0xFF, 0xD8];
        jpeg.extend(segment(0xE0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"));
        jpeg.extend(segment(
            0xE1,
            b"Exif\0\0GPS-CANARY -8.3791,-74.5539 SAMSUNG-SERIAL-123",
        ));
        jpeg.extend(segment(0xFE, b"comment canary"));
        jpeg.extend(segment(0xDB, &[0u8; 65]));
        jpeg.extend(segment(0xC0, &[8, 0, 1, 0, 1, 1, 1, 0x11, 0]));
        jpeg.extend(segment(0xDA, &[1, 1, 0, 0, 63, 0]));
        jpeg.extend_from_slice(&[0x12, 0x34, 0xFF, 0x00, 0x56, 0xFF, 0xD9]);
        let clean = strip(&jpeg).unwrap();
        let text = String::from_utf8_lossy(&clean);
        assert!(
            !text.contains("GPS-CANARY")
                && !text.contains("SAMSUNG")
                && !text.contains("comment canary")
        );
        assert!(clean.starts_with(&[0xFF, 0xD8]) && clean.ends_with(&[0xFF, 0xD9]));
        assert!(text.contains("JFIF"));
        assert_eq!(clean.len(), jpeg.len() - (4 + 52) - (4 + 14));
    }

    #[test]
    fn png_keeps_pixels_only() {
        fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
            let mut c = (data.len() as u32).to_be_bytes().to_vec();
            c.extend_from_slice(kind);
            c.extend_from_slice(data);
            c.extend_from_slice(&[0, 0, 0, 0]);
            c
        }
        let mut png = PNG_SIGNATURE.to_vec();
        png.extend(chunk(b"IHDR", &[0; 13]));
        png.extend(chunk(b"tEXt", b"Author\0canary-author"));
        png.extend(chunk(b"eXIf", b"GPS canary"));
        png.extend(chunk(b"IDAT", &[1, 2, 3]));
        png.extend(chunk(b"IEND", &[]));
        let clean = strip(&png).unwrap();
        let text = String::from_utf8_lossy(&clean);
        assert!(!text.contains("canary"));
        assert!(text.contains("IHDR") && text.contains("IDAT") && text.contains("IEND"));
    }

    #[test]
    fn damaged_images_are_refused_not_passed_through() {
        assert!(strip(&[0xFF, 0xD8, 0xFF, 0xE1, 0xFF]).is_err());
        let mut png = PNG_SIGNATURE.to_vec();
        png.extend_from_slice(&[0, 0, 0, 200, b't', b'E', b'X', b't']);
        assert!(strip(&png).is_err());
        assert_eq!(strip(b"plain audio").unwrap(), b"plain audio");
    }
}
