// miniz_oxide raw deflate encoder + bounded decoder.
fn main() {
    let d = std::fs::read(std::env::args().nth(1).unwrap()).unwrap();
    let c = miniz_oxide::deflate::compress_to_vec(&d, 9);
    let o = miniz_oxide::inflate::decompress_to_vec_with_limit(&c, 65510).unwrap();
    println!("{} {}", c.len(), o.len());
}
