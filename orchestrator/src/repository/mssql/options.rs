//! `mssql://` URLs, parsed into a tiberius [`Config`].
//!
//! ```text
//! mssql://USER:PASSWORD@HOST[:PORT][/DATABASE][?encrypt=required|login|off][&trust_cert=true|false]
//! ```
//!
//! `sqlserver://` is the same. USER and PASSWORD are percent-decoded (the SQL Server image's
//! default password `yourStrong(!)Password` needs no escaping, but `@`, `:` and `/` do). The
//! port defaults to 1433 and the database to the login's default. `encrypt=required` (the
//! default) encrypts the whole session and fails without TLS; `login` encrypts only the login
//! packet; `off` sends nothing encrypted (the server must not force encryption).
//! `trust_cert=true` accepts the server's certificate unchecked, as a self-signed one must be
//! (a container's, a developer's server).

use tiberius::{AuthMethod, Config, EncryptionLevel};

/// The parts of a URL that name what to connect to, for messages and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Options {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub database: Option<String>,
    pub encrypt: Encrypt,
    pub trust_cert: bool,
}

/// The `encrypt` URL parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encrypt {
    Required,
    Login,
    Off,
}

pub(crate) const DEFAULT_PORT: u16 = 1433;

impl Options {
    /// Parses an `mssql://` or `sqlserver://` URL; the error is the reason, for one line.
    pub fn parse(url: &str) -> Result<Options, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
        if !matches!(parsed.scheme(), "mssql" | "sqlserver") {
            return Err(format!(
                "scheme `{}` is not mssql:// or sqlserver://",
                parsed.scheme()
            ));
        }
        let host = match parsed.host_str() {
            // An IPv6 host keeps its brackets: tiberius joins host and port with a `:`.
            Some(h) if !h.is_empty() => h,
            _ => return Err("the URL names no host".into()),
        };
        let decode = |s: &str| {
            percent_decode(s).ok_or_else(|| {
                "the user or password is not valid percent-encoded UTF-8".to_string()
            })
        };
        let user = decode(parsed.username())?;
        if user.is_empty() {
            return Err("the URL names no user (SQL Server logins need one)".into());
        }
        let password = decode(parsed.password().unwrap_or(""))?;
        let database = match parsed.path().trim_start_matches('/') {
            "" => None,
            db if db.contains('/') => {
                return Err(format!("`{db}` is not a database name"));
            }
            db => Some(decode(db)?),
        };
        let mut options = Options {
            host: host.to_string(),
            port: parsed.port().unwrap_or(DEFAULT_PORT),
            user,
            password,
            database,
            encrypt: Encrypt::Required,
            trust_cert: false,
        };
        for (k, v) in parsed.query_pairs() {
            match (&*k, &*v) {
                ("encrypt", "required" | "true" | "yes") => options.encrypt = Encrypt::Required,
                ("encrypt", "login") => options.encrypt = Encrypt::Login,
                ("encrypt", "off" | "false" | "no") => options.encrypt = Encrypt::Off,
                ("trust_cert" | "trustServerCertificate", "true" | "yes") => {
                    options.trust_cert = true
                }
                ("trust_cert" | "trustServerCertificate", "false" | "no") => {
                    options.trust_cert = false
                }
                ("encrypt" | "trust_cert" | "trustServerCertificate", _) => {
                    return Err(format!("`{k}={v}` is not a valid setting"));
                }
                _ => {
                    return Err(format!(
                        "unknown URL parameter `{k}` (known: encrypt, trust_cert)"
                    ));
                }
            }
        }
        Ok(options)
    }

    pub fn config(&self) -> Config {
        let mut c = Config::new();
        c.host(&self.host);
        c.port(self.port);
        if let Some(db) = &self.database {
            c.database(db);
        }
        c.authentication(AuthMethod::sql_server(&self.user, &self.password));
        c.application_name("flowbench");
        c.encryption(match self.encrypt {
            Encrypt::Required => EncryptionLevel::Required,
            Encrypt::Login => EncryptionLevel::Off,
            Encrypt::Off => EncryptionLevel::NotSupported,
        });
        if self.trust_cert {
            c.trust_cert();
        }
        c
    }
}

/// Userinfo and path stay percent-encoded in a parsed `url::Url`.
fn percent_decode(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_url_is_parsed() {
        let o = Options::parse(
            "mssql://sa:p%40ss%3Aw@db.local:14330/flowbench?encrypt=off&trust_cert=true",
        )
        .unwrap();
        assert_eq!(
            o,
            Options {
                host: "db.local".into(),
                port: 14330,
                user: "sa".into(),
                password: "p@ss:w".into(),
                database: Some("flowbench".into()),
                encrypt: Encrypt::Off,
                trust_cert: true,
            }
        );
        assert_eq!(o.config().get_addr(), "db.local:14330");
    }

    #[test]
    fn defaults_are_port_1433_required_encryption_and_the_login_database() {
        let o = Options::parse("sqlserver://sa:yourStrong(!)Password@127.0.0.1").unwrap();
        assert_eq!(o.port, DEFAULT_PORT);
        assert_eq!(o.password, "yourStrong(!)Password");
        assert_eq!(o.database, None);
        assert_eq!(o.encrypt, Encrypt::Required);
        assert!(!o.trust_cert);
        assert_eq!(
            Options::parse("mssql://sa:x@h/db?encrypt=login")
                .unwrap()
                .encrypt,
            Encrypt::Login
        );
    }

    #[test]
    fn bad_urls_say_why() {
        for (url, why) in [
            ("mssql://h/db", "no user"),
            ("mssql://sa:x@h/db?encrypt=maybe", "`encrypt=maybe`"),
            (
                "mssql://sa:x@h/db?instance=X",
                "unknown URL parameter `instance`",
            ),
            ("mssql://sa:x@h/a/b", "not a database name"),
            ("mssql://sa:%ff@h/db", "percent-encoded UTF-8"),
            ("postgres://sa:x@h/db", "scheme"),
            ("mssql://sa:x@h:notaport/db", "not a URL"),
        ] {
            let err = Options::parse(url).expect_err(url);
            assert!(err.contains(why), "{url}: {err}");
        }
    }

    #[test]
    fn ipv6_hosts_keep_their_brackets() {
        let o = Options::parse("mssql://sa:x@[::1]:1433/db").unwrap();
        assert_eq!(o.config().get_addr(), "[::1]:1433");
    }
}
