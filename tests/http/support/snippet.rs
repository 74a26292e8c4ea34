//! The proxy configurations in the docs are the ones the tests run: a snippet sits in the
//! Markdown between `<!-- snippet:NAME -->` and `<!-- /snippet -->` around one fenced block,
//! and a test takes it from there, replacing only its placeholders. The docs cannot drift
//! from what is tested.

/// The fenced block of snippet `name` in `doc` (a path under the repository root).
pub fn from_doc(doc: &str, name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(doc);
    let text = std::fs::read_to_string(&path).unwrap();
    let open = format!("<!-- snippet:{name} -->");
    let start = text
        .find(&open)
        .unwrap_or_else(|| panic!("{doc} has no {open}"))
        + open.len();
    let end = start
        + text[start..]
            .find("<!-- /snippet -->")
            .unwrap_or_else(|| panic!("{doc}: snippet {name} is not closed"));
    let inner = &text[start..end];
    let fence = inner.find("```").expect("a fenced block in the snippet");
    let body_start = fence + inner[fence..].find('\n').unwrap() + 1;
    let body_end = body_start + inner[body_start..].find("```").expect("the closing fence");
    inner[body_start..body_end].to_owned()
}

/// `snippet` with each `(placeholder, value)` replaced; every placeholder must occur (a
/// renamed placeholder in the docs fails the test instead of silently testing nothing).
pub fn fill(snippet: &str, replacements: &[(&str, String)]) -> String {
    let mut out = snippet.to_owned();
    for (placeholder, value) in replacements {
        assert!(
            out.contains(placeholder),
            "placeholder {placeholder:?} not in the snippet:\n{out}"
        );
        out = out.replace(placeholder, value);
    }
    out
}
