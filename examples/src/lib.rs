//! The tutorial's programs. Each chapter of `docs/` quotes one program in
//! `src/bin/`; `tests/examples.rs` runs every one of them and checks its
//! output, and `tests/docs_quotes.rs` checks that the quotes in `docs/*.md`
//! are identical to the files.
