//! [`AdminArgs`]: the `--admin-*` options every app flattens into its own
//! `clap` parser.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use super::{Admin, AdminError, AdminServer};

/// `--admin-port`, `--admin-address`, `--admin-token-file`.
///
/// ```
/// use clap::Parser;
/// use seastar_http::admin::AdminArgs;
///
/// #[derive(Parser)]
/// struct Args {
///     #[command(flatten)]
///     admin: AdminArgs,
/// }
///
/// let off = Args::parse_from(["app"]);
/// assert_eq!(off.admin.addr(), None);
/// let on = Args::parse_from(["app", "--admin-port", "9000"]);
/// assert_eq!(on.admin.addr(), Some("127.0.0.1:9000".parse().unwrap()));
/// assert_eq!(on.admin.exposure_warning(), None);
/// let wide = Args::parse_from(["app", "--admin-port", "9000", "--admin-address", "0.0.0.0"]);
/// assert!(wide.admin.exposure_warning().is_some());
/// ```
#[derive(clap::Args, Clone, Debug, Default)]
pub struct AdminArgs {
    /// Serve the admin REST API (`/api/v1/...`) and the live dashboard
    /// (`/`) on this port (0: any free port); off unless given.
    #[arg(long = "admin-port", value_name = "PORT")]
    pub admin_port: Option<u16>,
    /// Address of the admin port; loopback unless given (any other
    /// address prints a warning: the API shows the app's internals).
    #[arg(long = "admin-address", value_name = "ADDR")]
    pub admin_address: Option<IpAddr>,
    /// A file holding a bearer token that `/api/*` requests must carry
    /// (`Authorization: Bearer TOKEN`; the dashboard takes it as
    /// `/#token=TOKEN`); without it, no token is asked for.
    #[arg(long = "admin-token-file", value_name = "PATH")]
    pub admin_token_file: Option<PathBuf>,
}

impl AdminArgs {
    /// The address to serve on, `None` when the admin port is off.
    pub fn addr(&self) -> Option<SocketAddr> {
        let ip = self
            .admin_address
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        self.admin_port.map(|p| SocketAddr::new(ip, p))
    }

    /// The warning to print when the admin port is reachable from
    /// elsewhere than this host.
    pub fn exposure_warning(&self) -> Option<String> {
        let addr = self.addr()?;
        (!addr.ip().is_loopback()).then(|| {
            let auth = if self.admin_token_file.is_some() {
                "a bearer token is required"
            } else {
                "no token is required (--admin-token-file)"
            };
            format!(
                "warning: the admin API on {addr} is reachable from other hosts and shows this \
                 process's internals; {auth}"
            )
        })
    }

    /// The token from `--admin-token-file` (surrounding whitespace
    /// trimmed), `None` without the option.
    ///
    /// # Errors
    ///
    /// The file cannot be read, or holds no token.
    pub fn token(&self) -> Result<Option<String>, AdminError> {
        let Some(path) = &self.admin_token_file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path).map_err(|source| AdminError::TokenFile {
            path: path.clone(),
            source,
        })?;
        let token = text.trim();
        if token.is_empty() {
            return Err(AdminError::EmptyToken(path.clone()));
        }
        Ok(Some(token.to_owned()))
    }

    /// Starts `admin` as these options say: nothing when the admin port is
    /// off; otherwise with the token file's token, after printing the
    /// exposure warning (stderr) when it applies.
    ///
    /// # Errors
    ///
    /// A bad token file, or the address cannot be bound.
    pub async fn start(&self, admin: Admin) -> Result<Option<AdminServer>, AdminError> {
        let Some(addr) = self.addr() else {
            return Ok(None);
        };
        let admin = admin.token(self.token()?);
        if let Some(w) = self.exposure_warning() {
            eprintln!("{w}");
            tracing::warn!("{w}");
        }
        AdminServer::start(addr, admin).await.map(Some)
    }
}
