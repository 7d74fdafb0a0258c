//! A check that an app's `--help` says what each option does and what it
//! is when not given, for apps' own tests.

/// Words by which an option's help names what happens when it is not
/// given, when clap shows no `[default: …]` for it.
const DEFAULT_WORDS: &[&str] = &[
    "default",
    "off",
    "unless",
    "without",
    "if not given",
    "when not given",
    "none",
];

/// The options of `cmd` (and of its subcommands) whose help is missing,
/// or which take a value, are optional and neither have a default value
/// nor say in their help what holds without them (a word such as
/// "default", "off" or "unless"). Each entry names the command and the
/// option. Empty when the help is complete.
///
/// ```
/// use clap::{CommandFactory, Parser};
///
/// #[derive(Parser)]
/// struct Good {
///     /// Port to listen on.
///     #[arg(long, default_value_t = 10000)]
///     port: u16,
///     /// Serve metrics on this port; off unless given.
///     #[arg(long)]
///     metrics_port: Option<u16>,
/// }
/// assert!(seastar_core::runtime::help_gaps(&Good::command()).is_empty());
///
/// #[derive(Parser)]
/// struct Bad {
///     #[arg(long)]
///     undocumented: bool,
///     /// A limit on something.
///     #[arg(long)]
///     limit: Option<u32>,
/// }
/// let gaps = seastar_core::runtime::help_gaps(&Bad::command().name("bad"));
/// assert_eq!(gaps, ["bad --undocumented: no help", "bad --limit: no default stated"]);
/// ```
pub fn help_gaps(cmd: &clap::Command) -> Vec<String> {
    let mut gaps = Vec::new();
    collect(cmd, cmd.get_name(), &mut gaps);
    gaps
}

fn collect(cmd: &clap::Command, path: &str, gaps: &mut Vec<String>) {
    for arg in cmd.get_arguments() {
        let id = arg.get_id().as_str();
        if id == "help" || id == "version" {
            continue;
        }
        let name = match (arg.get_long(), arg.get_short()) {
            (Some(l), _) => format!("--{l}"),
            (None, Some(s)) => format!("-{s}"),
            (None, None) => format!("<{id}>"),
        };
        let help = (arg.get_long_help().or(arg.get_help()))
            .map(|h| h.to_string())
            .unwrap_or_default();
        if help.trim().is_empty() {
            gaps.push(format!("{path} {name}: no help"));
            continue;
        }
        let takes_value = arg.get_action().takes_values();
        let optional = !arg.is_required_set() && !arg.is_positional();
        let lower = help.to_lowercase();
        if takes_value
            && optional
            && arg.get_default_values().is_empty()
            && !DEFAULT_WORDS.iter().any(|w| lower.contains(w))
        {
            gaps.push(format!("{path} {name}: no default stated"));
        }
    }
    for sub in cmd.get_subcommands() {
        if sub.get_name() != "help" {
            collect(sub, &format!("{path} {}", sub.get_name()), gaps);
        }
    }
}

/// A test that `$args` (a `clap::Parser`) has no [`help_gaps`], for an
/// app's own tests:
///
/// ```
/// #[derive(clap::Parser)]
/// struct Args {
///     /// Port to listen on.
///     #[arg(long, default_value_t = 10000)]
///     port: u16,
/// }
///
/// #[cfg(test)]
/// mod tests {
///     seastar_core::help_test!(super::Args);
/// }
/// ```
#[macro_export]
macro_rules! help_test {
    ($args:ty) => {
        #[test]
        fn help_says_what_each_option_does_and_its_default() {
            let cmd = <$args as ::clap::CommandFactory>::command();
            let gaps = $crate::runtime::help_gaps(&cmd);
            assert!(gaps.is_empty(), "{gaps:#?}");
        }
    };
}
