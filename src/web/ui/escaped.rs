//! Text escaped for HTML once, which templates then write as it is.

use std::fmt;

/// Text already escaped for HTML. askama writes it without escaping it again (it is
/// [`askama::filters::HtmlSafe`]), so `{{ value }}` stays the plain way to write it. For what a
/// page writes many times: a user-table row names its account in its link and in five
/// attributes, and a page has 50 rows; escaping each use byte by byte was a third of the
/// page's instructions (bench/README.md).
///
/// The only way to make one is [`Escaped::text`], which escapes: a value of this type is
/// always safe to write into an element or a quoted attribute.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Escaped(String);

impl Escaped {
    /// `raw`, escaped.
    pub fn text(raw: &str) -> Self {
        use askama::filters::Escaper;
        // Most texts (names, dates, addresses) have nothing to escape: one quick scan, one
        // copy, instead of askama's byte-by-byte writer.
        if !raw
            .bytes()
            .any(|b| matches!(b, b'<' | b'>' | b'&' | b'"' | b'\''))
        {
            return Self(raw.to_owned());
        }
        let mut out = String::with_capacity(raw.len() + 16);
        // Writing into a String cannot fail.
        let _ = askama::filters::Html.write_escaped_str(&mut out, raw);
        Self(out)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The escaped text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Escaped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl askama::filters::HtmlSafe for Escaped {}

/// Written as it is, without going through `fmt` (askama prefers this to `Display`).
impl askama::FastWritable for Escaped {
    fn write_into(&self, dest: &mut dyn fmt::Write, _: &dyn askama::Values) -> askama::Result<()> {
        Ok(dest.write_str(&self.0)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use askama::Template;

    #[derive(Template)]
    #[template(source = "<p title=\"{{ e }}\">{{ e }}|{{ raw }}</p>", ext = "html")]
    struct Page<'a> {
        e: Escaped,
        raw: &'a str,
    }

    #[test]
    fn escaped_once_and_written_as_it_is() {
        let text = r#"<b>"Tom" & 'Jerry'</b>"#;
        let html = Page {
            e: Escaped::text(text),
            raw: text,
        }
        .render()
        .unwrap();
        let once = "&#60;b&#62;&#34;Tom&#34; &#38; &#39;Jerry&#39;&#60;/b&#62;";
        assert_eq!(html, format!("<p title=\"{once}\">{once}|{once}</p>"));
        assert!(Escaped::text("").is_empty() && !Escaped::text("a").is_empty());
        // Nothing to escape: the text itself.
        assert_eq!(
            Escaped::text("Zoë 2026-11-30").to_string(),
            "Zoë 2026-11-30"
        );
    }
}
