//! The rows of a page of the user table as the template writes them ([`TableRows`]), and
//! what a kept page keeps of them ([`KeptRows`]): each row's HTML, rendered once for every
//! request that shows the page.
//!
//! Once the rows' texts were built once per kept page (`row::Row`), writing the same 50 rows
//! through the template again at every request was most of what a kept page still cost: some
//! thirty small writes a row, each a bounds check and a copy (bench/README.md). A row looks
//! the same to every admin but the one it belongs to ("(you)", no actions on yourself), and
//! its only per-request text is the CSRF token of its forms. So the rows are rendered once
//! with a gap where the token goes, and a request writes the pieces with its own token in
//! between. A row that is the admin's own, or that shows why an action was refused, is
//! rendered at each request as before.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use askama::Template;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::row::{Row, RowView};
use crate::service::users::UserPage;
use crate::web::gzip::Gzip;
use crate::web::ui::{CsrfToken, Escaped};

/// What a gap writes while a row is rendered once (`back_url`, the one text a row writes
/// unescaped, is percent-encoded: it cannot write it either).
const GAP: &str = crate::web::ui::CSRF_GAP;

/// One row, as the table's template includes it.
#[derive(Template)]
#[template(path = "admin/user_row.html", whitespace = "minimize")]
struct RowHtml<'a> {
    u: &'a RowView,
    csrf_token: &'a CsrfToken,
    back: &'a Escaped,
    back_url: &'a str,
}

/// What the table keeps with a kept page (`UserPage::derived`): its rows, and their HTML for
/// the view of the table they were first shown in.
pub(super) struct KeptRows {
    rows: Vec<Arc<Row>>,
    html: OnceLock<Arc<RenderedRows>>,
    /// The rows compressed once for gzip answers, by whose own row is among them (`None`:
    /// nobody's, the same for every admin not on the page); at most [`GZIP_VIEWS`].
    gzipped: Mutex<Vec<(Option<i64>, Arc<GzipRows>)>>,
    /// How many gzip answers were asked of this page: its rows are compressed from the second
    /// on, so a page read once (paging through) costs no more than it did before.
    gzip_asks: AtomicU32,
}

/// How many viewers' compressed rows a kept page keeps: the one every admin not on the page
/// shares, and a few admins whose own row it shows.
const GZIP_VIEWS: usize = 4;

/// All the rows of a page as one viewer sees them, split at the gaps for the CSRF token, each
/// part with its deflate blocks (`web::gzip`).
struct GzipRows {
    parts: Vec<(Box<str>, Box<[u8]>)>,
    /// The text around the rows, compressed the same way, for the last few pages and
    /// fragments these rows were answered in ([`FRAMES`]).
    frames: Mutex<Vec<Arc<Frame>>>,
}

/// How many texts around the same rows are kept compressed: the page and the fragment, for
/// a few viewers (the page names its viewer in the header).
const FRAMES: usize = 4;

/// The text of a page around its rows (with gaps for the layout's token), and its pieces
/// compressed once. Reused while a request renders the very same text: it changes only with
/// what the page shows (the viewer, the filters, the pending badge, a notice), and all of
/// that is in the text compared.
struct Frame {
    head: String,
    tail: String,
    /// `head` split at its gaps, each piece with its deflate blocks; then `tail`'s blocks.
    head_parts: Vec<(Box<str>, Box<[u8]>)>,
    tail_blocks: Box<[u8]>,
}

impl GzipRows {
    /// The compressed frame for `head` and `tail`: kept, or compressed now and kept.
    fn frame(&self, head: &str, tail: &str) -> Option<Arc<Frame>> {
        if let Ok(frames) = self.frames.lock()
            && let Some(frame) = frames.iter().find(|f| f.head == head && f.tail == tail)
        {
            return Some(Arc::clone(frame));
        }
        let pieces: Vec<&str> = head.split(GAP).collect();
        let mut blocks = crate::web::gzip::deflate_parts(pieces.iter().copied().chain([tail]))?;
        let tail_blocks = blocks.pop()?;
        let frame = Arc::new(Frame {
            head: head.to_owned(),
            tail: tail.to_owned(),
            head_parts: pieces.into_iter().map(Box::from).zip(blocks).collect(),
            tail_blocks,
        });
        if let Ok(mut frames) = self.frames.lock() {
            if frames.len() >= FRAMES {
                frames.remove(0);
            }
            frames.push(Arc::clone(&frame));
        }
        Some(frame)
    }
}

