//! The command line, in redis-server's form: `flurrydb-server [config-file] [--name value ...]`.
//! As in Redis's `main()` (server.c), every `--name` starts a config line and the arguments after it
//! are its values (quoted as `sdscatrepr` does); those lines are read after the config file, so the
//! command line wins, and any parameter of the table can be given.

use std::io::Read;
use std::path::PathBuf;

use super::{Config, ConfigError};

/// What the command line asks for.
#[derive(Debug)]
pub enum Invocation {
    /// Run the server with this configuration source.
    Run(Cli),
    /// `-h` / `--help`.
    Help,
    /// `-v` / `--version`.
    Version,
}

/// The configuration sources named on the command line.
#[derive(Debug, Default)]
pub struct Cli {
    /// A redis.conf-syntax configuration file, read before the options.
    pub config_file: Option<PathBuf>,
    /// `-` as the first or last argument: read config lines from standard input after the file.
    pub config_from_stdin: bool,
    /// The `--name value` options as config file lines.
    pub options: String,
}

pub const USAGE: &str = "Usage: ./flurrydb-server [/path/to/redis.conf] [options] [-]
       ./flurrydb-server - (read config from stdin)
       ./flurrydb-server -v or --version
       ./flurrydb-server -h or --help

Examples:
       ./flurrydb-server (run the server with default conf)
       ./flurrydb-server /etc/redis/6379.conf
       ./flurrydb-server --port 7777
       ./flurrydb-server /etc/myredis.conf --loglevel verbose -
       ./flurrydb-server /etc/myredis.conf --save 60 1 --appendonly yes

Every redis.conf directive can be given as --name value (see README, Configuration).";

/// `sdscatrepr`: a double-quoted string that the config line splitter reads back unchanged.
fn repr(arg: &str, out: &mut String) {
    let mut quoted = Vec::with_capacity(arg.len() + 2);
    crate::util::cat_repr(arg.as_bytes(), &mut quoted);
    // Only printable ASCII comes out.
    out.push_str(&String::from_utf8_lossy(&quoted));
}

/// What clap reads of the command line: the help and version flags, and every other argument
/// as it came (config file, `--name value ...`, `-`), which [`Cli::parse_from`] then turns into
/// config lines as redis-server's `main()` does. Help prints Redis's usage text on standard error
/// and exits 1, as redis-server does, so clap's own help flag is off.
#[derive(clap::Parser, Debug)]
#[command(name = "flurrydb-server", disable_help_flag = true, disable_version_flag = true)]
struct Args {
    #[arg(short = 'h', long = "help")]
    help: bool,
    #[arg(short = 'v', long = "version")]
    version: bool,
    /// `[config-file] [--name value ...] [-]`
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    rest: Vec<String>,
}

impl Cli {
    /// The process's own command line.
    pub fn from_env() -> Invocation {
        Cli::from_args(std::env::args())
    }

    /// Read a whole command line (program name first) through clap.
    pub fn from_args<I: IntoIterator<Item = String>>(args: I) -> Invocation {
        use clap::Parser;
        match Args::try_parse_from(args) {
            Ok(a) if a.version => Invocation::Version,
            Ok(a) if a.help => Invocation::Help,
            Ok(a) => Invocation::Run(Cli::parse_from(a.rest)),
            Err(_) => Invocation::Help,
        }
    }

    /// Read the arguments after the program name.
    pub fn parse_from<I: IntoIterator<Item = S>, S: Into<String>>(args: I) -> Cli {
        let argv: Vec<String> = args.into_iter().map(Into::into).collect();
        let mut cli = Cli::default();
        let mut j = 0;
        if let Some(first) = argv.first()
            && !first.starts_with('-')
        {
            cli.config_file = Some(PathBuf::from(first));
            j = 1;
        }
        let mut last_has_arg = true;
        while j < argv.len() {
            let arg = &argv[j];
            let next_is_option = argv.get(j + 1).is_some_and(|n| n.starts_with("--"));
            if arg == "-" && (j == 0 || j == argv.len() - 1) {
                cli.config_from_stdin = true;
            } else if last_has_arg && arg.starts_with("--") {
                if !cli.options.is_empty() {
                    cli.options.push('\n');
                }
                cli.options.push_str(&arg[2..]);
                cli.options.push(' ');
                // `--name` alone waits for its value; `"--name value"` in one argument has it.
                last_has_arg = arg.split_whitespace().count() > 1;
                // `--save` with nothing after it means `--save ""`, as in Redis 7.0.
                if !last_has_arg && arg.eq_ignore_ascii_case("--save") && (next_is_option || j == argv.len() - 1) {
                    cli.options.push_str("\"\"");
                    last_has_arg = true;
                }
            } else {
                repr(arg, &mut cli.options);
                cli.options.push(' ');
                last_has_arg = true;
            }
            j += 1;
        }
        cli
    }

    /// Build the configuration: defaults, then the file, then standard input, then the options.
    pub fn into_config(self) -> Result<Config, ConfigError> {
        let mut cfg = Config::default();
        let mut text = String::new();
        if let Some(path) = &self.config_file {
            text = std::fs::read_to_string(path)
                .map_err(|e| ConfigError(format!("Fatal error, can't open config file '{}': {e}", path.display())))?;
            cfg.config_file = Some(std::fs::canonicalize(path).unwrap_or_else(|_| path.clone()));
        }
        if self.config_from_stdin {
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| ConfigError(format!("Fatal error, can't read config from stdin: {e}")))?;
        }
        if !self.options.is_empty() {
            text.push('\n');
            text.push_str(&self.options);
        }
        cfg.apply_file_text(&text)?;
        // As Redis: a log file that cannot be opened stops startup instead of losing the log.
        if !cfg.logfile.is_empty()
            && let Err(e) = std::fs::OpenOptions::new().create(true).append(true).open(&cfg.logfile)
        {
            let why = crate::util::os_error_text(&e);
            return Err(ConfigError(format!(
                "\n*** FATAL CONFIG FILE ERROR (flurrydb {}) ***\nCan't open the log file: {why}",
                env!("CARGO_PKG_VERSION")
            )));
        }
        Ok(cfg)
    }
}
