//! Password redaction for database URLs written into results and reports.

/// What a redacted password is replaced with.
const MASK: &str = "***";

/// Replaces the password in a database URL with `***`, leaving the rest as written.
///
/// Handles the userinfo form (`postgres://user:pass@host/db`) and password
/// parameters (`?password=…`, and the `;password=…` style SQL Server
/// connection strings use). A URL without a password comes back unchanged.
///
/// This is a scan rather than a `url::Url` round-trip on purpose: SQL Server's
/// `sqlserver://host;user=sa;password=…` form is not a WHATWG URL, and a parse
/// and re-render would also normalise the parts we mean to keep as written.
pub fn redact_url(url: &str) -> String {
    let mut out = redact_userinfo(url);
    for key in ["password", "pwd", "pass"] {
        out = redact_param(&out, key);
    }
    out
}

/// `scheme://user:pass@host` → `scheme://user:***@host`.
fn redact_userinfo(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let authority_start = scheme_end + 3;
    let rest = &url[authority_start..];
    // The last '@' before the query ends the userinfo. Passwords are meant to be
    // percent-encoded, but people paste them raw, '@' and '/' included, and
    // leaking one is worse than masking a little too much.
    let before_query = &rest[..rest.find(['?', '#', ';']).unwrap_or(rest.len())];
    let Some(at) = before_query.rfind('@') else {
        return url.to_string();
    };
    let userinfo = &before_query[..at];
    let Some(colon) = userinfo.find(':') else {
        return url.to_string();
    };
    format!(
        "{}{}:{MASK}{}",
        &url[..authority_start],
        &userinfo[..colon],
        &url[authority_start + at..]
    )
}

/// Masks the value of every `key=value` parameter (case-insensitive key) that
/// follows a `?`, `&` or `;`.
fn redact_param(url: &str, key: &str) -> String {
    let lower = url.to_ascii_lowercase();
    let mut out = String::with_capacity(url.len());
    let mut copied = 0;
    let mut search = 0;
    while let Some(found) = lower[search..].find(key) {
        let start = search + found;
        let value_start = start + key.len();
        search = value_start;
        let preceded = start > 0 && matches!(url.as_bytes()[start - 1], b'?' | b'&' | b';');
        let followed = url.as_bytes().get(value_start) == Some(&b'=');
        if !(preceded && followed) {
            continue;
        }
        let value_start = value_start + 1;
        let value_end = url[value_start..]
            .find(['&', ';', '#'])
            .map_or(url.len(), |i| value_start + i);
        out.push_str(&url[copied..value_start]);
        out.push_str(MASK);
        copied = value_end;
        search = value_end;
    }
    out.push_str(&url[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn masks_the_userinfo_password() {
        assert_eq!(
            redact_url("postgres://bench:s3cret@localhost:5432/bench"),
            "postgres://bench:***@localhost:5432/bench"
        );
        assert_eq!(
            redact_url("mysql://root:p@ss@db.internal/kestra?ssl-mode=disabled"),
            "mysql://root:***@db.internal/kestra?ssl-mode=disabled"
        );
        assert_eq!(
            redact_url("postgres://u:pa/ss@h/db"),
            "postgres://u:***@h/db"
        );
    }

    #[test]
    fn masks_password_parameters() {
        assert_eq!(
            redact_url("postgres://localhost/bench?user=u&password=hunter2&sslmode=disable"),
            "postgres://localhost/bench?user=u&password=***&sslmode=disable"
        );
        assert_eq!(
            redact_url("sqlserver://localhost:1433;user=sa;Password=Str0ng!;encrypt=false"),
            "sqlserver://localhost:1433;user=sa;Password=***;encrypt=false"
        );
        assert_eq!(
            redact_url("mysql://a:b@h/db?pwd=x"),
            "mysql://a:***@h/db?pwd=***"
        );
    }

    #[test]
    fn leaves_urls_without_a_password_unchanged() {
        for url in [
            "sqlite://target/flowbench/bench.db",
            "sqlite::memory:",
            "postgres://bench@localhost/bench",
            "postgres://localhost/passwords_db?application_name=password",
            "",
        ] {
            assert_eq!(redact_url(url), url);
        }
    }
}