/// Each row's HTML as any admin but its account sees it, with `back`, split at the gaps.
struct RenderedRows {
    back: String,
    rows: Vec<Vec<Box<str>>>,
}

impl KeptRows {
    fn build(page: &UserPage) -> Self {
        Self {
            rows: page
                .users
                .iter()
                .map(|u| Arc::new(Row::listed(u)))
                .collect(),
            html: OnceLock::new(),
            gzipped: Mutex::default(),
            gzip_asks: AtomicU32::new(0),
        }
    }

    /// The rows compressed for viewer `me` (compressed by the first request that asks), from
    /// their HTML `html` for `back`. `None` if compressing failed.
    fn gzipped(
        &self,
        me: i64,
        html: &RenderedRows,
        back: &Escaped,
        back_url: &str,
    ) -> Option<Arc<GzipRows>> {
        let own = self.rows.iter().any(|r| r.id == me).then_some(me);
        if let Ok(kept) = self.gzipped.lock()
            && let Some((_, rows)) = kept.iter().find(|(v, _)| *v == own)
        {
            return Some(Arc::clone(rows));
        }
        // All the rows with a gap mark for every token, the viewer's own row as it sees it.
        let size = html
            .rows
            .iter()
            .flatten()
            .map(|p| p.len() + GAP.len())
            .sum();
        let mut text = String::with_capacity(size);
        for (row, parts) in self.rows.iter().zip(&html.rows) {
            if row.id == me {
                let view = RowView::of(Arc::clone(row), me);
                let own = RowHtml {
                    u: &view,
                    csrf_token: &CsrfToken::gap(),
                    back,
                    back_url,
                };
                own.render_into(&mut text).ok()?;
            } else {
                text.push_str(&parts.join(GAP));
            }
        }
        let texts: Vec<&str> = text.split(GAP).collect();
        let deflated = crate::web::gzip::deflate_parts(texts.iter().copied())?;
        let rows = Arc::new(GzipRows {
            parts: texts.into_iter().map(Box::from).zip(deflated).collect(),
            frames: Mutex::default(),
        });
        if let Ok(mut kept) = self.gzipped.lock() {
            if kept.len() >= GZIP_VIEWS {
                kept.remove(0);
            }
            kept.push((own, Arc::clone(&rows)));
        }
        Some(rows)
    }

    /// The rows' HTML for `back` (rendered by the first request that asks), or `None` when
    /// they were rendered for another `back` (the request renders its own).
    fn html(&self, back: &Escaped, back_url: &str) -> Option<Arc<RenderedRows>> {
        let html = self.html.get_or_init(|| {
            let rows = self.rows.iter().map(|row| {
                let view = RowView::anyones(Arc::clone(row));
                let html = RowHtml {
                    u: &view,
                    csrf_token: &CsrfToken::gap(),
                    back,
                    back_url,
                }
                .render()
                // Rendering into a String fails only if a value's `Display` does, and none
                // of a row's does; a row that did is simply rendered at each request.
                .unwrap_or_default();
                html.split(GAP).map(Box::from).collect()
            });
            Arc::new(RenderedRows {
                back: back.as_str().to_owned(),
                rows: rows.collect(),
            })
        });
        (html.back == back.as_str()).then(|| Arc::clone(html))
    }
}

/// The rows of one page for one request, written by the table's template as `{{ rows }}`.
pub(super) struct TableRows {
    views: Vec<RowView>,
    /// The kept page's rendered rows, when they were rendered for this `back`.
    rendered: Option<Arc<RenderedRows>>,
    /// The same rows compressed, when the answer is to be gzip and they could be.
    gzipped: Option<Arc<GzipRows>>,
    /// Write [`ROWS_MARK`] instead of the rows: a gzip answer puts them in (`GzipAnswer`).
    mark: bool,
    csrf_token: CsrfToken,
    back: Escaped,
    /// `back` encoded for links (`row::back_url`).
    back_url: String,
}

