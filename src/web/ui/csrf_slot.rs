//! The CSRF token as a page's template writes it ([`CsrfToken`]).

use std::fmt;

/// What a gap writes where a token goes, in HTML rendered to be kept and reused with other
/// requests' tokens (the user table's rows and, for gzip answers, its page). Nothing else in
/// a page can write it: every text a page shows is escaped (no raw `<`), and the templates'
/// own text holds no NUL.
pub const CSRF_GAP: &str = "<\u{0}csrf>";

/// The layout's CSRF token: the request's own (masked for this response), or a gap that each
/// answer fills with its own ([`CSRF_GAP`]).
#[derive(Debug, Clone)]
pub struct CsrfToken(Option<String>);

impl CsrfToken {
    pub fn new(token: String) -> Self {
        Self(Some(token))
    }

    /// A gap where the token goes.
    pub fn gap() -> Self {
        Self(None)
    }

    /// The token, for a form of the page's own (empty for a gap).
    pub fn text(&self) -> &str {
        self.0.as_deref().unwrap_or_default()
    }
}

impl fmt::Display for CsrfToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_deref().unwrap_or(CSRF_GAP))
    }
}

/// Tokens are base64url (nothing to escape), and a gap must be written as it is.
impl askama::filters::HtmlSafe for CsrfToken {}

impl askama::FastWritable for CsrfToken {
    fn write_into(&self, dest: &mut dyn fmt::Write, _: &dyn askama::Values) -> askama::Result<()> {
        Ok(dest.write_str(self.0.as_deref().unwrap_or(CSRF_GAP))?)
    }
}
