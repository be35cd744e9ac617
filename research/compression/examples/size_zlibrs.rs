// flate2 + zlib-rs raw deflate encoder + decoder with set_dictionary.
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
fn main() {
    let d = std::fs::read(std::env::args().nth(1).unwrap()).unwrap();
    let mut c = Compress::new_with_window_bits(Compression::best(), false, 15);
    c.set_dictionary(b"dict").unwrap();
    let mut v = Vec::with_capacity(d.len() + 1024);
    c.compress_vec(&d, &mut v, FlushCompress::Finish).unwrap();
    let mut x = Decompress::new_with_window_bits(false, 15);
    x.set_dictionary(b"dict").unwrap();
    let mut o = vec![0u8; 65510];
    x.decompress(&v, &mut o, FlushDecompress::Finish).unwrap();
    println!("{} {}", v.len(), x.total_out());
}
