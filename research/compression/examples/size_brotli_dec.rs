// brotli decoder only (what a focal point's desk needs).
use std::io::Read;
fn main() {
    let d = std::fs::read(std::env::args().nth(1).unwrap()).unwrap();
    let mut o = Vec::new();
    brotli_decompressor::Decompressor::new(&d[..], 4096).take(65511).read_to_end(&mut o).unwrap();
    println!("{}", o.len());
}
