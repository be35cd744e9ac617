//! `uniffi-bindgen`: generates Kotlin, Swift and Python sources from the
//! metadata compiled into `libamparo_ffi` (proc-macros, no UDL), e.g.
//! `cargo run -p uniffi-bindgen -- generate --library target/debug/libamparo_ffi.so --language kotlin --out-dir out/`.

fn main() {
    uniffi::uniffi_bindgen_main()
}
