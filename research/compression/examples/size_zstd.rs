// zstd (C) encoder + bounded decoder.
fn main() {
    let d = std::fs::read(std::env::args().nth(1).unwrap()).unwrap();
    let c = zstd::bulk::compress(&d, 19).unwrap();
    let o = zstd::bulk::decompress(&c, 65510).unwrap();
    println!("{} {}", c.len(), o.len());
}
