// lz4_flex block encoder + bounded decoder.
fn main() {
    let d = std::fs::read(std::env::args().nth(1).unwrap()).unwrap();
    let c = lz4_flex::block::compress(&d);
    let mut o = vec![0u8; 65510];
    let n = lz4_flex::block::decompress_into(&c, &mut o).unwrap();
    println!("{} {}", c.len(), n);
}
