//! Request-path checking for static files: an accepted path never leaves
//! the root (no `..`, no absolute path, no backslash or NUL, after
//! percent-decoding), and a directory redirect is never protocol-relative.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        seastar_http::static_files::invariants::check_path(s);
    }
});
