// Binary-size baseline: read a file, print its length.
fn main() { let d = std::fs::read(std::env::args().nth(1).unwrap()).unwrap(); println!("{}", std::hint::black_box(d).len()); }
