//! Streams over a [`DmaFile`](crate::DmaFile): [`FileInputStream`] keeps
//! several reads in flight ahead of the consumer (read-ahead),
//! [`FileOutputStream`] keeps several writes in flight behind the producer
//! (write-behind). Both move whole aligned buffers and handle the parts of
//! a file that are not aligned: an input stream starts and ends anywhere;
//! an output stream pads its last block and then cuts the file to the
//! exact length written.

mod input;
mod output;

pub use input::{FileInputStream, InputStreamOptions};
pub use output::{FileOutputStream, OutputStreamOptions};
