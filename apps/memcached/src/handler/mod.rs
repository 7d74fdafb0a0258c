//! Handler.
/// x
pub const DEFAULT_VERSION: &str = "1.6.21";
