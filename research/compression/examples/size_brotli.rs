// brotli encoder (q11, lgwin 16) + decoder, std Read/Write API.
use std::io::{Read, Write};
fn main() {
    let d = std::fs::read(std::env::args().nth(1).unwrap()).unwrap();
    let mut c = Vec::new();
    { let mut w = brotli::CompressorWriter::new(&mut c, 4096, 11, 16); w.write_all(&d).unwrap(); }
    let mut o = Vec::new();
    brotli::Decompressor::new(&c[..], 4096).take(65511).read_to_end(&mut o).unwrap();
    println!("{} {}", c.len(), o.len());
}
