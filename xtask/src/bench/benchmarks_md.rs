//! `BENCHMARKS.md` at the repo root: one section per suite, replaced in place.

use super::machine::Machine;

fn begin(suite: &str) -> String {
    format!("<!-- bench:{suite}:begin -->")
}

fn end(suite: &str) -> String {
    format!("<!-- bench:{suite}:end -->")
}

/// The file's header, written when the file does not exist yet.
pub fn header(machine: &Machine) -> String {
    format!(
        "# Benchmarks\n\n\
         Written by `cargo xtask bench <suite>`: each full run (not `--quick`) replaces its \
         suite's section below; do not edit between the markers.\n\n\
         Machine of the first run: {} cores, {}, Linux {} (each section names its own).\n\n\
         Method: every figure is a ratio against the peer a user would otherwise pick, measured \
         in the same run on the same machine. The server runs on CPU 0 (`taskset -c 0`) and the \
         load generator on CPU 1 (`taskset -c 1`) unless a case says unpinned; ours and the peer \
         alternate (A B A B ...), a fresh server per run, after a discarded warm-up. Each run \
         records the server's CPU time (utime + stime of all its threads, from /proc/PID/stat) so \
         that every case reports throughput and throughput per server CPU-second, plus the CPU \
         used by other processes during the run; the server suites also split the server's CPU \
         per operation into user space and kernel (for a loopback server the kernel part is \
         mostly TCP work, the same for every server). Ratios are per run, quoted as median \
         (min–max); above 1 means ours is better. Differences under about 10% are noise.\n",
        machine.cores, machine.cpu_model, machine.kernel
    )
}

/// Puts `section` (a Markdown section for `suite`) into `doc`, replacing the text
/// between the suite's markers if present, else appending it.
pub fn replace_section(doc: &str, suite: &str, section: &str) -> String {
    let (b, e) = (begin(suite), end(suite));
    let block = format!("{b}\n{}\n{e}", section.trim_end());
    if let Some(start) = doc.find(&b) {
        if let Some(stop) = doc[start..].find(&e).map(|i| start + i + e.len()) {
            return format!("{}{block}{}", &doc[..start], &doc[stop..]);
        }
    }
    let sep = if doc.is_empty() || doc.ends_with("\n\n") {
        ""
    } else if doc.ends_with('\n') {
        "\n"
    } else {
        "\n\n"
    };
    format!("{doc}{sep}{block}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_then_replaces_in_place() {
        let doc = "# Benchmarks\n\nintro\n";
        let one = replace_section(doc, "net", "## net\n\nfirst\n");
        assert_eq!(
            one,
            "# Benchmarks\n\nintro\n\n<!-- bench:net:begin -->\n## net\n\nfirst\n<!-- bench:net:end -->\n"
        );
        let two = replace_section(&one, "core", "## core\n\nc\n");
        let three = replace_section(&two, "net", "## net\n\nsecond\n");
        assert!(three.contains("second") && !three.contains("first"));
        // Order is kept: net stays before core.
        assert!(three.find("## net").unwrap() < three.find("## core").unwrap());
        assert_eq!(three.matches("bench:net:begin").count(), 1);
        // Replacing with the same text is idempotent.
        assert_eq!(replace_section(&three, "net", "## net\n\nsecond\n"), three);
    }

    #[test]
    fn header_names_machine() {
        let m = Machine {
            cores: 2,
            cpu_model: "EPYC".into(),
            kernel: "6.1".into(),
        };
        let h = header(&m);
        assert!(h.starts_with("# Benchmarks\n") && h.contains("2 cores, EPYC, Linux 6.1"));
    }
}
