//! `io_tester`: runs a mix of file I/O jobs through seastar-io's scheduler
//! and reports per-job IOPS, bandwidth and latency percentiles.
//!
//! | module | what it holds |
//! |---|---|
//! | [`job`] | the job description syntax and parser |
//! | [`run`] | preparing the file, running the jobs on every shard, the report |

pub mod job;
pub mod run;