impl TableRows {
    /// The rows of `page` as admin `me` sees them, their forms carrying `csrf_token` and
    /// `back` (this view of the table, to come back to).
    /// With `gzip`, the rows are also made ready for a gzip answer ([`TableRows::gzip`]).
    pub(super) fn page(page: &UserPage, me: i64, csrf_token: &str, back: &str, gzip: bool) -> Self {
        let back_url = super::row::back_url(back);
        let back = Escaped::text(back);
        let (views, rendered, gzipped) = match page.derived(KeptRows::build) {
            Some(kept) => {
                let rendered = kept.html(&back, &back_url);
                let gzipped = match &rendered {
                    Some(html) if gzip && kept.gzip_asks.fetch_add(1, Ordering::Relaxed) > 0 => {
                        kept.gzipped(me, html, &back, &back_url)
                    }
                    _ => None,
                };
                let views = kept.rows.iter().map(|r| RowView::of(Arc::clone(r), me));
                (views.collect(), rendered, gzipped)
            }
            None => {
                let kept = KeptRows::build(page);
                let views = kept.rows.into_iter().map(|r| RowView::of(r, me));
                (views.collect(), None, None)
            }
        };
        Self {
            views,
            rendered,
            gzipped,
            mark: false,
            csrf_token: CsrfToken::new(csrf_token.to_owned()),
            back,
            back_url,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.views.is_empty()
    }

    pub(super) fn len(&self) -> usize {
        self.views.len()
    }

    /// Shows by row `id`'s actions why one of them was refused.
    pub(super) fn refuse(&mut self, id: i64, why: &str) {
        for u in self.views.iter_mut().filter(|u| u.id == id) {
            u.error = Some(why.to_owned());
            // The compressed rows show no refusal.
            self.gzipped = None;
        }
    }

    /// For a gzip answer: the rows as compressed pieces, when they are ready (a kept page,
    /// asked with `gzip`). The template then writes [`ROWS_MARK`] where the rows go, and
    /// [`GzipAnswer::response`] puts them there. `None`: render and compress as usual.
    pub(super) fn gzip(&mut self) -> Option<GzipAnswer> {
        let rows = self.gzipped.take()?;
        self.mark = true;
        Some(GzipAnswer {
            rows,
            token: self.csrf_token.clone(),
        })
    }
}

/// What a page's HTML holds where its rows go in a gzip answer: like [`GAP`], nothing else in
/// a page can write it.
const ROWS_MARK: &str = "<\u{0}rows>";

/// The rows of a gzip answer, and the request's CSRF token to put in their gaps.
pub(super) struct GzipAnswer {
    rows: Arc<GzipRows>,
    token: CsrfToken,
}

impl GzipAnswer {
    /// The page `html` (rendered with [`ROWS_MARK`] for its rows and gaps for the layout's
    /// token, `layout_token`) as a gzip answer: every piece as it was compressed before (the
    /// text around the rows the first time a request rendered the same), the tokens stored
    /// between them. `None` if the mark is missing or compressing failed.
    pub(super) fn response(&self, html: &str, layout_token: &str) -> Option<Response> {
        let (head, tail) = html.split_once(ROWS_MARK)?;
        let frame = self.rows.frame(head, tail)?;
        let size: usize = self.rows.parts.iter().map(|(_, d)| d.len() + 120).sum();
        let mut gz = Gzip::new(size + frame.head.len() / 2 + frame.tail_blocks.len() + 64);
        let token = self.token.text();
        for (i, (text, blocks)) in frame.head_parts.iter().enumerate() {
            if i > 0 {
                gz.stored(layout_token);
            }
            gz.precompressed(text, blocks);
        }
        for (i, (text, blocks)) in self.rows.parts.iter().enumerate() {
            if i > 0 {
                gz.stored(token);
            }
            gz.precompressed(text, blocks);
        }
        gz.precompressed(&frame.tail, &frame.tail_blocks);
        let headers = [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_ENCODING, "gzip"),
            (header::VARY, "accept-encoding"),
        ];
        Some((headers, gz.finish()).into_response())
    }
}

impl fmt::Display for TableRows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        askama::FastWritable::write_into(self, f, askama::NO_VALUES).map_err(|_| fmt::Error)
    }
}

impl askama::filters::HtmlSafe for TableRows {}

impl askama::FastWritable for TableRows {
    fn write_into(
        &self,
        dest: &mut dyn fmt::Write,
        values: &dyn askama::Values,
    ) -> askama::Result<()> {
        if self.mark {
            return Ok(dest.write_str(ROWS_MARK)?);
        }
        let token = self.csrf_token.text();
        for (i, u) in self.views.iter().enumerate() {
            let kept = self.rendered.as_ref().and_then(|r| r.rows.get(i));
            match kept {
                Some(parts) if !u.is_self && u.error.is_none() => {
                    for (n, part) in parts.iter().enumerate() {
                        if n > 0 {
                            dest.write_str(token)?;
                        }
                        dest.write_str(part)?;
                    }
                }
                _ => RowHtml {
                    u,
                    csrf_token: &self.csrf_token,
                    back: &self.back,
                    back_url: &self.back_url,
                }
                .render_into_with_values(dest, values)?,
            }
        }
        Ok(())
    }
}
